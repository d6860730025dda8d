"""Session 35: `generate --json` and `vary --json` (each file written as a line of JSON: a script's map from a
`--prompts` line to its files, and paths said without ambiguity), and a SIGTERM or SIGHUP while the command line
loads (it ended t2i silently, exit 143 or 129)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import SRC, run
from t2i_cli.images import read_png_text


def json_lines(r) -> list[dict]:
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_json_maps_each_prompt_line_to_its_files(tiny_weights: Path, tmp_path: Path):
    """With --prompts, each image's and sheet's line of JSON names the file's line of the prompt file (comments,
    blank lines and a repeat skipped), and what the PNG itself records: its prompt, seed and index."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("# a comment\na red bird\n\ntwo green cats\nA red  bird\na blue fish on the left\n")
    out = tmp_path / "out"
    r = run("generate", "--prompts", prompts, "--candidates", "3", "--keep", "2", "--grid", "--seed", "5",
            "--weights", tiny_weights, "--out", out, "-q", "--json")
    rows = json_lines(r)
    assert [row.get("repeats") for row in rows] == [[5]] * 3 + [None] * 6  # "A red  bird", drawn as line 2
    assert [(row["kind"], row["line"], row["prompt"]) for row in rows] == [
        ("image", 2, "a red bird"), ("image", 2, "a red bird"), ("sheet", 2, "a red bird"),
        ("image", 4, "two green cats"), ("image", 4, "two green cats"), ("sheet", 4, "two green cats"),
        ("image", 6, "a blue fish on the left"), ("image", 6, "a blue fish on the left"),
        ("sheet", 6, "a blue fish on the left")]
    for row in rows:
        path = Path(row["path"])
        assert path.parent == out and path.is_file(), row
        text = read_png_text(path)
        assert text["prompt"] == row["prompt"] and row["seed"] == 5 == int(text["seed"])
        if row["kind"] == "image":
            assert row["index"] == int(text["index"]) and 0 <= row["index"] < 3
            assert abs(row["score"] - float(text["clip_score"])) < 1e-4, (row, text["clip_score"])
        else:
            assert row["images"] == 3 and "index" not in row
    images = [row for row in rows if row["kind"] == "image"]
    assert [row["rank"] for row in images] == [1, 2] * 3
    assert all(a["score"] >= b["score"] for a, b in zip(images[::2], images[1::2], strict=True))
    assert len({row["path"] for row in rows}) == 9 == len(list(out.iterdir()))


def test_json_says_paths_that_plain_output_shows_alike(tiny_weights: Path, tmp_path: Path):
    """A folder named with a newline and one named with a backslash and an n print alike as plain paths (control
    characters are shown escaped); their JSON lines read back as the folders written into."""
    plain, said = [], []
    for name in ("nl\ndir", "nl\\ndir"):
        out = tmp_path / name
        r = run("generate", "a red bird", "--n", "1", "--weights", tiny_weights, "--out", out, "-q")
        assert r.exit_code == 0, r.stderr
        plain.append(r.stdout.strip().rsplit("/", 2)[-2])
        rows = json_lines(run("generate", "a red bird", "--n", "1", "--weights", tiny_weights, "--out", out, "-q",
                              "--json"))
        said.append(rows[0]["path"])
        assert Path(rows[0]["path"]) == out / "a-red-bird-001.png" and Path(rows[0]["path"]).is_file()
    assert plain[0] == plain[1]  # why --json: the plain lines cannot tell these two folders apart
    assert said[0] != said[1]


