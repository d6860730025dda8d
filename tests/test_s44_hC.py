"""Session 44, hC: work done once and code written once (images, rerank, data, name_captions), outputs unchanged."""

from __future__ import annotations

from t2i_cli import name_captions
from t2i_cli.models import tokenizer


def test_name_captions_keycap_flag_and_number_marks_read_as_before():
    """The keycap, the subdivision flag and the "No." words are the tokenizer's / one definition: captions as before."""
    assert name_captions._KEYCAP == ord(tokenizer.KEYCAP) and name_captions._BLACK_FLAG == ord(tokenizer.BLACK_FLAG)
    cases = {"Symphony No. 5": "symphony no 5", "nr.3 track": "nr 3 track", "0023-fe0f-20e3": "keycap number sign",
             "1f3f4-e0067-e0062-e0065-e006e-e0067-e007f": "flag england", "u+0023 u+fe0f u+20e3": "keycap number sign",
             "#\ufe0f\u20e3 key": "keycap number sign key", "1\u20e3": "keycap digit one",
             "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F": "flag scotland"}
    assert {name: name_captions.caption_of(name) for name in cases} == cases


def _png(path, side=8, colour=(200, 30, 30)):
    from PIL import Image

    Image.new("RGB", (side, side), colour).save(path)
    return path


def test_manifest_above_naming_none_is_read_once_for_its_utf8_check(tmp_path, monkeypatch):
    """A metadata.csv above the folder that names none of its uncaptioned pictures: told UTF-8 or not from the bytes
    read for its rows (it was read again by _not_utf8_manifest); a Latin-1 one naming them is said as before."""
    from t2i_cli import data

    (tmp_path / "train").mkdir()
    a = _png(tmp_path / "train" / "a.png")
    wanted = {data._key(a)}
    checks = []
    real = data._not_utf8_manifest
    monkeypatch.setattr(data, "_not_utf8_manifest", lambda m: checks.append(m) or real(m))
    (tmp_path / "metadata.csv").write_bytes("file_name,text\ntrain/other.png,a caf\u00e9\n".encode())
    assert data._manifest_above(tmp_path / "train", wanted) == (None, set(), None, "")
    (tmp_path / "metadata.csv").write_bytes("file_name,text\ntrain/other.png,a caf\u00e9\n".encode("cp1252"))
    assert data._manifest_above(tmp_path / "train", wanted) == (None, set(), None, "")
    assert checks == []
    (tmp_path / "metadata.csv").write_bytes("file_name,text\ntrain/a.png,a caf\u00e9\n".encode("cp1252"))
    said, named, give, _ = data._manifest_above(tmp_path / "train", wanted)
    assert named == wanted and give == tmp_path and checks == []  # (the CSV's reader stops at the line, said)
    assert said == (f"{tmp_path / 'metadata.csv'} names 1 of the pictures here without a caption but is not UTF-8: "
                    f"save it as UTF-8 (a spreadsheet's \"CSV UTF-8\"), then give {tmp_path} as the source to read it")


def test_windows_paths_in_a_manifest_said_as_before(tmp_path):
    """The drive / network path reasons, one helper for the manifest source and a folder's manifest rows."""
    from pathlib import Path

    from t2i_cli import data

    assert data._windows_path(Path("C:\\ds\\a.png")) == data.WINDOWS_DRIVE
    assert data._windows_path(tmp_path / "C:/data/a.png") == data.WINDOWS_DRIVE
    assert data._windows_path(Path("\\\\server\\share\\a.png")) == data.NETWORK_PATH
    assert data._windows_path(tmp_path / "train\\a.png") is None
