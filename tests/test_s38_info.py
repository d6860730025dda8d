"""Session 38: `t2i info RUN` says how far a training run got, whether it is training now, and what to do next."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import one_line_failure, run, signal_after_step
from t2i_cli.files import folder_lock

DVAE = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--sample-every", "4",
        "--ckpt-every", "100"]


def info(*args) -> tuple[str, dict]:
    """`t2i info ARGS` as text, and as JSON."""
    text, as_json = run("info", *args), run("info", *args, "--json")
    assert text.exit_code == 0 and as_json.exit_code == 0, (text.stderr, as_json.stderr)
    return text.stdout, json.loads(as_json.stdout)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("info") / "dvae"
    r = run(*DVAE, "--steps", "4", "--out", out)
    assert r.exit_code == 0, r.stderr
    return out


def test_a_finished_run_says_its_steps_losses_and_what_reads_it(finished_run: Path):
    """`t2i info RUN` refused a run folder ("export the runs into a new one"), and `t2i info FOLDER` was an
    unexpected argument: a user training for hours had metrics.jsonl to read by hand."""
    text, data = info(finished_run)
    lines = text.splitlines()
    assert lines[0] == f"{finished_run}: a dvae run on world:train"
    assert lines[1] == "  status    finished at step 4"
    assert lines[2].startswith("  loss      ") and " at step 4 (logit_laplace; pixel L1 " in lines[2]
    assert lines[3].startswith("  val_loss  best ") and lines[3].endswith(" at step 4 (pixel L1)")  # (s44 hE)
    assert lines[-1] == f"  next      the transformer stage reads it: --dvae {finished_run}"
    rows = [json.loads(x) for x in (finished_run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "loss" in r][-1]
    assert data["kind"] == "run" and data["stage"] == "dvae" and data["status"] == "finished"
    assert (data["step"], data["steps"]) == (4, 4) and data["loss"] == {"step": 4, "value": last["loss"],
                                                                           "recon_l1": last["recon_l1"],
                                                                           "recon_loss": "logit_laplace"}
    assert data["val_loss"]["best_step"] == 4 and data["eta_s"] is None
    assert run("info", "--weights", finished_run).stdout == text  # --weights names it too


def test_a_run_trained_now_by_another_process_is_seen_by_its_lock(finished_run: Path):
    with folder_lock(finished_run, "busy"):
        text, data = info(finished_run)
    assert data["status"] == "training" and data["next"] is None
    assert "  status    training now (another process): step 4 of 4 logged" in text.splitlines()
    assert "next" not in text


def test_a_stopped_run_says_its_checkpoint_and_the_resume(tmp_path: Path, monkeypatch):
    out = tmp_path / "cut"
    undo = signal_after_step(monkeypatch, 3, signal.SIGINT)
    assert run(*DVAE, "--steps", "8", "--out", out).exit_code == 130
    undo()
    text, data = info(out)
    assert data["status"] == "stopped" and (data["step"], data["steps"]) == (3, 8)
    assert "  status    stopped at step 3 of 8 (its checkpoint's; a stop, an error or a kill)" in text
    assert text.splitlines()[-1] == f"  next      resume with: t2i train --resume {out}"
    # a divergence logged after the checkpoint: the run's own words, no resume offered as is
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "diverged": "training diverged at step 4 (loss nan); resume with a lower "
                                                   "--lr"}) + "\n")
    text, data = info(out)
    assert data["status"] == "diverged" and data["next"] is None
    assert "  status    training diverged at step 4 (loss nan); resume with a lower --lr" in text


def test_a_whole_run_shows_each_stage_and_the_whole_runs_resume(tmp_path: Path, monkeypatch):
    out = tmp_path / "all"
    undo = signal_after_step(monkeypatch, 4 + 2, signal.SIGINT)  # the dVAE's 4 steps, then 2 of the transformer's
    r = run("train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--steps",
            "dvae=4,transformer=6,clip=2", "--out", out)
    undo()
    assert r.exit_code == 130, r.stderr
    text, data = info(out)
    assert data["kind"] == "whole run" and data["status"] == "stopped" and data["settings"]["preset"] == "tiny"
    assert {s: v["status"] for s, v in data["stages"].items()} == {
        "tokenizer": "finished", "dvae": "finished", "transformer": "stopped", "clip": "not started"}
    assert data["stages"]["tokenizer"]["steps"] is None  # (it said 1000, its config's unused default: no steps)
    assert data["stages"]["transformer"]["step"] == 2 and "next" not in data["stages"]["transformer"]
    assert text.splitlines()[0] == f"{out}: a whole run (--stage all) on world:train, stopped"
    assert any(line.startswith("│ transformer │ stopped") and "2 / 6" in line for line in text.splitlines()), text
    assert text.splitlines()[-1] == f"  next      resume with: t2i train --resume {out}"
    # a stage being trained now by another process: the whole run is training, with nothing to do but wait
    with folder_lock(out / "transformer", "busy"):
        text, data = info(out)
    assert data["status"] == "training" and data["next"] is None and "next" not in text, text
    assert text.splitlines()[0] == f"{out}: a whole run (--stage all) on world:train, training"
    # one of its stages: the command to go on is still the whole run's
    assert info(out / "transformer")[1]["next"] == f"resume with: t2i train --resume {out}"
    assert run("train", "--resume", out, "-q").exit_code == 0
    text, data = info(out)
    assert data["status"] == "finished" and text.splitlines()[-1] == \
        f"  next      generate with: t2i generate PROMPT --weights {out / 'weights'}"


def test_a_weights_folder_is_described_as_before_and_folder_and_weights_must_agree(tiny_weights_folder, tmp_path):
    by_arg, by_option = run("info", tiny_weights_folder), run("info", "--weights", tiny_weights_folder)
    assert by_arg.exit_code == 0 and by_arg.stdout == by_option.stdout and "identity" in by_arg.stdout
    line = one_line_failure(run("info", tiny_weights_folder, "--weights", tmp_path), 2)
    assert line == f"error: FOLDER {tiny_weights_folder} and --weights {tmp_path} disagree; give one of them"
    # the same folder named two ways (relative and absolute) agrees
    rel = Path(os.path.relpath(tiny_weights_folder))
    both = run("info", rel, "--weights", tiny_weights_folder)
    assert both.exit_code == 0 and "identity" in both.stdout, both.stderr


@pytest.fixture
def tiny_weights_folder(tmp_path: Path) -> Path:
    from conftest import build_tiny_folder

    folder = tmp_path / "w"
    build_tiny_folder(folder)
    return folder


def test_vary_of_a_picture_other_weights_drew_says_so(tmp_path: Path):
    """`t2i vary PNG` (the README's example takes no --weights) of a picture one's own model drew used the shipped
    weights without a word: another dVAE read its codes (the walkthrough's 64 px picture came back 128 px). It
    now says which weights drew it, as `generate --from` and `rerank` do; as `generate --image` does too."""
    from conftest import build_tiny_folder

    mine, other = build_tiny_folder(tmp_path / "mine", seed=0), build_tiny_folder(tmp_path / "other", seed=1)
    drawn = run("generate", "a red bird", "--weights", mine, "--candidates", "1", "--out", tmp_path / "g", "-q")
    assert drawn.exit_code == 0, drawn.stderr
    png = tmp_path / "g" / "a-red-bird-000.png"
    r = run("vary", png, "--n", "1", "--weights", other, "--out", tmp_path / "v")
    assert r.exit_code == 0, r.stderr
    identity = run("info", mine, "--json")
    mine_id = json.loads(identity.stdout)["identity"]
    other_id = json.loads(run("info", other, "--json").stdout)["identity"]
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {png} was drawn by weights {mine_id}, these are {other_id} ({other}): another "
                      f"dVAE reads its codes and another transformer draws them; pass the --weights it was made "
                      f"with"], r.stderr
    image = run("generate", "a red bird", "--image", png, "--keep-top", "0.5", "--weights", other, "--candidates",
                "1", "--out", tmp_path / "i")
    assert image.exit_code == 0 and warned[0] in image.stderr.splitlines(), image.stderr
    for args in (["--weights", mine], ["--weights", other, "-q"]):  # its own weights; or asked to be quiet
        again = run("vary", png, "--n", "1", *args, "--out", tmp_path / "v")
        assert again.exit_code == 0 and "warning" not in again.stderr, again.stderr


def test_a_damaged_run_is_one_line(tmp_path: Path):
    """A whole run's all.json that is not JSON was an internal error (ValueError) in `t2i info`."""
    out = tmp_path / "all"
    (out / "dvae").mkdir(parents=True)
    (out / "all.json").write_text('{"data": 3')
    line = one_line_failure(run("info", out), 2)
    assert line.startswith(f"error: {out / 'all.json'} is not readable ("), line


def test_a_checkpoint_whose_step_is_not_a_number_is_one_line(finished_run: Path, tmp_path: Path):
    import shutil

    from t2i_cli.weights import load_tensors, save_tensors

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    tensors, meta = load_tensors(out / "checkpoint.safetensors")
    save_tensors(out / "checkpoint.safetensors", tensors, {**meta, "step": "four"})
    line = one_line_failure(run("info", out), 2)
    assert line == f"error: {out / 'checkpoint.safetensors'} records no step t2i reads; resume the run to have it " \
                   f"checked", line


def test_a_whole_run_whose_stage_diverged_points_at_that_stage(tmp_path: Path, monkeypatch):
    """A whole run cannot be resumed at a lower --lr: where a stage diverged, its info points at the stage (whose own
    line says how to go on), not at the whole run's resume."""
    out = tmp_path / "all"
    undo = signal_after_step(monkeypatch, 4 + 2, signal.SIGINT)
    assert run("train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--steps",
               "dvae=4,transformer=6,clip=2", "--out", out).exit_code == 130
    undo()
    with open(out / "transformer" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 3, "diverged": "training diverged at step 3 (loss nan); go on at a lower --lr"})
                + "\n")
    text, data = info(out)
    assert data["status"] == "diverged" and data["stages"]["transformer"]["status"] == "diverged"
    said = f"  next      its transformer stage diverged: t2i info {out / 'transformer'} says how to go on"
    assert text.splitlines()[-1] == said