def test_json_of_plain_draws_vary_and_from(tiny_weights: Path, tmp_path: Path):
    """--n draws: one line per image, no score (nothing reranked); vary: its images with the prompt it drew from;
    --from: the image redrawn, with the seed and index it records. Without --json the lines are the paths."""
    out = tmp_path / "out"
    rows = json_lines(run("generate", "a red bird", "--n", "2", "--seed", "3", "--weights", tiny_weights,
                          "--out", out, "-q", "--json"))
    assert [(r["kind"], r["index"], r["seed"]) for r in rows] == [("image", 0, 3), ("image", 1, 3)]
    assert all("score" not in r and "rank" not in r and "line" not in r for r in rows)
    second = rows[1]["path"]
    again = json_lines(run("generate", "--from", second, "--weights", tiny_weights, "--out", out, "-q", "--json"))
    assert [(r["kind"], r["prompt"], r["seed"], r["index"]) for r in again] == [("image", "a red bird", 3, 1)]
    assert Path(again[0]["path"]).read_bytes() == Path(second).read_bytes()
    varied = json_lines(run("vary", second, "--n", "2", "--weights", tiny_weights, "--out", out, "-q", "--json"))
    assert [(r["kind"], r["prompt"], r["index"]) for r in varied] == [("image", "a red bird", 0),
                                                                      ("image", "a red bird", 1)]
    assert all(Path(r["path"]).name.startswith("a-red-bird-001-vary-") for r in varied)
    r = run("generate", "a red bird", "--n", "2", "--weights", tiny_weights, "--out", out, "-q")
    assert r.stdout.splitlines() == [str(out / "a-red-bird-003.png"), str(out / "a-red-bird-004.png")]


# A fresh process that runs t2i's entry with a stop sent to itself as the command line's modules load.
STOP_WHILE_LOADING = r"""
import importlib.abc, os, signal, sys
STOP = getattr(signal, sys.argv[1])
class Stop(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "rich":
            os.kill(os.getpid(), STOP)
        return None
sys.meta_path.insert(0, Stop())
sys.argv = ["t2i", "--version"]
from t2i_cli.__main__ import entry
entry()
"""


def python(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ) | {"PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_a_sigterm_or_sighup_while_the_command_line_loads_is_one_line():
    """Before any command installed its handler, a SIGTERM or SIGHUP ended t2i as the system does: silently, exit
    143 or 129. It is Ctrl-C's one line and exit 130 now."""
    for name in ("SIGTERM", "SIGHUP"):
        r = python(STOP_WHILE_LOADING, name)
        assert r.returncode == 130 and r.stderr == "interrupted: nothing was started\n", (name, r.returncode,
                                                                                          r.stderr)
        assert r.stdout == ""


def test_a_stop_after_the_modules_load_and_before_a_command_starts_is_one_line():
    """SIGTERM and SIGHUP stay Ctrl-C's until a command sets its own (they were put back to the system's as the
    modules loaded, and a stop while the command line was parsed ended t2i silently, 143 or 129); a stop there,
    Ctrl-C too, is one line, exit 130, not a traceback. One ignored when t2i started (nohup) stays ignored."""
    script = r"""
import os, signal, sys, time
import typer.main
STOP = getattr(signal, sys.argv[1])
if sys.argv[2] == "ignored":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
real = typer.main.get_command
def stopped(*a, **k):  # in main(), as the command line is parsed: no command has its handler yet
    print(signal.getsignal(signal.SIGTERM) is signal.default_int_handler,
          signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, flush=True)
    os.kill(os.getpid(), STOP)
    time.sleep(0.5)
    return real(*a, **k)
typer.main.get_command = stopped
sys.argv = ["t2i", "generate", "a red bird", "--out", "never"]
from t2i_cli.__main__ import entry
entry()
"""
    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        r = python(script, name, "default")
        assert r.returncode == 130 and r.stderr == "interrupted: nothing was started\n", (name, r.returncode,
                                                                                          r.stderr)
        assert r.stdout.split() == ["True", "False"], r.stdout
    r = python(script, "SIGTERM", "ignored")
    assert r.returncode == 130 and r.stdout.split() == ["True", "True"], (r.stdout, r.stderr)


def test_json_names_the_images_kept_when_a_write_fails(tiny_weights: Path, tmp_path: Path, monkeypatch):
    """A full disk at the second image of a batch: the first, kept, is said as a line of JSON (as a finished run
    says it), the error is one line."""
    real_write_bytes, calls = Path.write_bytes, []

    def fail_second(self, data):
        calls.append(self)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_second)
    out = tmp_path / "out"
    r = run("generate", "a red bird", "--n", "3", "--weights", tiny_weights, "--out", out, "-q", "--json")
    monkeypatch.undo()
    assert r.exit_code == 1 and r.stderr.startswith("error: cannot write a new a-red-bird-"), r.stderr
    assert [json.loads(line) for line in r.stdout.splitlines()] == [
        {"path": str(out / "a-red-bird-000.png"), "kind": "image", "prompt": "a red bird", "seed": 0, "index": 0}]
    assert sorted(p.name for p in out.iterdir()) == ["a-red-bird-000.png"]


