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
    assert "fsq_levels=4,2,4: FSQ needs 3 or more levels per channel" in line
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
