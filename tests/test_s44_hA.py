"""Session 44 (hA): whole-run and API leftovers. A one-stage run into a whole run's folder is told what the folder
is and how to train that stage further; '-' as a folder option is refused; the Python API refuses a count of 0
(and seeds and draws the commands refuse) as it refuses other bad values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import one_line_failure, run
from test_data_record import picture_folder

COMMON = ("--workers", "0", "--device", "cpu", "-q")


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> Path:
    """A finished tiny `--stage all` run (each stage 2 steps) on a folder of 8 pictures."""
    root = tmp_path_factory.mktemp("whole")
    pics = picture_folder(root / "pics")
    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "2", "--data", pics, "--out", root / "RUN",
            *COMMON)
    assert r.exit_code == 0, r.stderr
    return root / "RUN"


def test_a_stage_run_into_a_whole_run_is_told_how_to_extend_that_stage(whole_run: Path, tmp_path: Path,
                                                                       monkeypatch):
    """`t2i train --stage dvae --out RUN` (RUN a whole run) said the folder "holds other files; pick a new or empty
    folder", as if it were a stranger's: it names it a whole run and gives the commands that train its stage on."""
    monkeypatch.chdir(whole_run.parent)
    before = sorted(p.relative_to(whole_run) for p in whole_run.rglob("*"))
    for stage in ("transformer", "clip"):
        line = one_line_failure(run("train", "--stage", stage, "--data", "pics", "--out", "RUN", "--preset", "tiny",
                                    "--steps", "8", *COMMON), 2)
        assert line == (f"error: --out RUN is a whole run (--stage all), not a folder for a new {stage} run; to "
                        f"train its {stage} stage further: t2i train --resume RUN/{stage} --steps N, N over its 2, "
                        f"then t2i train --resume RUN to export it to RUN/weights; or pick a new or empty --out for "
                        f"a {stage} run of its own"), line
    # a dVAE whose transformer stage has started: the run's weights keep the dVAE its transformer learned
    line = one_line_failure(run("train", "--stage", "dvae", "--data", "pics", "--out", "RUN", "--preset", "tiny",
                                "--steps", "8", *COMMON), 2)
    assert line == ("error: --out RUN is a whole run (--stage all), not a folder for a new dvae run; to train its dvae "
                    "stage further: t2i train --resume RUN/dvae --steps N, N over its 2 (its transformer stage learned "
                    "the codes of its dVAE as it is, so RUN/weights keeps that one: a longer-trained dVAE serves a "
                    "transformer trained anew on it); or pick a new or empty --out for a dvae run of its own"), line
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", "pics", "--out", "RUN", "--preset",
                                "tiny", "-q"), 2)
    assert line == ("error: --out RUN is a whole run (--stage all), not a folder for a new tokenizer run; its "
                    "tokenizer is RUN/tokenizer/tokenizer.json; another vocabulary is a new run: pick a new or empty "
                    "--out"), line
    assert sorted(p.relative_to(whole_run) for p in whole_run.rglob("*")) == before  # nothing written
    # the command it gives works (on a copy): the stage trains on, and the whole run exports it
    shutil.copytree(whole_run, tmp_path / "RUN")
    monkeypatch.chdir(tmp_path)
    r = run("train", "--resume", "RUN/clip", "--steps", "3", *COMMON)
    assert r.exit_code == 0, r.stderr
    r = run("train", "--resume", "RUN", *COMMON)
    assert r.exit_code == 0, r.stderr
    clip = "clip.safetensors"  # the extended CLIP is the run's now
    assert (tmp_path / "RUN" / "weights" / clip).read_bytes() == (tmp_path / "RUN" / "clip" / clip).read_bytes() \
        != (whole_run / "weights" / clip).read_bytes()
    # a stage the whole run has not started yet: the whole run's resume trains it
    shutil.copytree(whole_run, tmp_path / "RUN2")
    shutil.rmtree(tmp_path / "RUN2" / "clip")
    shutil.rmtree(tmp_path / "RUN2" / "transformer")  # (the dVAE then goes to the run's weights again)
    line = one_line_failure(run("train", "--stage", "dvae", "--data", whole_run.parent / "pics", "--out", "RUN2",
                                "--preset", "tiny", "--steps", "8", *COMMON), 2)
    assert line.endswith("--steps N, N over its 2, then t2i train --resume RUN2 to export it to RUN2/weights; or "
                         "pick a new or empty --out for a dvae run of its own"), line
    line = one_line_failure(run("train", "--stage", "clip", "--data", whole_run.parent / "pics", "--out", "RUN2",
                                "--preset", "tiny", *COMMON), 2)
    assert line == ("error: --out RUN2 is a whole run (--stage all), not a folder for a new clip run; its clip stage "
                    "has not started: t2i train --resume RUN2 trains it; or pick a new or empty --out for a clip run "
                    "of its own"), line


DASH = "would make a folder named '-', not write to standard output"