WHOLE = ["train", "--stage", "all", "--preset", "tiny", "--steps", "4,clip=3", "--workers", "0", "-q", "--device",
         "cpu", "--log-every", "1"]


def test_a_whole_run_into_new_nested_folders_stopped_before_its_first_stage_leaves_none(tmp_path, monkeypatch):
    """`train --stage all --out new/a/b` stopped once its plan was written, before any stage started: the run
    folder went, its parents new and new/a stayed (generate and eval take all three away)."""
    import t2i_cli.recipe as recipe

    def stopped(cfg, sub, **k):
        assert (sub.parent / "all.json").is_file()  # (the plan is written: b exists)
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "run_stage", stopped)
    (tmp_path / "kept").mkdir()
    r = run(*WHOLE, "--out", tmp_path / "new" / "a" / "b")
    assert r.exit_code == 130, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    # a parent that was there stays, with what another process put into a made one
    def stopped_beside(cfg, sub, **k):
        (tmp_path / "kept" / "x" / "other").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "run_stage", stopped_beside)
    r = run(*WHOLE, "--out", tmp_path / "kept" / "x" / "b")
    assert r.exit_code == 130, r.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "kept", "kept/x", "kept/x/other"]


def test_a_stage_into_new_nested_folders_that_fails_to_start_leaves_none(tmp_path, monkeypatch):
    """One stage, `--out new/a/b`, failing after its folder was made and before its first step: the start is
    undone whole, the parents it made with the folder too."""
    import t2i_cli.stages as stages

    def broken(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "_build_stage", broken)
    out = tmp_path / "new" / "a" / "b"
    (tmp_path / "tok").mkdir()
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "3", "--workers", "0", "-q", "--out", out)
    assert r.exit_code == 130, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


def test_device_is_refused_by_the_tokenizer_stage(tmp_path):
    """The tokenizer stage trains without torch: `--device cpu` (or cuda) was silently ignored, exit 0; it is
    refused as every option a stage would not use is, new or resumed."""
    from conftest import one_line_failure

    line = one_line_failure(run("train", "--stage", "tokenizer", "--device", "cpu", "--out", tmp_path / "t", "-q"), 2)
    assert line == "error: --device does not apply to the tokenizer stage (only to dvae, transformer, clip); leave " \
                   "it out", line
    assert not (tmp_path / "t").exists()
    r = run("train", "--stage", "tokenizer", "--out", tmp_path / "t", "-q", "--vocab-size", "300")
    assert r.exit_code == 0, r.stderr
    line = one_line_failure(run("train", "--resume", tmp_path / "t", "--device", "cpu", "-q"), 2)
    assert "--device does not apply to the tokenizer stage" in line, line


def test_a_folder_as_judge_is_not_said_to_be_chosen_by_t2i_weights(tiny_weights: Path, monkeypatch):
    """`eval --judge DIR` where DIR is also $T2I_WEIGHTS: the refusal said T2I_WEIGHTS chose the folder."""
    from conftest import one_line_failure

    monkeypatch.setenv("T2I_WEIGHTS", str(tiny_weights))
    line = one_line_failure(run("eval", "--judge", tiny_weights, "--n", "1"), 2)
    assert line == f"error: --judge {tiny_weights} is not a file; give a judge's safetensors file (or leave --judge " \
                   "out for the weights folder's or the shipped one)", line


