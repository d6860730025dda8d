"""s45, helper hP: training's --threads, the whole run's export warning said only when that export happens,
ClipConfig.regions() in use, and FSQ's level counts."""

from __future__ import annotations

import json

import torch

from conftest import one_line_failure, run
from t2i_cli.models.dvae import FSQ
from test_reliability import TINY


# ---------------------------------------------------------------------------------------------- fsq levels
def test_a_new_dvae_run_refuses_an_fsq_channel_of_two_levels(tmp_path):
    """FSQ's shifted tanh puts a two-level channel's one boundary at z = -3.8: nearly every value rounds to one
    level (the channel is wasted), so a new run refuses it in one line, before a folder is made; 3 levels split
    evenly and train."""
    z = torch.linspace(-10, 10, 2001).view(1, 1, 1, -1)
    assert torch.bincount(FSQ((2,)).codes(z).flatten()).tolist() == [620, 1381]  # lopsided: the boundary at -3.8
    three = torch.bincount(FSQ((3,)).codes(z).flatten()).tolist()
    assert three[0] == three[2]  # symmetric about z = 0
    line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "two", "--steps", "1", "--model",
                                "fsq_levels=4,2,4", *TINY), 2)
    assert "the dVAE's fsq_levels 4,2,4: FSQ needs 3 or more levels per channel" in line
    assert not (tmp_path / "two").exists()
    r = run("train", "--stage", "dvae", "--out", tmp_path / "three", "--steps", "1", "--model", "fsq_levels=4,3,4",
            *TINY)
    assert r.exit_code == 0, r.output + r.stderr


# ---------------------------------------------------------------------------------------------- whole run's export
ALL = ["train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--device", "cpu", "--steps", "2"]


