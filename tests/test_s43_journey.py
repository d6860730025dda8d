"""A new user's journey on their own pictures, as an attacker (session 43): the defects met, each pinned."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run
from test_s42_journey import _pictures as _captioned


def _pictures(folder: Path, n: int = 4) -> Path:
    """n small captioned pictures, each of one colour (four unless told)."""
    return _captioned(folder, n)


def test_a_whole_runs_resume_takes_its_own_default_said_again(tmp_path):
    """`t2i train --resume RUN --seed 0` of a whole run started without --seed (so at seed 0) was refused:
    "--seed cannot change a whole run that has started (seed the preset's in the run, 0 here)", though 0 is the
    very seed it trains at; so were the tiny preset's --no-flip, --crop 1 and --image-side 16 said again. A value
    that builds the run's own stages is its setting said again; another value is still refused."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    for said in (["--seed", "0"], ["--no-flip"], ["--crop", "1"], ["--image-side", "16"], ["--ema", "0"]):
        r = run("train", "--resume", out, *said, "--workers", "0", "--quiet")
        assert r.exit_code == 0, (said, r.stdout, r.stderr)
        assert '"dvae": "done before"' in r.stdout, r.stdout
    # the same command again, --seed 0 added, continues it too
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--seed", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    for other in (["--seed", "1"], ["--flip"], ["--crop", "0.9"], ["--image-side", "32"]):
        line = one_line_failure(run("train", "--resume", out, *other), 2)
        assert "cannot change a whole run" in line, line


def test_export_of_a_stopped_whole_run_does_not_say_its_models_are_exported(tmp_path):
    """`t2i export RUN` of a whole run stopped in its dVAE stage (Ctrl-C) said "RUN is a --stage all run, whose
    models are already exported to RUN/weights", a folder that did not exist: the user looked for weights that
    were never written. It now says the run has not finished, how to finish it (which exports them), and names
    the stage folders it has; a finished run's refusal is as it was."""
    from t2i_cli.files import PLAN

    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    line = one_line_failure(run("export", out, "--to", tmp_path / "w"), 2)
    assert "already exported to" in line and (out / "weights").is_dir(), line
    stopped = tmp_path / "stopped"  # as a Ctrl-C in its dVAE stage leaves it: all.json and the first stages
    stopped.mkdir()
    (stopped / PLAN).write_text((out / PLAN).read_text())
    for stage in ("tokenizer", "dvae"):
        (stopped / stage).mkdir()
    line = one_line_failure(run("export", stopped, "--to", tmp_path / "w"), 2)
    assert "already exported" not in line, line
    assert f"has not finished, so it has no weights yet; finish it with `t2i train --resume {stopped}`" in line, line
    assert "t2i export" not in line, line  # (s45: it has no transformer to export; "export its stage folders
    # (RUN/dvae)" named a folder without a model, in the other wording of weights.py's advice, one sentence now)
    assert not (tmp_path / "w").exists()


XPM = '''/* XPM */
static char *dot[] = {
"2 2 2 1",
"a c #FF0000",
"b c #0000FF",
"ab",
"ba"};
'''


def test_icons_in_formats_t2i_does_not_read_are_named_not_called_captions_without_image(tmp_path):
    """A folder of icons as /usr/share/pixmaps holds them (.xpm) or Windows saves them (.ico), each with its
    caption: training and `data preview` said "found only: 6 .txt captions without image", naming no picture,
    and in a folder that had PNGs too the icons were dropped unsaid. Now each is counted and named as a format t2i
    does not read, to convert, as SVG and HEIC are."""
    pics = tmp_path / "icons"
    pics.mkdir()
    (pics / "python.xpm").write_text(XPM)
    Image.new("RGB", (16, 16), (10, 200, 30)).save(pics / "leaf.ico")
    for name in ("python", "leaf"):
        (pics / f"{name}.txt").write_text(f"a {name} icon\n")
    line = one_line_failure(run("data", "preview", pics, "--out", tmp_path / "p.png"))
    assert "captions without image" not in line, line
    assert "1 XPM picture (t2i does not read XPM from a folder: convert to JPEG or PNG)" in line, line
    assert "1 ICO picture (t2i does not read ICO from a folder: convert to JPEG or PNG)" in line, line
    _pictures(pics, 2)  # beside PNGs that train, they are said in the warning
    r = run("data", "preview", pics, "--out", tmp_path / "p.png")
    assert r.exit_code == 0, r.stderr
    assert "skipped 2 items" in r.stderr and "XPM picture" in r.stderr and "ICO picture" in r.stderr, r.stderr