def test_an_empty_steps_batch_size_or_lr_is_refused_not_the_presets(tmp_path):
    """`--steps "$STEPS"` with STEPS unset started the preset's run of hours (a whole run recorded "steps": ""),
    and on a resume it was an internal error; each is one line, exit 2, before anything is written."""
    from conftest import one_line_failure

    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 30)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    base = ("train", "--preset", "tiny", "--data", data, "--workers", "0", "-q")
    for stage in ("dvae", "all"):
        for option, value in (("--steps", ""), ("--batch-size", ""), ("--lr", " , ")):
            out = tmp_path / f"{stage}{option}"
            line = one_line_failure(run(*base, "--stage", stage, "--out", out, f"{option}={value}"), 2)
            example = {"--steps": "2000", "--batch-size": "16", "--lr": "3e-4"}[option]
            assert line == f"error: {option} is given no value; give one (e.g. {option} {example}) or leave it out", \
                line
            assert not out.exists()
    r = run(*base, "--stage", "dvae", "--out", tmp_path / "r", "--steps", "2")
    assert r.exit_code == 0, r.stderr
    for option in ("--steps", "--lr"):
        line = one_line_failure(run("train", "--resume", tmp_path / "r", option, "", "-q"), 2)
        assert line.startswith(f"error: {option} is given no value"), line


def test_a_closed_terminal_stops_training_with_a_checkpoint(tmp_path):
    """SIGHUP to the process group (a terminal closed, an ssh session dropped) ended a run silently, exit 129,
    with every step since the last checkpoint lost (the default --ckpt-every is 250); it now stops as Ctrl-C does:
    a checkpoint, one line with the command that resumes, exit 130 (forked loader workers too)."""
    import signal
    import time

    from conftest import end_group

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "t2i_cli", "train", "--stage", "dvae", "--preset", "tiny", "--data", "world:train",
           "--workers", "2", "--steps", "100000", "--ckpt-every", "100000", "--sample-every", "0", "--log-every",
           "1", "-q", "--device", "cpu", "--out", str(out)]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": SRC})
        try:
            deadline = time.monotonic() + 180
            metrics = out / "metrics.jsonl"
            while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no steps: {log.read_text()}")
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGHUP)
            proc.wait(timeout=120)
        finally:
            end_group(proc)
    err = log.read_text()
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip().splitlines()[-1].startswith("interrupted: at step ") and "--resume" in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert (out / "checkpoint.safetensors").is_file() and (out / "dvae.safetensors").is_file()


def test_a_whole_run_given_as_a_dependency_is_pointed_at_its_stage(tmp_path):
    """`--dvae RUN` where RUN is a --stage all run said "RUN/dvae.safetensors does not exist"; it names the
    stage's folder (and the run's weights) to pass instead."""
    from conftest import one_line_failure

    whole = tmp_path / "whole"
    (whole / "dvae").mkdir(parents=True)
    (whole / "weights").mkdir()
    (whole / "tokenizer").mkdir()
    for folder in (whole / "dvae", whole / "weights"):
        (folder / "dvae.safetensors").write_bytes(b"x")
    (whole / "tokenizer" / "tokenizer.json").write_text("{}")
    line = one_line_failure(run("train", "--stage", "transformer", "--dvae", whole, "--tokenizer", whole / "tokenizer",
                                "--out", tmp_path / "t", "-q"), 2)
    assert line == f"error: {whole} holds no dvae.safetensors, its dvae stage does: pass {whole / 'dvae'}, or its " \
                   f"weights, {whole / 'weights'}", line
    line = one_line_failure(run("train", "--stage", "clip", "--tokenizer", whole, "--out", tmp_path / "c", "-q"), 2)
    assert line == f"error: {whole} holds no tokenizer.json, its tokenizer stage does: pass {whole / 'tokenizer'}", line
    assert not (tmp_path / "t").exists() and not (tmp_path / "c").exists()


def test_a_stage_prefix_on_one_stage_says_to_drop_it(tmp_path):
    """`--stage dvae --model dvae.n_hid=8` listed the keys (n_hid among them) without saying what was wrong."""
    from conftest import one_line_failure

    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--model", "dvae.n_hid=8", "--out",
                                tmp_path / "d", "-q"), 2)
    assert line == "error: --model 'dvae.n_hid=8': a STAGE. prefix belongs to --stage all; a dvae run takes " \
                   "--model n_hid=8", line
    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--model", "clip.n_hid=8", "--out",
                                tmp_path / "d", "-q"), 2)
    assert line == "error: --model 'clip.n_hid=8' sets the clip stage's, not this dvae run's", line


