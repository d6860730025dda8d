"""Session 38: `t2i info RUN` says how far a training run got, whether it is training now, and what to do next."""

from __future__ import annotations

import json
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
    assert lines[2].startswith("  loss      ") and lines[2].endswith(" at step 4")
    assert lines[3].startswith("  val_loss  best ") and lines[3].endswith(" at step 4")
    assert lines[-1] == f"  next      the transformer stage reads it: --dvae {finished_run}"
    rows = [json.loads(x) for x in (finished_run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "loss" in r][-1]
    assert data["kind"] == "run" and data["stage"] == "dvae" and data["status"] == "finished"
    assert (data["step"], data["steps"]) == (4, 4) and data["loss"] == {"step": 4, "value": last["loss"]}
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
