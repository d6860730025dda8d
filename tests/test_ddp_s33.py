"""Training under torchrun (2 processes, gloo, CPU): what rank 0 alone checks or writes is said once."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import torchrun_t2i


@pytest.mark.parametrize("out", ["notes", "file"])
def test_torchrun_refusal_of_an_out_rank_0_alone_checks_is_one_line(tmp_path: Path, out: str):
    """Rank 0 alone checks a new run's --out (the others may look after it has copied the run's dependencies
    in): a folder holding other files, or a path inside a file, was said by rank 0 and followed by rank 1's
    "error: rank 1 stopped: another torchrun process of this run stopped first", a second line for one
    mistake. The others now learn rank 0's refusal and stop with it silently, with its exit code."""
    if out == "notes":
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "notes.txt").write_text("mine\n")
        target, says = tmp_path / "run", "is a folder that holds other files"
    else:
        (tmp_path / "f").write_text("a file\n")
        target, says = tmp_path / "f" / "run", "which is a file"
    proc = torchrun_t2i(tmp_path, "", "--stage", "dvae", "--steps", "2", "--out", str(target))
    assert proc.returncode != 0
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "internal error:"))]
    assert len(said) == 1 and says in said[0], proc.stderr[-3000:]
    assert "rank 1" not in proc.stderr.replace("rank      : 1", ""), proc.stderr[-3000:]
    if out == "notes":
        assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