def test_a_manifest_path_with_backslashes_is_said_to_need_slashes(tmp_path):
    """A manifest written on Windows ("sub\\\\a.png") was "missing image" while sub/a.png was there."""
    from t2i_cli.data import open_source

    (tmp_path / "sub").mkdir()
    for i in range(4):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / "sub" / f"p{i}.png")
    lines = [json.dumps({"image": f"sub/p{i}.png", "caption": "a red bird"}) for i in range(3)]
    lines.append(json.dumps({"image": "sub\\p3.png", "caption": "a red bird"}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    message = open_source(str(tmp_path / "m.jsonl"), 16, part="all").skipped_message()
    assert "1 missing image (its path holds a \\, which is no folder separator here: write /)" in message, message


def test_a_preview_into_a_folder_not_yet_made_says_how_to_make_it(tmp_path):
    """`data preview SRC --out newdir/` said "give a name ending in .png (or a folder)": a folder was given."""
    from conftest import one_line_failure

    line = one_line_failure(run("data", "preview", "world", "--n", "2", "--out", f"{tmp_path / 'new'}/"), 2)
    assert line == f"error: --out {tmp_path / 'new'}: a preview is a PNG; give a name ending in .png, or a folder " \
                   f"({tmp_path / 'new'} is no folder yet: --out {tmp_path / 'new' / 'preview.png'} makes it)", line
    r = run("data", "preview", "world", "--n", "2", "--side", "32", "--out", tmp_path / "new" / "preview.png", "-q")
    assert r.exit_code == 0 and (tmp_path / "new" / "preview.png").is_file(), r.stderr


def test_a_folder_of_uncaptioned_pictures_with_a_manifest_names_the_manifest(tmp_path):
    """A folder whose captions are in a .jsonl manifest beside the pictures: the source given as the folder found
    "45 images without .txt caption" and never said the manifest was there."""
    from conftest import one_line_failure

    for i in range(3):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / f"p{i}.png")
    line = one_line_failure(run("data", "preview", tmp_path, "--out", tmp_path / "a.png"), 1)
    assert line.endswith("; add some, or use the procedural world (world) as the source"), line
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps({"image": f"p{i}.png", "caption": "a red bird"}) + "\n"
                                                     for i in range(3)))
    line = one_line_failure(run("data", "preview", tmp_path, "--out", tmp_path / "a.png"), 1)
    assert line.endswith(f"; it holds a manifest: give {tmp_path / 'captions.jsonl'} as the source"), line
    r = run("data", "preview", tmp_path / "captions.jsonl", "--out", tmp_path / "a.png", "-q")
    assert r.exit_code == 0, r.stderr


def test_macos_metadata_files_and_a_whole_name_caption_are_said_as_such(tmp_path):
    """`._IMG.JPG` (macOS' AppleDouble metadata) was counted an image without caption; `pic.jpg` beside
    `pic.jpg.txt` was said twice, as an image without caption and a caption without image."""
    from t2i_cli.data import open_source

    for i in range(3):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / f"p{i}.png")
        (tmp_path / f"p{i}.txt").write_text("a red bird\n")
    (tmp_path / "._p0.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    (tmp_path / "._p0.txt").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    Image.new("RGB", (16, 16), (0, 90, 0)).save(tmp_path / "double.jpg")
    (tmp_path / "double.jpg.txt").write_text("a green fish\n")
    Image.new("RGB", (16, 16), (0, 0, 90)).save(tmp_path / "UP.PNG", format="PNG")
    (tmp_path / "UP.png.txt").write_text("a blue fish\n")
    data = open_source(str(tmp_path), 16, part="all")
    assert len(data) == 3
    message = data.skipped_message()
    assert "2 macOS metadata files (._NAME, not a picture)" in message, message
    assert "2 images whose caption is named after its whole file name (PIC.jpg.txt: name it PIC.txt)" in message
    assert "without" not in message, message  # neither an image without caption nor a caption without image


def test_a_run_repeated_on_its_folder_named_another_way_goes_on(tmp_path, monkeypatch):
    """A whole run started with `--data ../x/pics` and repeated with `--data /abs/pics` or a link to it was "a run
    with other settings (data)", and neither path was shown; one stage's resume refused it too. The same folder
    goes on; a setting that does differ is shown as the run's and as given."""
    from conftest import one_line_failure

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 30)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text("a red bird\n")
    (tmp_path / "link").symlink_to(pics)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    whole = ["train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--out", tmp_path / "run"]
    r = run(*whole, "--data", "../pics", "--steps", "2")
    assert r.exit_code == 0, r.stderr
    for data in (pics, tmp_path / "link"):
        r = run(*whole, "--data", data, "--steps", "2")
        assert r.exit_code == 0, r.stderr
    line = one_line_failure(run(*whole, "--data", tmp_path / "link", "--steps", "3", "--flip"), 2)
    whole_run = tmp_path / "run"
    assert line == f"error: {whole_run} holds a --stage all run with other settings (flip false (not given) in " \
                   f"the run, true here; steps 2 in the run, 3 here); continue it as it is with --resume " \
                   f"{whole_run}, extend one stage with t2i train --resume {whole_run}/STAGE --steps N, or pick " \
                   "another --out", line
    one = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--out", tmp_path / "d"]
    r = run(*one, "--data", "../pics", "--steps", "2")
    assert r.exit_code == 0, r.stderr
    r = run(*one, "--data", tmp_path / "link", "--steps", "3", "--resume", tmp_path / "d")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "d" / "train_config.json").read_text())["steps"] == 3