def test_data_caption_of_a_folder_of_icons_it_does_not_read_names_them(tmp_path):
    """`t2i data caption` of a folder of .xpm and .ico icons without captions said "no pictures under icons ...;
    give the folder that holds them", of the folder that held them. It now names them and what to do."""
    pics = tmp_path / "icons"
    pics.mkdir()
    (pics / "python.xpm").write_text(XPM)
    Image.new("RGB", (16, 16), (10, 200, 30)).save(pics / "leaf.ico")
    for extra in ([], ["--dry-run"]):
        line = one_line_failure(run("data", "caption", pics, *extra))
        assert "give the folder that holds them" not in line, line
        assert f"1 XPM picture (t2i does not read XPM from a folder: convert to JPEG or PNG), e.g. " \
               f"{pics / 'python.xpm'}" in line, line
        assert "it holds 1 ICO picture" in line, line
    assert sorted(p.name for p in pics.iterdir()) == ["leaf.ico", "python.xpm"]


def test_a_collapsed_dvae_is_not_told_to_try_the_loss_it_trains_with(tmp_path, monkeypatch):
    """A tiny-preset dVAE on the icons (logit_laplace, the preset's loss) whose codebook collapsed warned
    "codebook perplexity 1.26: nearly every cell uses one code; try --recon-loss logit_laplace or a lower --lr":
    the loss it was using. Such a run is told to lower --lr; an l1 run is still told to try logit_laplace."""
    import torch

    from t2i_cli.models.dvae import DVAE

    real = DVAE.forward

    def frozen(self, *a, **k):  # a decoder whose output never varies, as a collapsed one's
        recon, loss, parts = real(self, *a, **k)
        return recon, loss, {**parts, "out_std": torch.tensor(0.0)}

    monkeypatch.setattr(DVAE, "forward", frozen)
    monkeypatch.setattr("t2i_cli.train.WATCHDOG_WARMUP", 2)
    for loss, says in ((None, "try more --steps or a lower --lr"),
                       ("l1", "try --recon-loss logit_laplace or a lower --lr")):
        out = tmp_path / f"run-{loss}"
        r = run("train", "--stage", "dvae", "--steps", "5", "--out", out, "--preset", "tiny", "--workers", "0",
                "--log-every", "1", "--device", "cpu", "-q", *(["--recon-loss", loss] if loss else []))
        assert r.exit_code == 0, r.stderr
        said = [ln for ln in r.stderr.splitlines() if "same image whatever the input" in ln]
        assert len(said) == 1 and said[0].endswith(says), said