def test_a_run_training_now_says_its_best_and_last_validation_its_pace_and_time_left(finished_run: Path,
                                                                                     tmp_path: Path):
    """The lines a user watching a long run reads: the best validation (the lowest, not the latest), the latest
    beside it, the pace of the latest start only (an earlier start's slower steps are not averaged in) and the
    time left from the last logged step. Its metrics.jsonl written here: two starts, the second twice as fast."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    config = json.loads((out / "train_config.json").read_text())
    (out / "train_config.json").write_text(json.dumps({**config, "steps": 243}))
    rows = [{"step": 0, "time": 0.0, "precision": "fp32"}, {"step": 1, "time": 100.0, "loss": 0.9},
            {"step": 1, "time": 100.5, "val_loss": 0.5},
            {"step": 1, "time": 1000.0, "precision": "fp32"},  # the resume, from step 1's checkpoint
            {"step": 2, "time": 1000.5, "loss": 0.85}, {"step": 3, "time": 1001.0, "loss": 0.8},
            {"step": 3, "time": 1001.2, "val_loss": 0.7}]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with folder_lock(out, "busy"):
        text, data = info(out)
    assert data["status"] == "training" and data["loss"] == {"step": 3, "value": 0.8}
    assert data["val_loss"] == {"best": 0.5, "best_step": 1, "last": 0.7, "last_step": 3}
    assert data["rate"] == pytest.approx(2.0) and data["eta_s"] == pytest.approx(120.0)  # (243 - 3) / 2
    lines = text.splitlines()
    assert "  status    training now (another process): step 3 of 243 logged" in lines, text
    assert "  val_loss  best 0.5 at step 1; last 0.7 at step 3" in lines, text
    assert "  pace      2 steps/s since its latest start, about 2 min left" in lines, text


def test_a_run_that_patience_stopped_is_said_as_such_and_a_whole_run_of_them_is_finished(tmp_path: Path,
                                                                                         monkeypatch):
    """--patience's early stop is a finished run (its steps became the step it stopped at), said apart from one
    that ran its course; a whole run whose stages stopped early is finished too, and reads its weights."""
    import t2i_cli.train as train

    monkeypatch.setattr(train, "stalled", lambda history, patience: len(history) >= 2)  # (stops at the second)
    out = tmp_path / "early"
    r = run(*DVAE[:-4], "--sample-every", "2", "--ckpt-every", "100", "--steps", "10", "--patience", "1", "--out", out)
    assert r.exit_code == 0, r.stderr
    text, data = info(out)
    assert data["status"] == "stopped early" and (data["step"], data["steps"]) == (4, 4)
    assert text.splitlines()[1] == "  status    stopped early by --patience at step 4", text
    assert data["next"] == f"the transformer stage reads it: --dvae {out}"
    whole = tmp_path / "all"
    r = run("train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--steps",
            "dvae=10,transformer=10,clip=10", "--sample-every", "2", "--patience", "1", "--out", whole)
    assert r.exit_code == 0, r.stderr
    text, data = info(whole)
    assert "stopped early" in {v["status"] for v in data["stages"].values()}, data
    assert data["status"] == "finished" and data["next"] == f"generate with: t2i generate PROMPT --weights " \
                                                             f"{whole / 'weights'}", data
    assert text.splitlines()[-1] == f"  next      generate with: t2i generate PROMPT --weights {whole / 'weights'}"


def test_a_run_stopped_before_its_first_checkpoint_says_so_and_the_resume(finished_run: Path, tmp_path: Path):
    """A run stopped before any checkpoint (step 0): not "stopped at step 0", but what that means."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "checkpoint.safetensors").unlink()
    text, data = info(out)
    assert data["status"] == "stopped" and (data["step"], data["steps"]) == (0, 4)
    assert text.splitlines()[1] == "  status    stopped with none of its steps saved (0 of 4 steps)", text
    assert text.splitlines()[-1] == f"  next      resume with: t2i train --resume {out}"


def test_a_finished_decoder_fine_tune_says_how_it_is_exported(finished_run: Path, tmp_path: Path):
    """A --finetune-decoder run is not read by a next stage: it is exported beside the transformer trained on the
    codes of the dVAE it started from, with --force."""
    ft = tmp_path / "ft"
    r = run("train", "--stage", "dvae", "--finetune-decoder", "--dvae", finished_run, "--preset", "tiny", "--workers",
            "0", "-q", "--steps", "1", "--sample-every", "0", "--out", ft)
    assert r.exit_code == 0, r.stderr
    text, data = info(ft)
    assert data["status"] == "finished" and data["next"] == (
        f"export it after the transformer trained on its dVAE's codes: t2i export TRANSFORMER_RUN {ft} --to "
        f"WEIGHTS_DIR --force")
    assert text.splitlines()[-1] == f"  next      {data['next']}"
