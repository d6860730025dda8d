"""Session 44, helper hH: crash safety (a command killed at any moment); each test fails without its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import one_line_failure, run
from t2i_cli import data
from t2i_cli.errors import DataError


class Killed(BaseException):
    """Stands in for a kill -9: nothing after it runs (no except clause of t2i's catches it)."""


def _world_killed_after(monkeypatch, out: Path, writes: int, n: int = 3) -> None:
    """`data world --split heldout --side 32 --out OUT` killed after its first `writes` files, as kill -9 leaves
    it: the files written so far, and the temporary of the one being written (a minute old)."""
    real, count = data.atomic_write_bytes, {"n": 0}

    def write(path, payload):
        if count["n"] == writes:
            tmp = Path(path).parent / f".{Path(path).name}.k1ll3d00.tmp"
            tmp.write_bytes(payload[: len(payload) // 2])
            os.utime(tmp, (time.time() - 120, time.time() - 120))
            raise Killed
        count["n"] += 1
        return real(path, payload)

    monkeypatch.setattr(data, "atomic_write_bytes", write)
    with pytest.raises(Killed):
        data.write_world("heldout", n, 32, out)
    monkeypatch.setattr(data, "atomic_write_bytes", real)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_data_world_again_finishes_a_killed_world(tmp_path: Path, monkeypatch):
    """kill -9 of `t2i data world --out D` (between a scene's picture and its caption: a stop cannot be held)
    left D unusable: the same command again refused ("D/heldout-000000.png already exists; choose an empty
    folder"), so a long render was lost, and its temporary stayed. Now the same command keeps the scenes written
    whole, completes the cut one, removes the temporary, and D holds exactly what an uninterrupted run writes."""
    whole = tmp_path / "whole"
    assert data.write_world("heldout", 3, 32, whole) == 3
    out = tmp_path / "world"
    _world_killed_after(monkeypatch, out, writes=4)  # scene 0 whole, scene 1's picture alone
    assert {p.name for p in out.iterdir()} >= {"heldout-000001.png", ".heldout-000001.txt.k1ll3d00.tmp"}
    assert not (out / "heldout-000001.txt").exists()
    r = run("data", "world", "--split", "heldout", "--n", 3, "--side", 32, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert "wrote 2 scenes" in r.stdout and "1 written before, kept" in r.stdout
    assert _files(out) == _files(whole)  # no temporary left, every file the uninterrupted run's bytes
    r = run("data", "world", "--split", "heldout", "--n", 3, "--side", 32, "--out", out, "-q")  # once more: a no-op
    assert r.exit_code == 0 and "wrote 0 scenes" in r.stdout and _files(out) == _files(whole)


def test_data_world_still_refuses_a_file_it_did_not_write(tmp_path: Path, monkeypatch):
    """Going on from a killed world must not take over a user's file: a scene file with other bytes (a finished
    scene's caption edited, an unfinished scene's picture of another side) is refused as before, nothing
    written."""
    out = tmp_path / "world"
    _world_killed_after(monkeypatch, out, writes=4)
    (out / "heldout-000000.txt").write_text("my own caption\n")
    before = _files(out)
    line = one_line_failure(run("data", "world", "--split", "heldout", "--n", 3, "--side", 32, "--out", out))
    assert "heldout-000000.txt already exists" in line and "choose an empty folder with --out" in line
    assert _files(out) == before
    (out / "heldout-000000.txt").unlink()
    data.write_world("heldout", 1, 32, tmp_path / "first")
    (out / "heldout-000000.txt").write_bytes((tmp_path / "first" / "heldout-000000.txt").read_bytes())
    before = _files(out)
    with pytest.raises(DataError, match="heldout-000000.png already exists"):  # drawn at 32 px, asked at 48
        data.write_world("heldout", 3, 48, out)
    assert _files(out) == before


def test_link_best_after_a_kill_between_a_copy_and_its_record_copies_nothing_twice(tmp_path: Path):
    """kill -9 of `rerank --link-best` the moment a copy had its name in best/, before t2i's record of its copies
    named it (a stop there is held; a kill cannot be): the next rerank ranked that copy as one more picture of the
    folder and copied it again (best/img-2-000.png and best/img-2-000-000.png). Now the record names each copy
    before the copy has its name."""
    from PIL import Image

    from conftest import SRC, build_tiny_folder

    weights = build_tiny_folder(tmp_path / "weights")
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, rgb in enumerate([(230, 20, 20), (20, 20, 230), (20, 230, 20)]):
        Image.new("RGB", (16, 16), rgb).save(folder / f"img-{i}.png")
    args = ["rerank", str(folder), "--prompt", "a red bird", "--top", "2", "--link-best", "--weights", str(weights),
            "-q"]
    script = tmp_path / "killed.py"
    script.write_text(f"""
import os, sys
sys.path.insert(0, {SRC!r})
from t2i_cli import files
_link_new = files._link_new
def link_new(tmp, folder, *a, **k):
    path = _link_new(tmp, folder, *a, **k)
    if folder.name == "best":  # (not the --top sheet): a kill -9 the moment the first copy has its name
        os._exit(137)
    return path
files._link_new = link_new
from t2i_cli.cli import main
sys.argv = ["t2i", *{args!r}]
main()
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr
    assert len([p for p in (folder / "best").iterdir() if p.suffix == ".png"]) == 1  # the copy
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    copies = sorted(p.name for p in (folder / "best").iterdir() if p.suffix == ".png")
    ranked = sorted(json.loads((folder / "ranking.json").read_text()), key=lambda row: row["rank"])
    assert sorted(row["file"] for row in ranked) == ["img-0.png", "img-1.png", "img-2.png"]  # no copy ranked
    assert copies == sorted(f"{Path(row['file']).stem}-000.png" for row in ranked[:2])  # each best picture once
    assert sorted(json.loads((folder / "best" / "t2i-copies.json").read_text())) == copies


def test_a_weights_set_cut_between_its_renames_is_refused_until_finished(tmp_path: Path):
    """kill -9 of `t2i export` (or of a whole run's export) between two of its files' renames, which no handler
    holds: the weights folder held one export's dVAE and transformer beside another's tokenizer and CLIP, which
    generate loaded and drew with, and `t2i info` described, where their shapes agreed. Now the set's journal says
    so: generate and info refuse the folder in one line, and the next export finishes the cut one first."""
    from conftest import SRC, build_tiny_folder
    from t2i_cli.files import finish_set
    from t2i_cli.weights import EXPORT_JOURNAL, FILES

    old, new = build_tiny_folder(tmp_path / "old", seed=0), build_tiny_folder(tmp_path / "new", seed=1)
    script = tmp_path / "cut.py"
    script.write_text(f"""
import os, sys
sys.path.insert(0, {SRC!r})
from pathlib import Path
from t2i_cli import files
real, done = os.replace, []
def replace(src, dst):
    real(src, dst)
    if Path(dst).name in {FILES!r}:
        done.append(dst)
        if len(done) == 2:
            os._exit(137)  # kill -9 after the second rename
os.replace = replace
old, new = Path({str(old)!r}), Path({str(new)!r})
files.atomic_write_set([(old / name, (new / name).read_bytes()) for name in {FILES!r}], old / {EXPORT_JOURNAL!r})
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    mixed = [name for name in FILES if (old / name).read_bytes() == (new / name).read_bytes()]
    assert mixed == list(FILES[:2])  # two of the new files beside two old ones
    for args in (["info", old], ["generate", "a red bird", "--weights", old, "--out", tmp_path / "out"]):
        line = one_line_failure(run(*args))
        assert "an export into it was killed while it renamed its files" in line, line
    assert not (tmp_path / "out").exists()
    assert finish_set(old / EXPORT_JOURNAL, FILES) == [old / name for name in FILES[2:]]
    assert _files(old) == _files(new)  # the new export whole, its journal and temporaries gone
    assert run("info", old).exit_code == 0


def test_export_again_finishes_an_export_killed_between_its_renames(tmp_path: Path):
    """The same at the command line: `t2i export` killed (kill -9) after the second of its renames into a folder
    that held another export; the same command again finishes it, and the folder holds exactly what an
    uninterrupted export writes."""
    from conftest import SRC

    common = ["--preset", "tiny", "--workers", "0", "-q"]
    for args in (["train", "--stage", "tokenizer", "--out", tmp_path / "tok", "--preset", "tiny", "-q"],
                 ["train", "--stage", "dvae", "--steps", 2, "--out", tmp_path / "dvae", *common],
                 ["train", "--stage", "transformer", "--steps", 1, "--dvae", tmp_path / "dvae", "--tokenizer",
                  tmp_path / "tok", "--out", tmp_path / "a", *common],
                 ["train", "--stage", "dvae", "--steps", 2, "--seed", 5, "--out", tmp_path / "dvae-b", *common],
                 ["train", "--stage", "transformer", "--steps", 2, "--dvae", tmp_path / "dvae-b", "--tokenizer",
                  tmp_path / "tok", "--seed", 5, "--out", tmp_path / "b", *common],
                 ["export", tmp_path / "b", "--to", tmp_path / "whole"],
                 ["export", tmp_path / "a", "--to", tmp_path / "weights"]):
        r = run(*args)
        assert r.exit_code == 0, (args, r.stderr)
    export_b = ["export", str(tmp_path / "b"), "--to", str(tmp_path / "weights"), "--force"]
    script = tmp_path / "cut.py"
    script.write_text(f"""
import os, sys
sys.path.insert(0, {SRC!r})
from pathlib import Path
real, done = os.replace, []
def replace(src, dst):
    real(src, dst)
    if Path(dst).parent.name == "weights" and Path(dst).name.endswith(".safetensors"):
        os._exit(137)  # kill -9 after the first model's rename
os.replace = replace
from t2i_cli.cli import main
sys.argv = ["t2i", *{export_b!r}]
main()
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr
    cut = _files(tmp_path / "weights")
    whole = _files(tmp_path / "whole")
    assert [name for name in ("dvae.safetensors", "transformer.safetensors") if cut[name] == whole[name]] == [
        "dvae.safetensors"]  # the new dVAE beside the old transformer
    assert "an export into it was killed" in one_line_failure(run("info", tmp_path / "weights"))
    r = run(*export_b)
    assert r.exit_code == 0, r.stderr
    assert _files(tmp_path / "weights") == _files(tmp_path / "whole")
    assert run("info", tmp_path / "weights").exit_code == 0
