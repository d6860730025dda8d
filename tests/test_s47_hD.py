"""Small CLI input and message leftovers (session 47, hD): each defect's test fails without its fix."""

from __future__ import annotations

import json

from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run
from test_reliability import TINY


def test_a_path_typed_dot_slash_dash_is_said_as_typed_in_info_and_its_hints(tmp_path, monkeypatch):
    """`T2I_WEIGHTS=./- t2i info --json` said "folder": "-" (standard input's name), and `t2i info ./-w` said its
    run "-w" and "t2i export TRANSFORMER_RUN -w --to WEIGHTS_DIR", an option where pasted; `--out ./-` kept its
    "./" since 0.20.0. Now each is said as typed, and a run named -w given as `-- -w` is said ./-w in its hint."""
    monkeypatch.chdir(tmp_path)
    build_tiny_folder(tmp_path / "-")
    monkeypatch.setenv("T2I_WEIGHTS", "./-")
    r = run("info", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["folder"] == "./-"
    r = run("info")
    assert r.exit_code == 0 and r.stdout.startswith("./-  (identity"), r.stdout
    build_tiny_folder(tmp_path / "-nc", with_clip=False)  # (a refusal's hint, in backquotes, names it as typed)
    Image.new("RGB", (16, 16), (200, 40, 40)).save(tmp_path / "a.png")
    monkeypatch.setenv("T2I_WEIGHTS", "./-nc")
    line = one_line_failure(run("rerank", tmp_path), 1)
    assert "`t2i export CLIP_RUN --to ./-nc` adds one (T2I_WEIGHTS=./-nc chose this folder" in line, line
    assert str(tmp_path) not in line
    monkeypatch.delenv("T2I_WEIGHTS")

    r = run("train", "--stage", "clip", "--steps", "2", "--out", "./-w", "--tokenizer", "./-", *TINY)
    assert r.exit_code == 0, r.stderr
    hint = "export it beside a transformer run: t2i export TRANSFORMER_RUN ./-w --to WEIGHTS_DIR"
    r = run("info", "./-w")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("./-w: a clip run") and f"next      {hint}" in r.stdout, r.stdout
    r = run("info", "./-w", "--json")
    assert json.loads(r.stdout)["folder"] == "./-w" and json.loads(r.stdout)["next"] == hint
    r = run("info", "--", "-w")  # (typed without ./: its hint still names the folder, not an option)
    assert r.exit_code == 0 and f"next      {hint}" in r.stdout, r.stdout


def test_a_model_value_in_other_digits_than_0_to_9_is_refused_naming_it(tmp_path):
    """`--model n_hid=٣` (an Arabic-Indic 3) was read by Python's int() as 3, where `--n ٣` is refused by the
    parser (and `--steps dvae=٣` trained 3 steps); a --model value, and a per-stage --steps, --batch-size or --lr,
    now take the digits 0-9 alone, as every other number t2i reads, in one line naming the value."""
    for item, said in (("n_hid=٣", "n_hid='٣': n_hid takes an integer"),
                       ("fsq_levels=٨,5,5", "fsq_levels='٨,5,5': fsq_levels takes integers separated by commas")):
        line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "r", "--model", item, *TINY), 2)
        assert line == f"error: --model {said}, written in the digits 0-9", line
    line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "r", "--model", "pixel_eps=٠.١",
                                *TINY), 2)
    assert line == "error: --model pixel_eps='٠.١': pixel_eps takes a finite number, written in the digits 0-9"
    # a whole run's STAGE.KEY, named with its prefix (its stage's check said `--model n_hid='x'`, unprefixed)
    for value, said in (("٣", "an integer, written in the digits 0-9"), ("x", "an integer")):
        line = one_line_failure(run("train", "--stage", "all", "--out", tmp_path / "r", "--model",
                                    f"dvae.n_hid={value}", *TINY), 2)
        assert line == f"error: --model dvae.n_hid='{value}': dvae.n_hid takes {said}", line
    # --steps, --batch-size and --lr, which t2i reads itself (a stage's own value, or one for every stage)
    for option, value, stage in (("--steps", "dvae=٣", "all"), ("--lr", "٣e-4", "dvae"), ("--batch-size", "٤", "clip")):
        line = one_line_failure(run("train", "--stage", stage, "--out", tmp_path / "r", option, value, *TINY), 2)
        shown = value.rpartition("=")[2]
        assert line == f"error: {option} {value!r}: {shown!r} is not a number written in the digits 0-9", line
    assert not (tmp_path / "r").exists()


