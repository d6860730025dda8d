"""Session 36: defects found this session, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import exit_codes, torchrun_t2i

RANK_0_STARTS_LATE = """
import time
if os.environ["RANK"] == "0":  # a slower start (a loaded machine): rank 1 meets the refusal first
    time.sleep(4)
"""


def test_torchrun_refusal_is_said_when_rank_0_starts_late(tmp_path: Path):
    """A refusal every torchrun process meets alike (a batch no process count divides) is said by rank 0; rank 1,
    reaching it first, exited 2 at once and torchrun stopped rank 0 (SIGTERM) before it had said it: the run ended
    with no line saying why (CI: rank 0 "exitcode 130", the refusal nowhere). Rank 1 now waits for rank 0."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_STARTS_LATE, "--stage", "all", "--steps", "3", "--batch-size", "3",
                        "--out", str(out))
    assert proc.returncode != 0
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "internal error:", "interrupted"))]
    assert len(said) == 1 and "must be a multiple of the 2 processes" in said[0], proc.stderr[-3000:]
    assert exit_codes(tmp_path) == ["2", "2"], proc.stderr[-3000:]
    assert not out.exists()
