"""Session 47 (hI): a review of hB's training and torchrun lines. Each test fails without its mend."""

from __future__ import annotations

from pathlib import Path


def test_torchrun_of_three_processes_rank_2_killed_the_lost_connection_is_said_once_by_rank_0(tmp_path: Path):
    """Three processes, rank 2 killed (kill -9, out of memory) at step 5, rank 0 running: rank 0 says it stopped for
    another process, with the checkpoint it saved and the resume; rank 1, which lost the same connection, said a
    bare `rank 1 stopped: another torchrun process of this run stopped first ...` too (6 such lines of 8
    processes). It leaves it to rank 0 now."""
    from conftest import torchrun_t2i
    from test_s45_hI import KILLED_AT_STEP_5

    out = tmp_path / "run"
    patch = KILLED_AT_STEP_5.replace("{killed}", "2").replace("{tmp}", str(tmp_path))
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--batch-size", "6", "--ckpt-every", "2",
                        "--sample-every", "0", "--data", "world", "--out", str(out), monitor=2, nproc=3)
    codes = [(tmp_path / f"exit-{r}").read_text() if (tmp_path / f"exit-{r}").is_file() else "missing"
             for r in range(3)]
    assert codes == ["1", "1", "missing"], (proc.stderr[-3000:], codes)
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == ["error: rank 0 stopped: another torchrun process of this run stopped first (its own line, or "
                    "torchrun's, says why); checkpoint saved at step 5; once that is mended, resume with: t2i train "
                    f"--resume {out}"], proc.stderr[-3000:]
