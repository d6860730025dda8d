"""Training under torchrun (2 processes, gloo, CPU): what rank 0 alone checks or writes is said once."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import build_tiny_folder, exit_codes, one_line_failure, run, torchrun_t2i


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


def test_a_rank_left_in_the_environment_of_one_process_is_not_a_silent_rank(tmp_path: Path, monkeypatch):
    """RANK=1 in the environment without torchrun's WORLD_SIZE (a variable left in a shell): the process trains
    alone, as rank 0 of one, and wrote its run, but said nothing, not even an error (exit 1, stderr empty): it
    took itself for a silent rank of a torchrun job. Every check of torchrun now reads the same WORLD_SIZE."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "1")
    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--data", tmp_path / "gone",
                                "--out", tmp_path / "run", "-q"))
    assert "gone" in line, line
    r = run("train", "--stage", "tokenizer", "--preset", "tiny", "--out", tmp_path / "tok", "-q")
    assert r.exit_code == 0 and "tokenizer stage finished" in r.stdout, (r.stdout, r.stderr)


def test_a_world_size_without_a_rank_is_refused_in_one_line(tmp_path: Path, monkeypatch):
    """WORLD_SIZE=2 without RANK (not torchrun, which sets both) was an internal error, KeyError: 'RANK'."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0",
                                "--device", "cpu", "--out", tmp_path / "run", "-q"), 2)
    assert line == ("error: WORLD_SIZE=2 is set but RANK is not: start the processes with torchrun, which sets "
                    "both, or unset WORLD_SIZE to train in one process"), line
    assert not (tmp_path / "run").exists()


LACKS_THE_TOKENIZER_ON_RANK_1 = """
if os.environ["RANK"] == "1":  # another machine, where the --tokenizer path is not (another mount)
    from t2i_cli import stages
    real = stages._resolve
    stages._resolve = lambda src, name: real(src + "-elsewhere", name)
"""


def test_torchrun_usage_error_of_one_rank_alone_is_said_once_by_rank_0(tmp_path: Path):
    """A usage error every process meets alike (the same command line) is said by rank 0 alone; one that a
    process other than rank 0 met alone (a path its machine lacks) was said by none: that process exited 2
    silently, and rank 0 said only "rank 0 stopped: another torchrun process of this run stopped first (its own
    line, or torchrun's, says why)", with no such line. The start's checks are agreed: rank 0 says it, naming the
    rank, and every process exits with its code before a file is written."""
    weights = build_tiny_folder(tmp_path / "w")
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, LACKS_THE_TOKENIZER_ON_RANK_1, "--stage", "clip", "--steps", "2",
                        "--tokenizer", str(weights), "--out", str(out))
    assert proc.returncode != 0
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "internal error:"))]
    assert said == [f"error: rank 1: {weights}-elsewhere does not exist; pass the tokenizer.json file or a folder "
                    f"that holds it"], proc.stderr[-3000:]
    assert exit_codes(tmp_path) == ["2", "2"], proc.stderr[-3000:]
    assert not out.exists()


def stop_as_torch_is_imported(tmp_path: Path) -> str:
    """A patch of each torchrun process: Ctrl-C reaches it as `import torch` begins (the first second or two of
    a run, where a Ctrl-C to torchrun lands when pressed early), and it records whether stops were held then."""
    return f"""
import signal
class _StopAtTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            held = signal.getsignal(signal.SIGINT) is not signal.default_int_handler
            open(os.path.join({str(tmp_path)!r}, "held-" + os.environ["RANK"]), "w").write(str(held))
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, _StopAtTorch())
"""


def test_torchrun_stop_while_torch_is_imported_waits_for_the_import(tmp_path: Path):
    """train imports torch with Ctrl-C and SIGTERM held (_training_imports_held: a stop inside the import left
    half-imported modules, ended in a C++ abort, "terminate called after throwing an instance of
    'pybind11::error_already_set'", or was dropped, torch going on as if it had not come, and both processes
    trained the whole run while torchrun had exited); but --stage's check imported torch first, unheld. Each
    process now stops once the import is done: one line, exit 130, nothing written."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, stop_as_torch_is_imported(tmp_path), "--stage", "dvae", "--steps", "2",
                        "--out", str(out))
    assert [(tmp_path / f"held-{r}").read_text() for r in (0, 1)] == ["True", "True"], proc.stderr[-3000:]
    assert exit_codes(tmp_path) == ["130", "130"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("interrupted", "error", "internal error"))]
    assert said == ["interrupted: before training started; nothing was written: the same command starts it"], \
        proc.stderr[-3000:]
    assert not out.exists()


STOPPED_ON_RANK_1 = """
if os.environ["RANK"] == "1":  # a Ctrl-C or SIGTERM that reached this process alone while the start checked
    from t2i_cli import data
    def _stopped(*a, **k):
        raise KeyboardInterrupt
    data.open_source = _stopped
"""


def test_torchrun_stop_of_one_rank_alone_at_the_start_is_said_as_a_stop(tmp_path: Path):
    """A stop that only rank 1 met in the start's checks pointed to "its own line, or torchrun's", which neither
    process wrote (a stopped rank other than 0 is silent): rank 0 says which rank was stopped."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, STOPPED_ON_RANK_1, "--stage", "dvae", "--steps", "2", "--out", str(out))
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "internal error:", "interrupted:"))]
    assert said == ["interrupted: rank 1 was stopped (Ctrl-C or SIGTERM) before training began; nothing of it was "
                    "trained"], proc.stderr[-3000:]
    assert exit_codes(tmp_path) == ["130", "130"], proc.stderr[-3000:]
