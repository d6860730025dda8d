"""The whole run (`t2i train --stage all`) attacked as a user, session 43 (hM): the defects met, each pinned."""

from __future__ import annotations

from pathlib import Path

from conftest import one_line_failure, run
from test_s43_journey import _pictures


def _whole_run(tmp_path: Path) -> tuple[Path, Path]:
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return pics, out


def test_a_finished_tokenizer_stage_resumed_is_not_learned_again(tmp_path):
    """`t2i train --resume RUN/tokenizer` of a whole run's finished tokenizer stage (or of any tokenizer run)
    learned the tokenizer again from the data as it was now and wrote it over: with captions edited since, the
    run's tokenizer.json became another vocabulary than the one its transformer and CLIP read, unasked (and the
    finish line said "tokenizer stage finished" as if it were new). The README says a finished run's --resume has
    nothing to train; a learned tokenizer is now left as it is, and the resume says so."""
    pics, out = _whole_run(tmp_path)
    tok = out / "tokenizer" / "tokenizer.json"
    before = tok.read_bytes()
    for i in range(4):
        (pics / f"pic{i}.txt").write_text(f"zebra quokka platypus narwhal axolotl {i}\n")
    r = run("train", "--resume", out / "tokenizer", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert tok.read_bytes() == before
    assert f"tokenizer stage: already learned ({tok}); nothing to learn" in " ".join(r.stdout.split()), r.stdout
    assert "tokenizer stage finished" not in r.stdout, r.stdout


def test_export_and_generate_of_a_whole_run_being_trained_now_do_not_say_to_resume_it(tmp_path):
    """`t2i export RUN` and `t2i generate --weights RUN` of a whole run that another process is training now (its
    dVAE stage, say) said "finish it with t2i train --resume RUN", a command refused then as busy ("RUN/dvae is
    being trained by another t2i process now"). They now say it is being trained, where its weights will be, and
    that `t2i info RUN` says how far it got; a stopped run's advice is as it was."""
    from t2i_cli.files import PLAN, folder_lock

    _, done = _whole_run(tmp_path)
    out = tmp_path / "training"  # as a whole run in its dVAE stage leaves it: all.json and the first stages
    out.mkdir()
    (out / PLAN).write_text((done / PLAN).read_text())
    for stage in ("tokenizer", "dvae"):
        (out / stage).mkdir()
    with folder_lock(out / "dvae", "held by the test"):  # (a flock of another open of the folder: as a process's)
        line = one_line_failure(run("export", out, "--to", tmp_path / "w"), 2)
        assert "being trained now by another t2i process" in line and "--resume" not in line, line
        assert f"exports them to {out / 'weights'} when it finishes (t2i info {out} says how far it got)" in line
        line = one_line_failure(run("generate", "a picture", "--weights", out, "--out", tmp_path / "g"))
        assert "being trained now by another t2i process" in line and "--resume" not in line, line
    line = one_line_failure(run("export", out, "--to", tmp_path / "w"), 2)
    assert f"has not finished, so it has no weights yet; finish it with `t2i train --resume {out}`" in line, line
    assert f"finish it with `t2i train --resume {out}`" in one_line_failure(
        run("generate", "a picture", "--weights", out, "--out", tmp_path / "g"))
    assert not (tmp_path / "w").exists() and not (tmp_path / "g").exists()


def test_a_whole_runs_refusal_shows_the_steps_batch_lr_and_vocabulary_it_trains_with(tmp_path):
    """A whole run's --resume with another --lr, --batch-size, --steps or --vocab-size than its command left to
    the preset was refused saying "lr the preset's in the run, 5e-4 here": the user could not tell what to say
    again (a tiny run trains every stage at 0.001). Each is now shown as the stages train it, one value where they
    share it, else per stage as `--lr dvae=X,...` would write it."""
    from t2i_cli.files import PLAN
    from t2i_cli.recipe import settings_said_again

    out = tmp_path / "run"
    out.mkdir()
    plan = f'{{"data": "{_pictures(tmp_path / "pics")}", "preset": "PRESET", "flip": null, "crop": null, "ema": null}}'
    (out / PLAN).write_text(plan.replace("PRESET", "tiny"))
    differ = settings_said_again(out, {"lr": 5e-4, "vocab_size": 64})
    assert differ == {"lr": "lr 0.001 (not given) in the run, 0.0005 here",
                      "vocab_size": "vocab_size 128 (not given) in the run, 64 here"}, differ
    (out / PLAN).write_text(plan.replace("PRESET", "default"))
    differ = settings_said_again(out, {"batch_size": "16", "steps": "100"})
    assert differ == {"batch_size": "batch_size dvae=32,transformer=32,clip=64 (not given) in the run, 16 here",
                      "steps": "steps dvae=2400,transformer=3000,clip=500 (not given) in the run, 100 here"}, differ


def test_info_of_a_whole_runs_stage_or_weights_not_made_yet_says_so(tmp_path):
    """`t2i info RUN/clip` (a stage not started) or `t2i info RUN/weights` of a whole run that has not finished
    said "does not exist; give t2i info a weights folder or a training run folder", where `generate --weights` of
    the same folder says what it is, how far the run got and where its weights will be: info now says the same."""
    from t2i_cli.files import PLAN

    _, done = _whole_run(tmp_path)
    out = tmp_path / "stopped"  # as a Ctrl-C in its dVAE stage leaves it
    out.mkdir()
    (out / PLAN).write_text((done / PLAN).read_text())
    for stage in ("tokenizer", "dvae"):
        (out / stage).mkdir()
    for folder, what in (("clip", "has not started its clip stage"), ("weights", "has not finished")):
        line = one_line_failure(run("info", out / folder), 2)
        assert line == (f"error: {out / folder} does not exist yet: {out} is a --stage all run that {what}; t2i info "
                        f"{out} says how far it got, and once it finishes its weights are {out / 'weights'}"), line
    line = one_line_failure(run("info", out / "other"), 2)
    assert line == f"error: {out / 'other'} does not exist; give t2i info a weights folder or a training run folder"


def test_generate_with_a_whole_runs_stage_folder_names_the_run_not_an_export_into_a_new_folder(tmp_path):
    """`t2i generate --weights RUN/dvae` (or RUN/transformer with --candidates, before its CLIP stage) of a whole
    run said "it is a training run folder, not a weights folder; export the runs into a new one: t2i export
    TRANSFORMER_RUN [CLIP_RUN] --to dvae-weights": an export of models the run exports itself, into a folder named
    after the stage. It now names the whole run and its weights: there, or written when it finishes."""
    _, out = _whole_run(tmp_path)
    line = one_line_failure(run("generate", "a picture", "--weights", out / "dvae", "--out", tmp_path / "g"))
    assert line.endswith(f"it is the dvae stage of the --stage all run {out}, whose weights are {out / 'weights'}")
    (out / "weights").rename(tmp_path / "old-weights")  # as before the run's export (a Ctrl-C in its CLIP stage)
    line = one_line_failure(run("generate", "a picture", "--weights", out / "transformer", "--candidates", "2",
                                "--out", tmp_path / "g"))
    assert "export" not in line and "-weights" not in line, line
    assert (f"it is the transformer stage of the --stage all run {out}, not a weights folder; the run writes its "
            f"weights to {out / 'weights'} when it finishes (t2i info {out} says how far it got); without "
            f"--candidates it draws with this stage's transformer alone") in line, line
    assert not (tmp_path / "g").exists()


def test_a_finished_whole_runs_resume_exports_without_its_pictures(tmp_path):
    """A whole run whose stages were all done, one of them extended on its own, was refused at `t2i train --resume
    RUN` (the command that exports it to RUN/weights) once its pictures had moved: "the pictures RUN trains on
    were at ..., which no longer exists; put them back there", though nothing was left to train (a finished
    stage's resume does not open its data). It now exports; a run with a stage left to train is still refused."""
    pics, out = _whole_run(tmp_path)
    r = run("train", "--resume", out / "transformer", "--steps", "3", "--workers", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    pics.rename(tmp_path / "moved")
    r = run("train", "--resume", out, "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert (out / "weights" / "transformer.safetensors").read_bytes() \
        == (out / "transformer" / "transformer.safetensors").read_bytes()
    r = run("train", "--resume", out / "clip", "--steps", "3", "--workers", "0", "--quiet")  # (its data is gone)
    assert r.exit_code != 0
    (out / "weights").rename(tmp_path / "w")
    (out / "clip" / "clip.safetensors").unlink()
    (out / "clip" / "checkpoint.safetensors").unlink()  # a stage left to train: its pictures are needed
    line = one_line_failure(run("train", "--resume", out, "--workers", "0", "--quiet"))
    assert f"the pictures {out} trains on were at {pics}, which no longer exists" in line, line


def test_a_whole_run_started_twice_at_once_into_one_folder_says_the_other_is_training_it(tmp_path):
    """Two `t2i train --stage all ... --out RUN` started at the same moment: the second found the first's
    RUN/tokenizer being made and was refused "--out RUN/tokenizer is a folder that holds other files; pick a new
    or empty folder", as if the user's files were there. A stage folder another process holds is said as such."""
    from t2i_cli.files import PLAN, folder_lock

    pics, done = _whole_run(tmp_path)
    out = tmp_path / "twice"  # as the first command leaves it a moment after it started
    (out / "tokenizer").mkdir(parents=True)
    (out / PLAN).write_text((done / PLAN).read_text().replace(str(done), str(out)))
    (out / "tokenizer" / "data_record.json").write_text("{}")
    (out / "tokenizer" / "train_config.json.tmp").write_text("{}")
    with folder_lock(out / "tokenizer", "held by the test"):
        line = one_line_failure(run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny",
                                    "--steps", "2", "--workers", "0", "--quiet"), 2)
    assert line == (f"error: {out / 'tokenizer'} is being trained by another t2i process now; wait for it to finish "
                    f"(a second process would write the same files)"), line