def test_a_dash_for_a_folder_is_refused_and_makes_no_folder(whole_run: Path, tmp_path: Path, monkeypatch):
    """`generate --out -` (as `--prompts -` reads standard input) wrote its picture into a folder named '-'; so did
    every other option that names a folder (train --out, export --to, data world --out, eval --images)."""
    monkeypatch.chdir(tmp_path)
    weights = whole_run / "weights"
    cases = [
        (["generate", "a red bird", "--weights", weights, "--out", "-"], "--out", "outputs"),
        (["train", "--stage", "dvae", "--data", whole_run.parent / "pics", "--out", "-", "--preset", "tiny",
          "--steps", "1", *COMMON], "--out", "runs/mine"),
        (["train", "--stage", "all", "--data", whole_run.parent / "pics", "--out", "-", "--preset", "tiny",
          "--steps", "1", *COMMON], "--out", "runs/mine"),
        (["export", whole_run / "dvae", "--to", "-"], "--to", "weights-mine"),
        (["data", "world", "--n", "2", "--side", "16", "--out", "-", "-q"], "--out", "outputs"),
        (["eval", "--weights", weights, "--n", "1", "--images", "-"], "--images", "outputs"),
    ]
    for args, flag, example in cases:
        line = one_line_failure(run(*args), 2)
        assert line == f"error: {flag} - {DASH}; {flag} takes a folder, e.g. {flag} {example}", (args, line)
    line = one_line_failure(run("data", "preview", whole_run.parent / "pics", "--out", "-"), 2)
    assert line == ("error: --out - would write a file named '-', not standard output; give a PNG file name, e.g. "
                    "--out preview.png"), line  # (it said "--out -/preview.png makes it")
    assert not Path("-").exists() and list(tmp_path.iterdir()) == []


def test_the_api_refuses_a_count_of_zero_as_the_commands_do(tiny_weights: Path, tmp_path: Path):
    """pipe(prompt, n=0) returned [] and pipe.rerank(results, 0) [] (`--n 0` and `--keep 0` are refused);
    evaluate_data took draws of 1.5 or "2" as a raw TypeError, True as draw_each's n=True, and a seed of -1, 1.5
    or True (which `eval --seed` refuses) as any other; evaluate_model the same seeds."""
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.world.evaluate import evaluate_model

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    request = pipe.request("a red bird")
    for n in (0, -1, 1.5, True, "2", None):
        with pytest.raises(UsageError, match=rf"^n must be a whole number of images, 1 or more, got {n!r}$"):
            pipe("a red bird", n)
        with pytest.raises(UsageError, match=rf"^n must be a whole number of images, 1 or more, got {n!r}$"):
            next(pipe.batches(request, n, 0))
    results = pipe("a red bird", 2, seed=0)
    assert len(results) == 2
    for keep in (0, -1, True, 1.5):
        with pytest.raises(UsageError, match=rf"^keep must be a whole number of results, 1 or more, got {keep!r}$"):
            pipe.rerank(results, keep)
    assert [g.rank for g in pipe.rerank(results, 1)] == [1]
    pics = picture_folder(tmp_path / "pics")
    for draws in (0, 17, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"^draws must be in 1\.\.16, got {draws!r}$"):
            evaluate_data(pipe, pics, 1, 0, draws=draws)
    for seed in (-1, 2 ** 63, 1.5, True, "0"):
        with pytest.raises(ValueError, match=rf"^seed must be a whole number in 0\.\.2\*\*63-1, got {seed!r}$"):
            evaluate_data(pipe, pics, 1, seed)
        with pytest.raises(ValueError, match=rf"^seed must be a whole number in 0\.\.2\*\*63-1, got {seed!r}$"):
            evaluate_model(pipe, None, 1, seed)  # (refused before the judge is used)
    assert evaluate_data(pipe, pics, 1, 2 ** 63 - 1)["seed"] == 2 ** 63 - 1


def test_a_whole_run_stopped_at_the_dvae_stage_s_step_0_is_said_truly_and_resumes_exactly(whole_run: Path,
                                                                                         tmp_path: Path,
                                                                                         monkeypatch):
    """A Ctrl-C a few seconds into `t2i train --stage all` (the dVAE stage built, no step taken) saves a step-0
    checkpoint and says "checkpoint saved"; `t2i info` then said the stage "stopped before its first checkpoint".
    It says none of its steps is saved, and the resume ends with the uninterrupted run's weights, byte for byte."""
    import os
    import signal

    from t2i_cli.models.dvae import DVAE

    real, calls = DVAE.forward, {"n": 0}

    def stopped_forward(self, *a, **k):  # the first batch's forward: a Ctrl-C before any step
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *a, **k)

    monkeypatch.setattr(DVAE, "forward", stopped_forward)
    out = tmp_path / "RUN"
    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "2", "--data", whole_run.parent / "pics",
            "--out", out, *COMMON)
    assert r.exit_code == 130 and "interrupted: in the dvae stage at step 0; checkpoint saved" in r.stderr, r.stderr
    monkeypatch.setattr(DVAE, "forward", real)
    assert (out / "dvae" / "checkpoint.safetensors").is_file()
    r = run("info", out / "dvae")
    said = "  status    stopped with none of its steps saved (0 of 2 steps)"
    assert r.exit_code == 0 and r.stdout.splitlines()[1] == said, r.stdout
    r = run("info", out)
    assert r.exit_code == 0 and "│ dvae        │ stopped     │ 0 / 2 │" in r.stdout, r.stdout
    r = run("train", "--resume", out, *COMMON)
    assert r.exit_code == 0, r.stderr
    for name in ("tokenizer.json", "dvae.safetensors", "transformer.safetensors", "clip.safetensors"):
        assert (out / "weights" / name).read_bytes() == (whole_run / "weights" / name).read_bytes(), name


