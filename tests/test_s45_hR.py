"""Session 45 (hR): the review of the second wave's commits. Each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run
from t2i_cli.errors import UsageError
from t2i_cli.stages import run_stage
from t2i_cli.train import TrainConfig


def test_a_new_dvae_run_from_python_refuses_an_fsq_channel_of_two_levels_and_a_resume_keeps_it(tmp_path: Path):
    """247d861 refused an FSQ channel of 2 levels for a new run of t2i train alone: run_stage from Python, which
    the README says checks a TrainConfig as the command line checks its options, trained it (the wasted channel
    the refusal is for). A new run is refused in one line before the folder is made; a run trained with one (its
    config written as 0.18.0 wrote it) still resumes."""
    cfg = TrainConfig(stage="dvae", data="world", steps=1, batch_size=4, image_side=16, sample_every=0,
                      model={"fsq_levels": [4, 2, 4], "n_codes": 32, "n_hid": 8})
    with pytest.raises(UsageError, match=r"^the dVAE's fsq_levels 4,2,4: FSQ needs 3 or more levels per channel"):
        run_stage(cfg, tmp_path / "two", device="cpu")
    assert not (tmp_path / "two").exists()
    import t2i_cli.stages as stages

    real, stages.check_new_model = stages.check_new_model, lambda cfg: None  # (a run an older t2i started)
    try:
        assert run_stage(cfg, tmp_path / "old", device="cpu")["step"] == 1
    finally:
        stages.check_new_model = real
    resumed = run_stage(TrainConfig(**{**cfg.__dict__, "steps": 2}), tmp_path / "old", resume=True, device="cpu")
    assert resumed["step"] == 2


def test_a_broken_tga_given_to_vary_is_said_broken_not_left_out_of_a_folder(tmp_path: Path, tiny_weights: Path):
    """65ae4fa named the format of a picture Pillow cannot identify by its suffix, for SVG and HEIC; but a TGA,
    which vary reads, that is broken (cut, or not a TGA inside) was then said "TGA picture (t2i does not read TGA
    from a folder: ...)": wrong twice, it was given by its path, and TGA is read that way. It is said as the broken
    file it is; an SVG keeps its line."""
    broken = tmp_path / "yellow.tga"
    broken.write_bytes(bytes(range(256)) * 2)
    r = run("vary", broken, "--weights", tiny_weights, "--n", "1", "--out", tmp_path / "out")
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert r.exit_code != 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot read image {broken}: its first bytes are no picture format"), lines
    assert "from a folder" not in lines[0] and "give a complete PNG, JPEG" in lines[0], lines
    (tmp_path / "teal.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n')
    r = run("vary", tmp_path / "teal.svg", "--weights", tiny_weights, "--n", "1", "--out", tmp_path / "out")
    assert "SVG picture (t2i cannot read SVG: convert to JPEG or PNG)" in r.stdout + r.stderr


# torchrun patches: rank 0's disk fills as it writes its samples (DVAEStage.write_samples: samples.png, and the
# validation's best model beside them on a transformer or CLIP run), or step 4's metrics line
RANK_0_DISK_FULL = {
    "samples": """
import errno
from t2i_cli.stages import DVAEStage
if os.environ.get("RANK") == "0":
    def write_samples(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "samples.png")
    DVAEStage.write_samples = write_samples
""",
    "metrics": """
import errno
import t2i_cli.train as train
if os.environ.get("RANK") == "0":
    real_log = train.Logger.log
    def log(self, step, metrics):
        if step == 4 and "loss" in metrics:
            raise OSError(errno.ENOSPC, "No space left on device", "metrics.jsonl")
        return real_log(self, step, metrics)
    train.Logger.log = log