def test_a_finished_run_resumed_after_its_data_changed_says_nothing_of_it(tmp_path):
    """`train --resume RUN` of a finished run whose folder changed since warned that "the result will differ from
    an uninterrupted run", with nothing left to train; a resume that trains on still says it."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 30)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text("a red bird\n")
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "--data", pics, "--steps", "2",
            "--out", tmp_path / "d")
    assert r.exit_code == 0, r.stderr
    Image.new("RGB", (16, 16), (0, 0, 250)).save(pics / "new.png")
    (pics / "new.txt").write_text("a blue fish\n")
    r = run("train", "--resume", tmp_path / "d", "--workers", "0")
    assert r.exit_code == 0 and "the data changed" not in r.stderr, r.stderr
    r = run("train", "--resume", tmp_path / "d", "--workers", "0", "--steps", "3", "-q")
    assert r.exit_code == 0, r.stderr
    assert "the data changed since this run started: 6 usable pictures then, 7 now" in " ".join(r.stderr.split())


def test_extending_a_whole_runs_dvae_says_the_runs_weights_keep_the_old_one(tmp_path):
    """`train --resume RUN/dvae --steps N` after RUN's transformer started: the whole run's weights keep the dVAE
    the transformer learned (its own copy), so the extension changed nothing there, silently."""
    import hashlib

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 30)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text("a red bird\n")
    out = tmp_path / "run"
    whole = ["train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--data", pics, "--steps", "2",
             "--out", out]
    assert run(*whole).exit_code == 0
    before = hashlib.sha256((out / "weights" / "dvae.safetensors").read_bytes()).hexdigest()
    r = run("train", "--resume", out / "dvae", "--steps", "3", "--workers", "0", "-q")
    assert r.exit_code == 0, r.stderr
    assert f"warning: {out}'s transformer stage learned this dVAE's codes as they were when it started, so " \
           f"{out / 'weights'} keeps that dVAE whatever this run adds" in " ".join(r.stderr.split()), r.stderr
    assert run("train", "--resume", out, "-q").exit_code == 0
    assert hashlib.sha256((out / "weights" / "dvae.safetensors").read_bytes()).hexdigest() == before  # as said
    r = run("train", "--resume", out / "dvae", "--workers", "0", "-q")  # nothing left to train: nothing to say
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    r = run("train", "--resume", out / "transformer", "--steps", "3", "--workers", "0", "-q")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr  # (another stage's extension is used)


def test_eval_datas_dvae_picture_records_the_codes_it_was_decoded_from(tiny_weights: Path, tmp_path: Path):
    """The dVAE's reconstruction eval --images keeps records the real picture's codes (`t2i_codes`, as generate's
    PNGs do): `rerank --bits` and `vary` read those, not the dVAE's second reading of the reconstruction."""
    from t2i_cli.image_prompt import recorded_codes, source_codes
    from t2i_cli.images import read_png_text
    from t2i_cli.weights import load_folder

    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):
        Image.new("RGB", (16, 16), (i * 4, 90, 200 - i * 3)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    out = tmp_path / "kept"
    r = run("eval", "--data", data, "--n", "2", "--weights", tiny_weights, "--images", out, "-q", "--precision",
            "fp32")
    assert r.exit_code == 0, r.stderr
    dvae = load_folder(tiny_weights, "cpu").dvae
    n = dvae.cfg.grid ** 2
    for i in range(2):
        recon = out / f"seed0-val-{i:03d}-dvae-000.png"
        codes = recorded_codes(read_png_text(recon), n, dvae.cfg.n_codes)
        assert codes is not None and torch.equal(source_codes(dvae, recon), codes)  # they decode to its pixels
        assert recorded_codes(read_png_text(out / f"seed0-val-{i:03d}-real-000.png"), n, dvae.cfg.n_codes) is None


def test_rerank_reads_a_pictures_caption_file_as_its_prompt(tiny_weights: Path, tmp_path: Path):
    """A folder of pairs (t2i's own training format) was "nothing to rank ... 2 pictures without a prompt (pass
    --prompt), 2 text files": each picture is ranked against its own NAME.txt's first line; a PNG's recorded
    prompt and --prompt come first."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    for i, caption in enumerate(["a red bird\nsecond line", "two green cats"]):
        Image.new("RGB", (16, 16), (90 * i, 40, 200)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(caption + "\n")
    (folder / "notes.md").write_text("mine\n")
    r = run("rerank", folder, "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.stderr
    rows = json.loads((folder / "ranking.json").read_text())
    assert sorted((Path(row["file"]).name, row["prompt"]) for row in rows) == [
        ("p0.png", "a red bird"), ("p1.png", "two green cats")]
    r = run("rerank", folder, "--weights", tiny_weights, "-q", "--prompt", "a blue fish", "--force")
    assert r.exit_code == 0, r.stderr
    rows = json.loads((folder / "ranking.json").read_text())
    assert {row["prompt"] for row in rows} == {"a blue fish"}


def test_info_describes_the_folders_judge_outside_its_identity(tiny_weights: Path):
    """`t2i info` said "every file" of a weights folder but left out judge.safetensors, which `t2i eval` reads."""
    import hashlib
    import shutil

    shipped = Path(SRC).parent / "weights" / "judge.safetensors"
    r = run("info", "--weights", tiny_weights, "--json")
    assert r.exit_code == 0 and "judge" not in json.loads(r.stdout)["models"], r.stdout
    identity = json.loads(r.stdout)["identity"]
    shutil.copy(shipped, tiny_weights / "judge.safetensors")
    r = run("info", "--weights", tiny_weights, "--json")
    info = json.loads(r.stdout)
    judge = info["models"]["judge"]
    assert judge["sha256"] == hashlib.sha256((tiny_weights / "judge.safetensors").read_bytes()).hexdigest()
    assert judge["config"]["n_classes"] == 12 and judge["parameters"] > 0
    assert info["identity"] == identity  # (the judge draws nothing)


def test_a_negative_prompt_that_reads_as_the_prompt_is_said(tiny_weights: Path, tmp_path: Path):
    """`--negative` equal to the prompt (as the model reads it) made guidance u + g (c - u) = c, silently."""
    r = run("generate", "a red bird", "--negative", "A red  bird", "--candidates", "1", "--weights", tiny_weights,
            "--out", tmp_path / "o")
    assert r.exit_code == 0, r.stderr
    assert "warning: the negative prompt reads as the prompt does, so --guidance pushes nowhere" in \
        " ".join(r.stderr.split()), r.stderr
    prompts = tmp_path / "p.txt"
    prompts.write_text("two green cats\na red bird\n")
    r = run("generate", "--prompts", prompts, "--negative", "a red bird", "--candidates", "1", "--weights",
            tiny_weights, "--out", tmp_path / "o")
    assert r.exit_code == 0 and "reads as 1 line (2) does" in " ".join(r.stderr.split()), r.stderr
    r = run("generate", "a red bird", "--negative", "at night", "--candidates", "1", "--weights", tiny_weights,
            "--out", tmp_path / "o")
    assert r.exit_code == 0 and "pushes nowhere" not in r.stderr, r.stderr


def test_names_with_emoji_codes_are_printed_as_they_are(tiny_weights: Path, tmp_path: Path):
    """Rich turned ":cat:" into an emoji in anything printed, markup or not: `--out e:cat:x` was said as "e🐱x"
    (plain and --json), a prompt ":red_circle: a yellow star" as "🔴 a yellow star"."""
    out = tmp_path / "e:cat:x"
    r = run("generate", ":red_circle: a yellow star", "--n", "1", "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0 and r.stdout.strip() == str(out / "red-circle-a-yellow-star-000.png"), r.stdout
    rows = json_lines(run("generate", ":red_circle: a yellow star", "--n", "1", "--weights", tiny_weights, "--out",
                          out, "-q", "--json"))
    assert rows[0]["path"] == str(out / "red-circle-a-yellow-star-001.png") and Path(rows[0]["path"]).is_file()
    assert rows[0]["prompt"] == ":red_circle: a yellow star"


def test_a_jsonl_that_is_not_a_manifest_is_not_offered_as_one(tmp_path):
    """The hint named any .jsonl: a run folder's metrics.jsonl was offered as "a manifest", which then failed."""
    from conftest import one_line_failure

    for i in range(3):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / f"p{i}.png")
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    line = one_line_failure(run("data", "preview", tmp_path, "--out", tmp_path / "a.png"), 1)
    assert line.endswith("; add some, or use the procedural world (world) as the source"), line
    # a Hugging Face-style manifest reads as a manifest since session 38 (its "file_name" and "text"; one named
    # metadata.jsonl the folder reads itself since session 41)
    (tmp_path / "captions.jsonl").write_text('{"file_name": "p0.png", "text": "a red bird"}\n')
    line = one_line_failure(run("data", "preview", tmp_path, "--out", tmp_path / "a.png"), 1)
    assert line.endswith(f"; it holds a manifest: give {tmp_path / 'captions.jsonl'} as the source"), line