def test_world_size_in_other_digits_is_no_count_of_processes(tmp_path, monkeypatch):
    """WORLD_SIZE=² passed str.isdigit() and then failed int() (an internal error, ValueError, in every torchrun
    check); it is read as no count, as WORLD_SIZE=abc is. A RANK (or LOCAL_RANK) that is no process of WORLD_SIZE
    (RANK=x: an internal error, ValueError) is refused in one line, by the process that has it."""
    from t2i_cli.train_options import n_processes

    for text in ("²", "٣"):
        monkeypatch.setenv("WORLD_SIZE", text)
        assert n_processes() == 1
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert n_processes() == 3
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name, value in (("RANK", "x"), ("RANK", "٣"), ("RANK", "2"), ("LOCAL_RANK", "x")):
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setenv(name, value)
        line = one_line_failure(run("train", "--stage", "dvae", "--steps", "1", "--out", tmp_path / "r", *TINY), 2)
        assert line == (f"error: {name}={value} is not a process of WORLD_SIZE=2 (0 to 1): start the processes with "
                        f"torchrun, which sets them, or unset WORLD_SIZE to train in one process"), line
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert not (tmp_path / "r").exists()


def test_the_same_seed_typed_two_ways_agrees_and_a_seed_the_option_refuses_is_said_so(tmp_path, tiny_weights):
    """`--seed 1 --seed 1.0` was refused, "--seed 1 and --seed 1.0 disagree", though `--seed 1.0` alone is seed 1
    (Typer reads 1.0 as the integer 1): the two now agree and draw what `--seed 1` draws. `--seed 1 --seed 1.5` was
    said to disagree, "give one of them", where 1.5 is no seed at all: the parser's refusal of it is said instead,
    as `--seed 1.5` alone gets it; two different seeds still disagree."""
    gen = ["generate", "a red bird", "--weights", tiny_weights]
    r = run(*gen, "--seed", "1", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.stderr
    r = run(*gen, "--seed", "1", "--seed", "1.0", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "a" / "a-red-bird-000.png").read_bytes() == (tmp_path / "b" / "a-red-bird-000.png").read_bytes()
    alone = one_line_failure(run(*gen, "--seed", "1.5", "--out", tmp_path / "c"), 2)
    for seeds in (("1", "1.5"), ("1.5", "1")):
        line = one_line_failure(run(*gen, "--seed", seeds[0], "--seed", seeds[1], "--out", tmp_path / "c"), 2)
        assert line == alone and line.startswith("error: Invalid value for '--seed'"), line
    line = one_line_failure(run(*gen, "--seed", "2", "--seed", "1.0", "--out", tmp_path / "c"), 2)
    assert line.startswith("error: --seed 2 and --seed 1.0 disagree; give one of them"), line
    assert not (tmp_path / "c").exists()


def test_rerank_link_best_with_top_0_names_what_to_do_with_both(tmp_path):
    """`rerank DIR --link-best --top 0` was told "--link-best needs --top K with K >= 1 ...; give one", though a
    --top was given: the line now names the --top given and what to do with both options."""
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")  # (refused before any picture is read)
    line = one_line_failure(run("rerank", folder, "--link-best", "--top", "0"), 2)
    assert line == ("error: --link-best needs --top K with K from 1 to 256 (it copies the best K of each prompt into "
                    "FOLDER/best/), got --top 0; give --top K, or leave --link-best out"), line
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]


