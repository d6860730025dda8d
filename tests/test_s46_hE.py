"""Session 46 (hE): training under torchrun (2 processes, gloo, CPU), the leftovers: where a resume starts when
rank 0 is killed, and how rank 1 knows rank 0's process. Each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import exit_codes, torchrun_t2i
from t2i_cli.train import CHECKPOINT
from t2i_cli.weights import load_tensors
from test_s45_hI import KILLED_AT_STEP_5


def test_torchrun_kill_9_of_rank_0_rank_1_says_the_checkpoint_a_resume_starts_from(tmp_path: Path):
    """rank 0 killed (kill -9, out of memory) at step 5, its checkpoint of step 4 on disk: rank 1, which lost the
    connection, said "rank 1 stopped: another torchrun process of this run stopped first (...)" alone, where
    rank 0's line, rank 1 killed, says the step it saved and the resume. Rank 1 now names the checkpoint rank 0
    left and the resume command, which finishes the run."""
    out = tmp_path / "run"
    patch = KILLED_AT_STEP_5.replace("{killed}", "0").replace("{tmp}", str(tmp_path))
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--ckpt-every", "2", "--sample-every",
                        "0", "--data", "world", "--out", str(out), monitor=2)
    assert proc.returncode != 0 and exit_codes(tmp_path)[1] == "1", (proc.stderr[-3000:], exit_codes(tmp_path))
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == ["error: rank 1 stopped: another torchrun process of this run stopped first (its own line, or "
                    "torchrun's, says why); its checkpoint of step 4 is kept; once that is mended, resume with: t2i "
                    f"train --resume {out}"], proc.stderr[-3000:]
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "4"
    proc = torchrun_t2i(tmp_path, "", "--resume", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "8"


def test_rank_0_is_known_by_its_kernel_and_process_namespace_not_the_host_name(tmp_path: Path, monkeypatch):
    """Rank 1 looks for rank 0's process (to say a kill of it) only where rank 0's identity is its own: that was
    the host name's hash, so two machines (or containers) of one name took each other's process ids for their
    own. It is now the kernel's boot id and the process-id namespace: one host name, another boot id, another
    identity; another process of this machine (this kernel, this namespace), the same."""
    import socket
    import subprocess
    import sys

    from conftest import SRC
    from t2i_cli import train

    monkeypatch.setattr(socket, "gethostname", lambda: "node")
    here = train._host_id()
    other = tmp_path / "boot_id"
    other.write_text("00000000-0000-0000-0000-000000000001\n")
    monkeypatch.setattr(train, "BOOT_ID", other)
    assert train._host_id() != here  # another machine of the same name
    monkeypatch.undo()
    child = subprocess.run([sys.executable, "-c", "from t2i_cli import train; print(train._host_id())"],
                           env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           check=True)
    assert int(child.stdout) == train._host_id()  # another process of this machine: rank 0's pid is its to check


def test_torchrun_kill_9_of_rank_0_before_a_checkpoint_the_resume_rank_1_names_starts_at_step_0(tmp_path: Path):
    """rank 0 killed at step 5 before any checkpoint: rank 1's line says none was written, so a resume starts at
    step 0, and that resume (the command it names) trains the whole run."""
    out = tmp_path / "run"
    patch = KILLED_AT_STEP_5.replace("{killed}", "0").replace("{tmp}", str(tmp_path))
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--ckpt-every", "100", "--sample-every",
                        "0", "--data", "world", "--out", str(out), monitor=2)
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert len(said) == 1 and said[0].endswith(f"; no checkpoint was written yet, so a resume starts at step 0; once "
                                               f"that is mended, resume with: t2i train --resume {out}"), proc.stderr
    assert not (out / CHECKPOINT).exists()
    proc = torchrun_t2i(tmp_path, "", "--resume", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "8"