def test_the_data_changed_warning_says_what_changed_within_a_bound(tmp_path: Path):
    """A resume's "the data changed" warning said only "some captions were edited" (and, where the count changed,
    nothing of captions at all): it says how many pictures came and went, how many pictures' captions were edited,
    and the new words (in no caption when the run started), a few named; from a record of a bounded size."""
    import hashlib
    import json

    from t2i_cli.data import MAX_DATA_RECORD, SKETCH_PAIRS, data_change, is_record, source_record

    def record(pairs: list[tuple[str, list[str]]]) -> dict:
        digests = [hashlib.sha256(name.encode()).hexdigest() for name, _ in pairs]  # a picture's bytes: its name's
        return source_record([(tmp_path / name, lines) for name, lines in pairs], digests, tmp_path)

    then = [(f"p{i}.png", [f"a red bird number {i}"]) for i in range(10)]
    path = tmp_path / "data_record.json"
    path.write_text(json.dumps(record(then)))
    head = "the data changed since this run started: "
    tail = "; a resume reads what is there now, so the result will differ from an uninterrupted run"
    now = then[:8] + [("p8.png", ["a quokka beside a zebra"]), ("new.png", ["a red bird"]),
                      ("new2.png", ["the glowing snowflake, the archipelago"])]
    now[0] = ("p0.png", ["a red bird number 0", "and a second caption"])
    assert data_change(path, record(now)) == (
        f"{head}10 usable pictures then, 11 now: 2 pictures added, 1 removed (an edited picture is both), captions "
        f"of 2 pictures edited, 10 new words (in no caption then): 'archipelago', 'snowflake', 'caption' and 7 more"
        f"{tail}")
    assert data_change(path, record(then[::-1])) == (f"{head}10 usable pictures then and now: the same pictures and "
                                                     f"captions in another order{tail}")
    assert data_change(path, record(then)) is None
    old = {k: v for k, v in record(then).items() if k not in ("each", "words")}  # a record from before session 44
    path.write_text(json.dumps(old))
    assert is_record(old)
    assert data_change(path, record(now)) == f"{head}10 usable pictures then, 11 now{tail}"

    # The largest source sketched, each caption a new word of the most escaped characters: under the read bound.
    many = [(f"p{i}.png", ["字" * 24 + f"{i:05d}"]) for i in range(SKETCH_PAIRS)]
    big = record(many)
    text = json.dumps(big, indent=2, sort_keys=True)
    assert "each" in big and "words" not in big and len(text) < MAX_DATA_RECORD and is_record(json.loads(text))
    assert "each" not in record(many + [("one-more.png", ["x"])])  # past SKETCH_PAIRS: the counts alone
    # (words of 16,368 bytes, and session 45's mark of a record keeping long words cut, 7 more: test_s45_hD)
    full = record([(f"p{i}.png", [f"w{min(i, 1487):09d}"]) for i in range(SKETCH_PAIRS)])
    text = json.dumps(full, indent=2, sort_keys=True)
    assert len(full["words"].split()) == 1489 and len(text) < MAX_DATA_RECORD and is_record(json.loads(text))
    assert "words" not in record([(f"p{i}.png", [f"w{min(i, 1488):09d}"]) for i in range(SKETCH_PAIRS)])
    words = record([(f"p{i}.png", [f"w{i:05d}"]) for i in range(1000)])
    assert len(json.dumps(words, indent=2)) < MAX_DATA_RECORD and len(words["words"].split()) == 1001
    path.write_text(json.dumps(words))
    long = "x" * 33  # longer than a word the sketch keeps whole: named cut (since session 45; it was never named)
    assert data_change(path, record([(f"p{i}.png", [f"w{i:05d}"]) for i in range(999)] + [
        ("p999.png", [f"w00999 {long} brandnew"])])) == (
        f"{head}1,000 usable pictures then and now: captions of 1 picture edited, 2 new words (in no caption then): "
        f"'{'x' * 31}\u2026', 'brandnew'{tail}")