def test_a_whole_runs_resume_says_which_clip_it_exported_only_when_it_exports_it(tmp_path):
    """A whole run whose CLIP overfitted exports its lowest-validation step and says so; a --resume of the finished
    run that exports nothing new is silent about it (every resume repeated "exported the step-1 clip ... the model
    overfitted" of an export made before), and one that writes that model again says it again."""
    from t2i_cli.train import BEST
    from t2i_cli.weights import load_tensors, save_tensors

    run_dir = tmp_path / "run"
    r = run(*ALL, "--out", run_dir)
    assert r.exit_code == 0, r.output + r.stderr
    clip = run_dir / "clip"
    rows = [json.loads(x) for x in (clip / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "val_loss" not in r] + [{"step": 1, "val_loss": 2.0}, {"step": 2, "val_loss": 3.0}]
    (clip / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tensors, meta = load_tensors(clip / "clip.safetensors")
    save_tensors(clip / BEST, {k: v + 1 if v.is_floating_point() else v for k, v in tensors.items()},
                 {**meta, "step": "1"})
    said = []
    for _ in range(3):
        r = run("train", "--resume", run_dir, "-q")
        assert r.exit_code == 0, r.output + r.stderr
        said.append([line for line in r.stderr.splitlines() if "exported the step-1 clip" in line])
    assert len(said[0]) == 1 and "the model overfitted" in said[0][0]  # written now: said
    assert said[1:] == [[], []]  # nothing new exported: not said again
    assert (run_dir / "weights" / "clip.safetensors").read_bytes() == (clip / BEST).read_bytes()
    (run_dir / "weights" / "clip.safetensors").unlink()
    r = run("train", "--resume", run_dir, "-q")
    assert [line for line in r.stderr.splitlines() if "exported the step-1 clip" in line] == said[0]


# ---------------------------------------------------------------------------------------------- train --threads
def _start_threads(run_dir) -> list[int]:
    """The thread count each start of a run recorded in its metrics.jsonl."""
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["threads"] for r in rows if "precision" in r]


def test_train_threads_sets_every_stages_thread_count_and_a_resume_may_change_it(tmp_path, monkeypatch):
    """`t2i train --threads N` is generate's option (1..256, refused outside in one line; not the tokenizer stage's,
    whose learner is not torch's): every stage of a whole run trains on N threads, each start records its count,
    and a resume may take another count (`--threads` was "No such option"; OMP_NUM_THREADS alone set it)."""
    from t2i_cli.train import StepBatches

    before = torch.get_num_threads()
    seen: list[int] = []
    real = StepBatches.__getitem__
    monkeypatch.setattr(StepBatches, "__getitem__", lambda self, step: (seen.append(torch.get_num_threads()),
                                                                        real(self, step))[1])
    try:
        for bad in ("0", "257"):
            line = one_line_failure(run(*ALL, "--threads", bad, "--out", tmp_path / "bad"), 2)
            assert line == f"error: --threads must be between 1 and 256, got {bad}"
        line = one_line_failure(run("train", "--stage", "tokenizer", "--preset", "tiny", "--threads", "1", "--out",
                                    tmp_path / "bad"), 2)
        assert "--threads does not apply to the tokenizer stage" in line
        assert not (tmp_path / "bad").exists()
        run_dir = tmp_path / "run"
        r = run(*ALL, "--threads", "2", "--out", run_dir)
        assert r.exit_code == 0, r.output + r.stderr
        assert [_start_threads(run_dir / s) for s in ("dvae", "transformer", "clip")] == [[2], [2], [2]]
        assert seen and set(seen) == {2}  # (--workers 0: the batches are made in this process, on its threads)
        # a stage resumed at another count trains on, and records it
        r = run("train", "--resume", run_dir / "clip", "--steps", "3", "--threads", "1", "-q")
        assert r.exit_code == 0, r.output + r.stderr
        assert _start_threads(run_dir / "clip") == [2, 1]
        # a whole run's resume takes it too (a steering option, as --workers and --device)
        r = run("train", "--resume", run_dir, "--threads", "1", "-q")
        assert r.exit_code == 0, r.output + r.stderr
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_data_loader_worker_takes_one_thread_whatever_threads(tmp_path, monkeypatch):
    """--threads is the training process's count; each --workers loader process renders on one thread (PyTorch sets
    it in each worker), as train --help says: 3 workers do not take 3 x N threads."""
    from t2i_cli.train import StepBatches

    before = torch.get_num_threads()
    real = StepBatches.__getitem__
    log = tmp_path / "worker-threads"

    def spy(self, step):
        with open(log, "a") as f:
            f.write(f"{torch.get_num_threads()}\n")
        return real(self, step)

    monkeypatch.setattr(StepBatches, "__getitem__", spy)
    try:
        r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "1", "--threads", "2",
                "-q", "--device", "cpu", "--out", tmp_path / "run")
        assert r.exit_code == 0, r.output + r.stderr
        assert set(log.read_text().split()) == {"1"}
        assert _start_threads(tmp_path / "run") == [2]
    finally:
        torch.set_num_threads(before)


def test_each_torchrun_process_takes_threads_of_its_own(tmp_path):
    """Under torchrun --threads N is each process's count (torchrun's own default is 1 each, OMP_NUM_THREADS=1)."""
    from conftest import exit_codes, torchrun_t2i

    patch = f"""
import torch
real = torch.optim.AdamW.step
def step(self, *a, **k):
    with open(os.path.join({str(tmp_path)!r}, "threads-" + os.environ["RANK"]), "a") as f:
        f.write(f"{{torch.get_num_threads()}}\\n")
    return real(self, *a, **k)
torch.optim.AdamW.step = step
"""
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "2", "--threads", "2", "--out",
                        str(tmp_path / "run"))
    assert proc.returncode == 0 and exit_codes(tmp_path) == ["0", "0"], proc.stderr[-2000:]
    assert [(tmp_path / f"threads-{r}").read_text().split() for r in (0, 1)] == [["2", "2"], ["2", "2"]]
    assert _start_threads(tmp_path / "run") == [2]