def test_weights_of_a_whole_run_not_made_yet_are_not_sent_to_make_weights(tmp_path, tiny_weights):
    """`t2i generate --weights runs/mine/transformer` while a whole run still trained its dVAE (or
    `--weights runs/mine/weights` of a stopped run) said "weights folder ... does not exist; pass --weights DIR or
    run `make weights`": an hour's training of the shipped model, for a user who passed --weights. It now says the
    folder is the run's, not made yet, and where its weights will be."""
    from t2i_cli.files import PLAN

    whole = tmp_path / "mine"
    whole.mkdir()
    (whole / PLAN).write_text('{"data": "world:train", "preset": "tiny", "flip": null, "crop": null, "ema": null}')
    (whole / "dvae").mkdir()
    pics = tmp_path / "pics"
    pics.mkdir()
    pic = pics / "pic.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(pic)
    for command in (["generate", "a red bird", "--out", tmp_path / "o"], ["vary", pic, "--out", tmp_path / "o"],
                    ["rerank", pics]):
        line = one_line_failure(run(*command, "--weights", whole / "transformer"))
        assert "make weights" not in line, line
        assert (f"{whole / 'transformer'} does not exist yet: {whole} is a --stage all run that has not started its "
                f"transformer stage") in line, line
        assert f"its weights are {whole / 'weights'}" in line, line
    line = one_line_failure(run("generate", "a red bird", "--weights", whole / "weights", "--out", tmp_path / "o"))
    assert f"{whole} is a --stage all run that has not finished" in line, line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_whole_runs_stage_extended_alone_says_how_its_weights_get_it(tmp_path):
    """The README says to extend one stage of a whole run by resuming that stage's folder. Doing so ended with
    "export with: t2i export RUN/transformer [CLIP_RUN ...] --to WEIGHTS_DIR", while RUN/weights, the folder the
    user generates with, still held the model of before: nothing said so. The stage's finish line (and `t2i info`)
    now says that `t2i train --resume RUN` exports it there, and that does."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    before = (out / "weights" / "transformer.safetensors").read_bytes()
    r = run("train", "--resume", out / "transformer", "--steps", "3", "--workers", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    said = f"t2i train --resume {out} exports it to {out / 'weights'}"
    assert said in r.stdout and "--to WEIGHTS_DIR" not in r.stdout, r.stdout
    assert said in run("info", out / "transformer").stdout
    assert (out / "weights" / "transformer.safetensors").read_bytes() == before  # not yet
    r = run("train", "--resume", out, "--workers", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    assert (out / "weights" / "transformer.safetensors").read_bytes() \
        == (out / "transformer" / "transformer.safetensors").read_bytes() != before


def test_a_whole_runs_stage_resumed_with_its_own_preset_and_seed_said_again(tmp_path):
    """`t2i train --resume RUN/transformer --preset tiny --seed 0` of a tiny whole run's stage was refused:
    "--preset cannot change a run that has started ... settings it does not name differ from the run's, as
    another --preset would make them": what differed was the --dvae and --tokenizer the stage started from (the
    whole run's own), which the command that started it never named. They are the run's; another --seed, or
    another --dvae named, is still refused."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    r = run("train", "--resume", out / "transformer", "--preset", "tiny", "--seed", "0", "--data", pics,
            "--steps", "3", "--workers", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    assert '"step": 3' in r.stdout, r.stdout
    line = one_line_failure(run("train", "--resume", out / "transformer", "--preset", "tiny", "--seed", "1"), 2)
    assert line.startswith("error: --seed cannot change a run that has started"), line
    line = one_line_failure(run("train", "--resume", out / "clip", "--preset", "tiny", "--tokenizer",
                                out / "transformer"), 2)
    assert line.startswith("error: --tokenizer cannot change a run that has started"), line


def test_eval_json_dash_is_refused_not_written_as_a_file_named_dash(tmp_path, tiny_weights, monkeypatch):
    """`t2i eval --data pics --json -` (as `--prompts -` reads standard input) wrote its JSON to a file named
    "-" in the current folder and said "wrote -", while standard output held the table: a script reading the
    JSON from the pipe got the table. It is refused before any work, saying to give a file name."""
    monkeypatch.chdir(tmp_path)
    pics = _pictures(tmp_path / "pics")
    line = one_line_failure(run("eval", "--data", pics, "--weights", tiny_weights, "--n", "2", "--json", "-"), 2)
    assert line == ("error: --json - would write a file named '-', not standard output (which shows the table); "
                    "give a file name, e.g. --json results.json"), line
    assert not (tmp_path / "-").exists()


def test_a_whole_runs_refusal_shows_the_value_a_setting_left_out_trains_with(tmp_path):
    """A whole run's --resume with another --seed said "seed the preset's in the run, 1 here": no preset sets a
    seed, and the user could not tell which seed the run had. A setting the run's command left out is shown as
    its stages train it, "seed 0 (not given)"; one the stages differ in stays "the preset's"."""
    from t2i_cli.files import PLAN
    from t2i_cli.recipe import settings_said_again

    out = tmp_path / "run"
    out.mkdir()
    (out / PLAN).write_text(f'{{"data": "{_pictures(tmp_path / "pics")}", "preset": "default", "flip": null, '
                            f'"crop": null, "ema": null}}')
    differ = settings_said_again(out, {"seed": 1, "image_side": 32, "flip": False, "recon_loss": "l1"})
    assert differ == {"seed": "seed 0 (not given) in the run, 1 here",
                      "image_side": "image_side 64 (not given) in the run, 32 here",
                      "flip": "flip the preset's in the run, false here",  # (the dVAE and transformer's on, CLIP's off)
                      "recon_loss": "recon_loss logit_laplace (not given) in the run, l1 here"}, differ
