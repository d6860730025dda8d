"""Session 44, the lead's merge: defects the closing read found (a dVAE told of captions it never reads; a manifest
above refused with an empty bracket)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

from conftest import run


def test_a_dvae_resumed_on_changed_pictures_is_told_of_its_pictures_not_of_captions(tmp_path: Path):
    """data_change(captions_read=False), a dVAE without --flip: where pictures changed too, the line named the
    captions edited and the new words, which that stage never reads."""
    from t2i_cli.data import data_change, source_record

    def record(pairs):
        digests = [hashlib.sha256(name.encode()).hexdigest() for name, _ in pairs]
        return source_record([(tmp_path / name, lines) for name, lines in pairs], digests, tmp_path)

    then = [("a.png", ["a red bird"]), ("b.png", ["a blue fish"]), ("c.png", ["a green cat"])]
    now = [("a.png", ["a red bird"]), ("b.png", ["a quokka"]), ("d.png", ["a green cat"])]
    path = tmp_path / "data_record.json"
    path.write_text(json.dumps(record(then)))
    told = data_change(path, record(now), captions_read=False)
    assert told is not None and "1 picture added, 1 removed (an edited picture is both)" in told, told
    assert "caption" not in told.split(":", 1)[1].split(";")[0] and "quokka" not in told, told
    read = data_change(path, record(now))  # (a stage that reads captions is told of them)
    assert "captions of 1 picture edited" in read and "'quokka'" in read, read


def test_a_utf16_manifest_above_is_refused_without_an_empty_bracket(tmp_path: Path):
    """A UTF-16 metadata.csv above the folder: data caption refused with "save it as UTF-8 ()" (the reader of a
    manifest above names no format to save it in)."""
    birds = tmp_path / "photos" / "birds"
    birds.mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(birds / "red-bird.png")
    (tmp_path / "photos" / "metadata.csv").write_bytes("file_name,text\nbirds/red-bird.png,a cat\n".encode("utf-16"))
    r = run("data", "caption", birds)
    assert r.exit_code == 1 and "UTF-16" in r.stderr and "()" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
