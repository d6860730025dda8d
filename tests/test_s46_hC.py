"""Session 46, hC: manifest and crash-safety leftovers (a dry run beside manifest lines left out, such lines of a
manifest above the folder, a killed write's 0.18.0 temporary of a long name, make_folder's probe)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PIL import Image

from conftest import run


def _aged(path: Path, seconds: float = 120.0) -> Path:
    """path made `seconds` old (a killed run's file, found by a run started later)."""
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def _picture(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------ 1. a dry run that is refused
def test_a_dry_run_beside_manifest_lines_left_out_says_it_would_write_nothing(tmp_path: Path):
    """ds/metadata.jsonl with a line that is not JSON, naming red-bird.png: `data caption ds` refuses, writing
    nothing, but its --dry-run warned and then listed red-bird.txt and blue-fish.txt, "would write 2 caption files":
    the picture the line names among them. Now it says it would write none, as the run does."""
    ds = tmp_path / "ds"
    _picture(ds / "red-bird.png")
    _picture(ds / "blue-fish.png")
    (ds / "metadata.jsonl").write_bytes(b'{"file_name": "red-bird.png", "text": "a red bird"\n')
    real = run("data", "caption", ds, "-q")
    assert real.exit_code == 1 and "lines left out" in real.stderr, real.stderr
    dry = run("data", "caption", ds, "--dry-run", "-q")
    assert dry.exit_code == 0 and "lines left out" in dry.stderr, dry.stderr
    assert "red-bird.txt" not in dry.stdout and "would write 2" not in dry.stdout, dry.stdout
    assert "would write no caption file" in dry.stdout and "nothing written (--dry-run)" in dry.stdout, dry.stdout
    assert _names(ds) == ["blue-fish.png", "metadata.jsonl", "red-bird.png"]
    # ... and where nothing refuses (the line fixed), the dry run lists what the run writes
    (ds / "metadata.jsonl").write_text(json.dumps({"file_name": "red-bird.png", "text": "a red bird"}) + "\n")
    dry = run("data", "caption", ds, "--dry-run", "-q")
    assert dry.exit_code == 0 and "blue-fish.txt: blue fish" in dry.stdout and "would write 1 caption file" in \
        dry.stdout and "red-bird.txt" not in dry.stdout, dry.stdout


# ------------------------------------------------------------------------------------ 5. make_folder's probe
def test_a_probe_a_kill_left_in_an_output_folder_is_removed_by_the_next_run_once_a_minute_old(tmp_path: Path):
    """make_folder probes an existing folder with .t2i-probe-XXXXXXXX, removed at once; a kill between its making
    and its removal left it for good (no cleanup knew it). The next make_folder there removes it once a minute old
    (a newer one may be another t2i's probe now); a file of yours of another shape, or not empty, stays."""
    from t2i_cli.files import make_folder

    out = tmp_path / "out"
    out.mkdir()
    killed = out / ".t2i-probe-a1b_2c3d"
    killed.touch()
    _aged(killed)
    fresh = out / ".t2i-probe-zzzz9999"
    fresh.touch()
    mine = [out / ".t2i-probe-notes.txt", out / ".t2i-probe-abcdefgh.bak", out / ".t2i-probe-ABCDEFGH",
            out / ".t2i-probe-full1234"]
    for p in mine:
        p.write_bytes(b"" if p.name != ".t2i-probe-full1234" else b"mine")
        _aged(p)
    make_folder(out)
    assert not killed.exists()
    assert fresh.exists() and all(p.exists() for p in mine), _names(out)
    assert len(list(out.iterdir())) == 1 + len(mine)  # (and the probe of this run is gone too)
