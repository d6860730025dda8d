"""Session 45 (hI): training under torchrun (2 processes, gloo, CPU), the leftovers: a checkpoint rank 0 cannot
write, a kill of one process, Ctrl-C. Each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

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