def stopped(r) -> str:
    """A stopped command's one line (exit 130, no traceback)."""
    assert r.exit_code == 130, (r.exit_code, r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    return lines[0]


def test_a_stop_just_after_a_file_is_renamed_into_place_counts_and_names_it(tmp_path, tiny_weights, monkeypatch):
    """`generate --from PNG` stopped (Ctrl-C) just after its file was renamed into place said "interrupted: nothing
    was written" and named no file, the file there all the same (its name was counted, and printed, only after
    the write returned). A file is now counted, and named, as one step with its write; generate's own draws
    alike."""
    import os
    import signal

    from t2i_cli import outputs

    r = run("generate", "a red bird", "--weights", tiny_weights, "--seed", "3", "--out", tmp_path / "src")
    assert r.exit_code == 0, r.stderr
    source = next((tmp_path / "src").glob("*.png"))
    real = outputs.write_image

    def stop_once_written(*a, **k):
        path = real(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, the file in place
        return path

    monkeypatch.setattr(outputs, "write_image", stop_once_written)
    for name, args in (("from", ["--from", source]), ("draw", ["a red bird", "--seed", "3"])):
        out = tmp_path / name
        r = run("generate", *args, "--weights", tiny_weights, "--out", out)
        assert stopped(r) == "interrupted: 1 finished file kept, named on stdout; nothing partial was written"
        kept = sorted(out.glob("*.png"))
        assert len(kept) == 1 and r.stdout.split() == [str(kept[0])], r.stdout


def test_a_stop_of_rerank_says_what_it_kept(tmp_path, tiny_weights, monkeypatch):
    """`rerank` stopped said the generic "finished files are kept; nothing partial was written" whatever it had
    written: while scoring (before ranking.json) it wrote nothing, and after, the files it names on stdout. It
    now says "nothing was written" until ranking.json is, then how many files it kept (named on stdout), and
    during --link-best that the copies made in best/ are the ones its record names."""
    from t2i_cli import rerank as rr

    pics = tmp_path / "pics"
    assert run("generate", "a red bird", "--weights", tiny_weights, "--n", "3", "--out", pics).exit_code == 0
    before = sorted(p.name for p in pics.iterdir())
    common = ["--weights", tiny_weights, "--top", "2", "--link-best"]

    def stop(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(rr, "rank_folder", stop)
        r = run("rerank", pics, *common)
        assert stopped(r) == "interrupted: nothing was written" and r.stdout == ""
        assert sorted(p.name for p in pics.iterdir()) == before
    with monkeypatch.context() as m:
        m.setattr(rr, "write_top_sheet", stop)
        r = run("rerank", pics, *common)
        assert stopped(r) == "interrupted: 1 finished file kept, named on stdout; nothing partial was written"
        assert r.stdout.splitlines() == [f"wrote {pics / 'ranking.json'}"]
    with monkeypatch.context() as m:
        m.setattr(rr, "link_best", stop)
        r = run("rerank", pics, *common)
        assert stopped(r) == (f"interrupted: 2 finished files kept, named on stdout, and the copies made in "
                              f"{pics / 'best'} before the stop, which {pics / 'best' / 't2i-copies.json'} names; "
                              f"nothing partial was written")
        assert r.stdout.splitlines()[0] == f"wrote {pics / 'ranking.json'}", r.stdout
    with monkeypatch.context() as m:  # a stop while the ranking prints: every file still named, as said
        m.setattr("t2i_cli.cli._print_ranking", stop)
        r = run("rerank", pics, *common)
        assert stopped(r) == (f"interrupted: 2 finished files kept and {pics / 'best'} updated, named on stdout; "
                              f"nothing partial was written")
        lines = r.stdout.splitlines()
        assert lines[0] == f"wrote {pics / 'ranking.json'}" and lines[2].startswith(f"{pics / 'best'} holds the best")


def test_a_stop_of_eval_says_what_it_kept(tmp_path, tiny_weights, monkeypatch):
    """`eval` stopped said the generic "finished files are kept; nothing partial was written": before any
    picture it wrote nothing, and the --images pictures it writes are named nowhere on stdout. It now says
    "nothing was written", then how many images it kept in the --images folder, and the --json results once
    written."""
    import os
    import signal

    from t2i_cli import outputs
    from t2i_cli.world import evaluate as ev

    common = ["eval", "--weights", tiny_weights, "--n", "1", "--candidates", "1", "-q"]

    def stop(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ev, "evaluate_model", stop)
        r = run(*common, "--images", tmp_path / "none", "--json", tmp_path / "none.json")
        assert stopped(r) == "interrupted: nothing was written"
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.json").exists()
    real, calls = outputs.write_image, []

    def stop_at_the_second(*a, **k):
        path = real(*a, **k)
        calls.append(path)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, the second picture in place
        return path

    with monkeypatch.context() as m:
        m.setattr(outputs, "write_image", stop_at_the_second)
        r = run(*common, "--images", tmp_path / "ev")
        assert stopped(r) == (f"interrupted: 2 finished images kept in {tmp_path / 'ev'} (--images); nothing partial "
                              f"was written")
    assert sorted((tmp_path / "ev").iterdir()) == sorted(calls)
    with monkeypatch.context() as m:  # the results written, the stop before its line
        m.setattr("t2i_cli.cli.out.print", lambda text, *a, **k: stop() if str(text).startswith("wrote") else None)
        r = run(*common, "--json", tmp_path / "e.json")
        assert stopped(r) == (f"interrupted: the results written to {tmp_path / 'e.json'} (--json); nothing partial "
                              f"was written")
    assert json.loads((tmp_path / "e.json").read_text())["tasks"]
