"""`t2i train --resume RUN` with the run's own settings said again: the command that started the run with
--resume RUN added (what a stop's message suggests) continues it; a setting that differs is still refused."""
from __future__ import annotations

import json

from conftest import one_line_failure, run

START = ("train", "--stage", "dvae", "--preset", "tiny", "--data", "world:train", "--device", "cpu", "--workers", "0",
         "-q")


def steps_done(run_dir) -> int:
    return max(json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines())


def test_the_starting_command_with_resume_added_continues_the_run(tmp_path):
    r = run(*START, "--steps", "2", "--log-every", "1", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    # the stop's advice taken literally: the same command, --resume RUN added (its --out names the run again)
    r = run(*START, "--steps", "4", "--log-every", "1", "--out", tmp_path / "r", "--resume", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "r" / "train_config.json").read_text())["steps"] == 4
    assert steps_done(tmp_path / "r") == 4
    # a setting said again as the run has it (the preset's batch size) is its own, too
    r = run("train", "--resume", tmp_path / "r", "--preset", "tiny", "--batch-size", "8", "--steps", "5", "-q")
    assert r.exit_code == 0, r.stderr
    assert steps_done(tmp_path / "r") == 5


def test_a_setting_other_than_the_runs_is_still_refused(tmp_path):
    r = run(*START, "--steps", "2", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    before = (tmp_path / "r" / "train_config.json").read_text()
    for extra, named in ((("--preset", "default"), "--preset"),
                         # (since 0.13.2 only what differs is named, not the run's own --preset beside it)
                         (("--preset", "tiny", "--batch-size", "3"), "--batch-size"),
                         (("--preset", "tiny", "--data", str(tmp_path)), "--data"),
                         (("--out", str(tmp_path / "other")), "--out"),
                         # another --out with the run's own settings said again: never the run's (it was ignored)
                         (("--preset", "tiny", "--data", "world:train", "--out", str(tmp_path / "other")),
                          "--out"),
                         (("--seed", "1"), "--seed")):
        line = one_line_failure(run("train", "--resume", tmp_path / "r", "--steps", "3", *extra), 2)
        assert line.startswith(f"error: {named} cannot change a run that has started"), line
    assert not (tmp_path / "other").exists()
    assert (tmp_path / "r" / "train_config.json").read_text() == before
    assert steps_done(tmp_path / "r") == 2


def test_the_starting_command_does_not_train_an_early_stopped_run_on(tmp_path):
    """A --patience stop makes the run's steps the step it stopped at; its starting command said again (with
    --resume RUN) would have read its --steps as an extension and trained the finished run on."""
    start = (*START, "--steps", "12", "--sample-every", "1", "--patience", "1", "--lr", "0.9", "--out", tmp_path / "r")
    r = run(*start)
    assert r.exit_code == 0, r.stderr
    stopped = json.loads((tmp_path / "r" / "train_config.json").read_text())["steps"]
    assert stopped < 12 and "stopping early" in r.stderr, r.stderr  # (lr 0.9 stalls a tiny dVAE at once)
    before = (tmp_path / "r" / "dvae.safetensors").read_bytes()
    line = one_line_failure(run(*start, "--resume", tmp_path / "r"), 2)
    assert f"stopped early at step {stopped} (--patience)" in line and "--steps 12 --patience 0" in line, line
    assert (tmp_path / "r" / "dvae.safetensors").read_bytes() == before
    r = run("train", "--resume", tmp_path / "r", "--steps", str(stopped + 1), "--patience", "0", "-q")  # alone
    assert r.exit_code == 0 and steps_done(tmp_path / "r") == stopped + 1, r.stderr


def test_a_resume_naming_another_stage_says_so_before_anything_else(tmp_path):
    r = run(*START, "--steps", "2", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    line = one_line_failure(run("train", "--resume", tmp_path / "r", "--stage", "transformer", "--preset", "tiny"), 2)
    assert line.startswith("error: --stage transformer: ") and "is a dvae run" in line, line


def test_a_refused_resume_says_which_setting_differs_from_the_runs(tmp_path):
    """The refusal named every option given (--batch-size, --data, --preset), not the one that was not the run's
    own; settings a command leaves to another preset differ without being named."""
    r = run(*START, "--steps", "2", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    preset = "settings it does not name differ from the run's, as another --preset would make them"
    asked = f"{preset} (was the run started with --preset?))"
    # the options named as refused are those that differ (since 0.13.2: the run's own --preset said again was named
    # beside another --batch-size), all of them where what differs is no one option's
    for extra, said, named in (
            (("--preset", "tiny", "--batch-size", "3"), ": here --batch-size 3, the run's 8)", "--batch-size"),
            (("--preset", "tiny", "--data", "world:train", "--flip"),  # why it cannot be the run's
             ": --flip mirrors the pictures of a folder or manifest; the world draws", "--data, --flip, --preset"),
            (("--preset", "tiny", "--seed", "1"), ": here --seed 1, the run's 0)", "--seed"),
            (("--seed", "1"), f": here --seed 1, the run's 0; {asked}", "--seed"),
            (("--data", "world:train"), f": here {asked}", "--data"),
            (("--preset", "default"), f": here {preset})", "--preset")):
        line = one_line_failure(run("train", "--resume", tmp_path / "r", "--steps", "3", *extra), 2)
        assert f"its own settings may be said again{said}" in line and line.endswith(")"), line
        assert line.startswith(f"error: {named} cannot change a run that has started"), line
    # a setting this stage cannot take at all: refused with why (it was refused without)
    line = one_line_failure(run("train", "--resume", tmp_path / "r", "--preset", "tiny", "--model", "bogus=1"), 2)
    assert line.startswith("error: --model, --preset cannot change a run that has started"), line
    assert "may be said again: " in line and "bogus" in line.split("may be said again")[1], line
    # another --out is never the run's, whatever else is said: nothing to compare
    line = one_line_failure(run("train", "--resume", tmp_path / "r", "--preset", "tiny", "--out", tmp_path / "o"), 2)
    assert line.endswith("its own settings may be said again)"), line
    assert steps_done(tmp_path / "r") == 2


def test_a_resume_whose_settings_cannot_be_rebuilt_is_refused_not_taken_as_the_runs(tmp_path, monkeypatch):
    """Settings said again that fail to build a config (here a KeyError) are not the run's own: refused."""
    from t2i_cli import train_options

    r = run(*START, "--steps", "2", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr

    def broken(*args, **kwargs):
        raise KeyError("preset")

    monkeypatch.setattr(train_options, "train_config", broken)
    line = one_line_failure(run("train", "--resume", tmp_path / "r", "--steps", "3", "--preset", "tiny"), 2)
    assert line.startswith("error: --preset cannot change a run that has started"), line
    assert line.endswith("its own settings may be said again)"), line
    assert steps_done(tmp_path / "r") == 2


def test_a_refused_resume_names_only_the_model_settings_the_command_typed(tmp_path):
    """--model n_hid=8 (the run's own) without --preset listed every model setting the default preset differs in
    ("--model code_dim=64, the run's 16; --model fsq_levels=, ...") as if typed."""
    r = run(*START, "--steps", "2", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    model = json.loads((tmp_path / "r" / "train_config.json").read_text())["model"]
    own, other = f"n_hid={model['n_hid']}", f"n_hid={model['n_hid'] + 8}"
    asked = ("settings it does not name differ from the run's, as another --preset would make them (was the run "
             "started with --preset?))")
    line = one_line_failure(run("train", "--resume", tmp_path / "r", "--steps", "3", "--model", own), 2)
    assert line.endswith(f"its own settings may be said again: here {asked}"), line
    line = one_line_failure(run("train", "--resume", tmp_path / "r", "--steps", "3", "--preset", "tiny", "--model",
                                other), 2)
    assert line.endswith(f"its own settings may be said again: here --model {other}, the run's {model['n_hid']})"), line
    r = run("train", "--resume", tmp_path / "r", "--steps", "3", "--preset", "tiny", "--model", own, "-q")
    assert r.exit_code == 0, r.stderr
    assert steps_done(tmp_path / "r") == 3