"""}


@pytest.mark.parametrize("written, saved", [("samples", 2), ("metrics", 4)])
def test_torchrun_samples_or_metrics_rank_0_cannot_write_are_said_once_and_every_process_ends(
        tmp_path: Path, written: str, saved: int):
    """0bd681a had every process learn at a checkpoint that rank 0 could not write it, so that rank 0 alone says
    why; the samples and validation (--sample-every) and the metrics lines (--log-every) rank 0 alone writes fail
    on the same full disk, and there rank 1, waiting in the next step's all-reduce, still said a second line
    ("error: rank 1 stopped: another torchrun process of this run stopped first ..."). Every process now learns it
    at that step: one line, both exit 1, the steps saved by rank 0."""
    from conftest import exit_codes, torchrun_t2i
    from t2i_cli.train import CHECKPOINT
    from t2i_cli.weights import load_tensors

    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_DISK_FULL[written], "--stage", "dvae", "--steps", "6", "--ckpt-every", "100",
                        "--sample-every", "2" if written == "samples" else "0", "--log-every", "2", "--data", "world",
                        "--out", str(out))
    assert proc.returncode != 0 and exit_codes(tmp_path) == ["1", "1"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    name = "samples.png" if written == "samples" else "metrics.jsonl"
    assert said == [f"error: {name}: No space left on device; the disk is full; free some space or choose a path "
                    f"on another disk; checkpoint saved at step {saved}; once that is mended, resume with: t2i train "
                    f"--resume {out}"], proc.stderr[-3000:]
    assert load_tensors(out / CHECKPOINT)[1]["step"] == str(saved)


def test_a_finished_whole_world_runs_resume_says_no_pictures(tmp_path: Path):
    """39fd058's line for a resume of a finished whole run said "to train on, on the pictures there now: ..." of a
    run on the world, which has no pictures: it now says "to train on: ..." there (a folder's run keeps the words)."""
    run_dir = tmp_path / "all"
    r = run("train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--device", "cpu", "--steps", "2",
            "--data", "world", "--out", run_dir)
    assert r.exit_code == 0, r.output + r.stderr
    r = run("train", "--resume", run_dir, "-q")
    assert r.exit_code == 0, r.output + r.stderr
    said = " ".join(r.stdout.split())
    assert (f"every stage had finished: nothing trained now (to train on: t2i train --resume {run_dir}/STAGE "
            f"--steps N, N over its steps (dvae 2, transformer 2, clip 2), then t2i train --resume {run_dir} to "
            f"export it)") in said, said
    assert "pictures" not in said


# A torchrun patch: validation stalls from step 3 (--patience 2 stops the run at step 4), and rank 0's disk is full
# as it records that stop in train_config.json
RANK_0_EARLY_STOP_DISK_FULL = """
import errno
import t2i_cli.train as train
from t2i_cli.stages import DVAEStage
losses = iter([1.0, 0.9, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
DVAEStage.validate = lambda self: {"val_loss": next(losses)}
if os.environ.get("RANK") == "0":
    real_write = train.atomic_write_json
    def atomic_write_json(path, data, *args, **kwargs):
        if path.name == "train_config.json" and data.get("steps") == 4:
            raise OSError(errno.ENOSPC, "No space left on device", "train_config.json")
        return real_write(path, data, *args, **kwargs)
    train.atomic_write_json = atomic_write_json
"""


def test_torchrun_an_early_stop_rank_0_cannot_record_is_said_once(tmp_path: Path):
    """--patience's stop, recorded by rank 0 alone (train_config.json's steps made the step it stopped at): where
    the disk was full there, rank 1, waiting at the run's last checkpoint, said a second line ("error: rank 1
    stopped: another torchrun process of this run stopped first ..."). One line now, both exit 1."""
    from conftest import exit_codes, torchrun_t2i

    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_EARLY_STOP_DISK_FULL, "--stage", "dvae", "--steps", "8", "--sample-every",
                        "1", "--patience", "2", "--data", "world", "--out", str(out))
    assert proc.returncode != 0 and exit_codes(tmp_path) == ["1", "1"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert len(said) == 1 and said[0].startswith("error: train_config.json: No space left on device"), \
        proc.stderr[-3000:]