def test_a_terminal_gone_while_a_stop_is_said_keeps_the_stops_exit():
    """A closed terminal (SIGHUP) stopped training with its checkpoint, then the progress bar's redraw on the
    hung-up terminal failed (EIO): "internal error: OSError", exit 1. The stop's exit stays 130, and nothing is
    written to the terminal that is gone; an EIO with no stop stays an internal error (test_faults)."""
    import errno

    import typer

    from t2i_cli.cli import user_errors
    from t2i_cli.train import Interrupted

    for stop in (KeyboardInterrupt(), Interrupted("interrupted at step 19; checkpoint saved")):
        with pytest.raises(typer.Exit) as ex, user_errors():
            try:
                raise stop
            except BaseException:
                raise OSError(errno.EIO, "Input/output error") from None
        assert ex.value.exit_code == 130, type(stop)


def test_the_pipelines_bits_are_the_transformers_surprise_at_each_code(tiny_weights: Path):
    """TextToImage.bits(prompts, codes): per code -log2 p under the transformer given its prompt (what `rerank
    --bits` averages), so a study need not re-derive the cross-entropy and the prompt's padding; bad shapes and
    codes outside the codebook are refused."""
    import math

    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    drawn = pipe("a red bird", n=2, seed=3)
    codes = torch.stack([g.codes for g in drawn])
    bits = pipe.bits(["a red bird", "two green cats"], codes)
    assert bits.shape == codes.shape and bits.dtype == torch.float32 and bool((bits >= 0).all())
    with torch.inference_mode():
        text = torch.tensor([pipe.request(p).encoded.ids for p in ("a red bird", "two green cats")])
        logits, _ = pipe.bundle.transformer(text, codes)
        probs = logits.float().softmax(-1).gather(-1, codes[..., None])[..., 0]
    assert torch.allclose(bits, -probs.log() / math.log(2), atol=1e-4)
    assert not torch.allclose(bits[1], pipe.bits(["a red bird"], codes[1:])[0])  # the prompt matters
    for prompts, bad in ((["a red bird"], codes), (["a", "b"], codes[:, :-1]), (["a", "b"], codes.float()),
                         (["a", "b"], codes + pipe.bundle.transformer.cfg.image_vocab)):
        with pytest.raises(UsageError):
            pipe.bits(prompts, bad)
