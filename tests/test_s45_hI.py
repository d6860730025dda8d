"""Session 45 (hI): training under torchrun (2 processes, gloo, CPU), the leftovers: a checkpoint rank 0 cannot
write, a kill of one process, Ctrl-C. Each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import exit_codes, torchrun_t2i
from t2i_cli.train import CHECKPOINT
from t2i_cli.weights import load_tensors

# A torchrun patch: rank 0's disk fills as it writes its second checkpoint (half the file written, then ENOSPC)
RANK_0_DISK_FULL_AT_ITS_SECOND_CHECKPOINT = """
import errno, pathlib
if os.environ.get("RANK") == "0":
    real_write_bytes, writes = pathlib.Path.write_bytes, {"n": 0}
    def write_bytes(self, data):
        if ".checkpoint.safetensors." in self.name:  # (the checkpoint's temporary file)
            writes["n"] += 1
            if writes["n"] >= 2:
                real_write_bytes(self, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(self, data)
    pathlib.Path.write_bytes = write_bytes
"""


def test_torchrun_checkpoint_rank_0_cannot_write_is_one_line_and_every_process_ends(tmp_path: Path):
    """Rank 0's checkpoint failed (a full disk): rank 0 said why, and rank 1, waiting in the next step's
    all-reduce, said a second line, "error: rank 1 stopped: another torchrun process of this run stopped first
    (its own line, or torchrun's, says why)". Every process now learns at the checkpoint that rank 0's write
    failed and stops there: one line, every process ends (exit 1), the checkpoint before is whole and nothing
    half-written is left."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_DISK_FULL_AT_ITS_SECOND_CHECKPOINT, "--stage", "dvae", "--steps", "8",
                        "--ckpt-every", "2", "--sample-every", "0", "--data", "world", "--out", str(out))
    assert proc.returncode != 0 and exit_codes(tmp_path) == ["1", "1"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == [f"error: cannot write {out / CHECKPOINT}: No space left on device; free space or choose another "
                    f"folder; its checkpoint of step 2 is kept; once that is mended, resume with: t2i train "
                    f"--resume {out}"], proc.stderr[-3000:]
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "2"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "dvae.safetensors", "metrics.jsonl",
                                                     "train_config.json"]


# A torchrun patch: the process of rank KILLED is killed (SIGKILL: a kill -9, the out-of-memory killer) at its step 5;
# the other is slow to end the run after the connection it lost, so that torchrun's SIGTERM lands as it ends
KILLED_AT_STEP_5 = """
import signal, time
import t2i_cli.train as train
from t2i_cli.stages import DVAEStage
real_loss = DVAEStage.loss
def loss(self, model, images, captions, step):
    if step == 5 and os.environ["RANK"] == "{killed}":
        os.kill(os.getpid(), signal.SIGKILL)
    return real_loss(self, model, images, captions, step)
DVAEStage.loss = loss
if os.environ["RANK"] != "{killed}":
    real_drop = train._drop_frames
    def slow_drop(e):
        if e is not None:  # it waits for torchrun's SIGTERM, which comes now (the training loop's own stop handlers
            # gone), and notes that it came (a fixed sleep could end first on a loaded machine)
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    time.sleep(0.05)
            except KeyboardInterrupt:
                open(os.path.join("{tmp}", "sigterm-" + os.environ["RANK"]), "w").close()
                raise
        return real_drop(e)
    train._drop_frames = slow_drop
"""


@pytest.mark.parametrize("killed", [0, 1])
def test_torchrun_kill_9_of_one_process_is_said_in_one_line_by_the_other(tmp_path: Path, killed: int):
    """kill -9 of one process: the other lost its connection and ended, and torchrun's SIGTERM, landing as it
    ended, replaced what it had to say: rank 0 (rank 1 killed) said the generic "RUN holds the run up to its last
    checkpoint" without the step it had just saved, and rank 1 (rank 0 killed) said nothing, torchrun's report
    alone. The survivor now says the connection it lost (and rank 0 the step it saved), one line."""
    out = tmp_path / "run"
    patch = KILLED_AT_STEP_5.replace("{killed}", str(killed)).replace("{tmp}", str(tmp_path))
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--ckpt-every", "100", "--sample-every",
                        "0", "--data", "world", "--out", str(out), monitor=2)
    assert proc.returncode != 0 and exit_codes(tmp_path)[1 - killed] == "1", (proc.stderr[-3000:],
                                                                              exit_codes(tmp_path))
    assert (tmp_path / f"sigterm-{1 - killed}").is_file(), "torchrun's SIGTERM did not land as the survivor ended"
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    lost = (f"error: rank {1 - killed} stopped: another torchrun process of this run stopped first (its own line, or "
            f"torchrun's, says why)")
    if killed == 1:  # rank 0 saves the steps trained since the last checkpoint
        lost += f"; checkpoint saved at step 5; once that is mended, resume with: t2i train --resume {out}"
        assert load_tensors(out / CHECKPOINT)[1]["step"] == "5"
    else:  # rank 1 says where a resume starts (session 46: it said the lost connection alone)
        lost += f"; no checkpoint was written yet, so a resume starts at step 0; once that is mended, resume with: " \
                f"t2i train --resume {out}"
    assert said == [lost], proc.stderr[-3000:]


# A torchrun patch: rank 0 is killed (SIGKILL) at its step 5, while rank 1 computes its step 5 (slowly: torchrun's
# SIGTERM reaches it there, before it meets the lost connection)
RANK_0_KILLED_WHILE_RANK_1_COMPUTES = """
import signal, time
from t2i_cli.stages import DVAEStage
real_loss = DVAEStage.loss
def loss(self, model, images, captions, step):
    if step == 5:
        if os.environ["RANK"] == "0":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
    return real_loss(self, model, images, captions, step)
DVAEStage.loss = loss
"""


def test_torchrun_kill_9_of_rank_0_is_said_by_rank_1_stopped_by_torchrun(tmp_path: Path):
    """rank 0 killed (kill -9, out of memory): torchrun stopped rank 1 (SIGTERM), which said nothing, a stop being
    rank 0's to say: torchrun's long report alone. Rank 1 sees that rank 0 has ended and says it, with the
    checkpoint rank 0 left, whole, which resumes."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_KILLED_WHILE_RANK_1_COMPUTES, "--stage", "dvae", "--steps", "8",
                        "--ckpt-every", "2", "--sample-every", "0", "--data", "world", "--out", str(out))
    assert proc.returncode != 0 and exit_codes(tmp_path) == ["missing", "130"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == ["interrupted: SIGTERM (torchrun's, once rank 0 of this run had ended: killed, or out of memory; "
                    f"its report says how) at step 5; the run's checkpoint is step 4's. Resume with: t2i train "
                    f"--resume {out}"], proc.stderr[-3000:]
    proc = torchrun_t2i(tmp_path, "", "--resume", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "8"
