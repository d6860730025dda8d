"""`t2i generate --prompts FILE`: each line drawn as `t2i generate LINE` draws it, in one load of the models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import RUNNER, one_line_failure, run
from t2i_cli import prompt_file
from t2i_cli.errors import DataError, UsageError
from t2i_cli.images import read_png_text
from t2i_cli.prompt_file import read_prompts

PROMPTS = ("# prompts for the demo\r\na red bird\r\n\r\n  two green cats  \r\na red bird\r\n# a comment\r\n"
           "a red bird and a blue fish\r\n")


def generate(weights: Path, out: Path, *extra):
    return run("generate", "--weights", weights, "--out", out, "--device", "cpu", *extra)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_reading_a_prompt_file_skips_blanks_comments_and_repeats_and_numbers_lines_as_an_editor(tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes("\ufeffa red bird\r\n#x\rtwo cats\n\n a red bird \n\x0cstar\n".encode())
    got = read_prompts(f)
    assert [(p.line, p.prompt) for p in got.prompts] == [(1, "a red bird"), (3, "two cats"), (6, "star")]
    assert got.repeats == ((5, 1),)  # after stripping, line 5 is line 1's prompt
    assert "line 5 (line 1)" in got.repeats_message() and read_prompts(tmp_path / "p.txt") == got
    many = Path(tmp_path / "many.txt")
    many.write_text("".join(f"a red bird {i % 3}\n" for i in range(20)))
    msg = read_prompts(many).repeats_message()
    assert msg.startswith("17 lines repeat") and msg.endswith("and 12 more")


@pytest.mark.parametrize("content, error, words", [
    (b"", DataError, "has no prompt"),
    (b"# only a comment\n\n   \n", DataError, "has no prompt"),
    ("\u200b\n\u2060\u200d\n".encode(), DataError, "has no prompt"),  # lines of zero-width characters alone
    (b"a red bird\n\xff\xfe two cats\n", DataError, "is not UTF-8 text (line 2)"),
    (b"a red bird\nab\x00c\n", DataError, "NUL character on line 2"),
])
def test_a_prompt_file_without_prompts_or_not_text_is_refused(tmp_path, content, error, words):
    f = tmp_path / "p.txt"
    f.write_bytes(content)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_prompts(f)


def test_prompt_file_bounds_are_enforced(tmp_path, monkeypatch):
    monkeypatch.setattr(prompt_file, "MAX_PROMPTS", 3)
    f = tmp_path / "p.txt"
    f.write_text("a\nb\nc\na\n")  # three distinct prompts and a repeat: within the bound
    assert len(read_prompts(f).prompts) == 3
    f.write_text("a\nb\nc\nd\n")
    with pytest.raises(DataError, match="over 3 prompts"):
        read_prompts(f)
    monkeypatch.setattr(prompt_file, "MAX_PROMPT_FILE", 8)
    f.write_text("a\nb\nc\n")  # 6 bytes
    assert len(read_prompts(f).prompts) == 3
    f.write_text("a\nb\nc\nd\ne\n")  # 10 bytes: read no further than the bound, and refused
    with pytest.raises(DataError, match="split it"):
        read_prompts(f)
    with pytest.raises(DataError, match="does not exist; check the path"):
        read_prompts(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="is a folder"):
        read_prompts(tmp_path)


def test_generate_prompts_writes_the_files_each_prompt_alone_writes(tmp_path):
    """Every line's PNGs are byte for byte those of `t2i generate LINE` with the same options (the default best
    of 4 by CLIP, and regional guidance for the two-object line); a repeated line is drawn once, with a warning;
    stdout names every file in the order written."""
    from conftest import TINY_CAPTIONS, build_tiny_folder

    tiny_weights = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    f = tmp_path / "prompts.txt"
    f.write_bytes(PROMPTS.encode())
    r = generate(tiny_weights, tmp_path / "all", "--prompts", f, "--seed", "3")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "1 line repeats an earlier prompt" in r.stderr and "line 5 (line 2)" in r.stderr
    got = files(tmp_path / "all")
    assert list(r.stdout.split()) == [str(tmp_path / "all" / n) for n in
                                      ("a-red-bird-000.png", "two-green-cats-000.png",
                                       "a-red-bird-and-a-blue-fish-000.png")]
    for prompt in ("a red bird", "two green cats", "a red bird and a blue fish"):
        one = run("generate", prompt, "--weights", tiny_weights, "--out", tmp_path / "one", "--device", "cpu",
                  "--seed", "3", "--quiet")
        assert one.exit_code == 0, one.stderr
    alone = files(tmp_path / "one")
    assert got == alone and len(got) == 3
    regions = read_png_text(tmp_path / "all" / "a-red-bird-and-a-blue-fish-000.png")
    assert "regions" in regions and regions["prompt"] == "a red bird and a blue fish"  # drew with regions


def test_generate_prompts_honours_n_grid_and_reads_standard_input(tiny_weights, tmp_path):
    r = RUNNER.invoke(__import__("t2i_cli.cli", fromlist=["app"]).app,
                      ["generate", "--prompts", "-", "--weights", str(tiny_weights), "--out", str(tmp_path / "o"),
                       "--device", "cpu", "--n", "2", "--grid", "--quiet"],
                      input="a red bird\ntwo green cats\n")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["a-red-bird-000.png", "a-red-bird-001.png", "a-red-bird-grid-000.png",
                     "two-green-cats-000.png", "two-green-cats-001.png", "two-green-cats-grid-000.png"]
    assert r.stderr == ""  # --quiet
    one = generate(tiny_weights, tmp_path / "one", "two green cats", "--n", "2", "--grid", "--quiet")
    assert one.exit_code == 0
    assert files(tmp_path / "one") == {k: v for k, v in files(tmp_path / "o").items() if k.startswith("two")}


@pytest.mark.parametrize("extra, code, words", [
    (["a red bird"], 2, "give PROMPT or --prompts FILE, not both"),
    (["--from", "x.png"], 2, "leave out --prompts"),
    (["--seed", "-1"], 2, "seed"),
])
def test_generate_prompts_refusals_are_one_line(tiny_weights, tmp_path, extra, code, words):
    f = tmp_path / "p.txt"
    f.write_text("a red bird\n")
    r = generate(tiny_weights, tmp_path / "o", "--prompts", f, *extra)
    assert words in one_line_failure(r, code)
    assert not (tmp_path / "o").exists()


def test_generate_prompts_refuses_a_bad_file_before_loading_anything(tiny_weights, tmp_path, monkeypatch):
    from t2i_cli import pipeline

    monkeypatch.setattr(pipeline.TextToImage, "from_folder", lambda *a, **k: pytest.fail("loaded the models"))
    f = tmp_path / "p.txt"
    f.write_bytes(b"\xff\n")
    assert "is not UTF-8 text (line 1)" in one_line_failure(generate(tiny_weights, tmp_path / "o", "--prompts", f))
    assert "does not exist" in one_line_failure(generate(tiny_weights, tmp_path / "o", "--prompts",
                                                         tmp_path / "none.txt"))
    assert not (tmp_path / "o").exists()


def test_an_interrupted_prompt_file_keeps_and_names_the_prompts_already_drawn(tiny_weights, tmp_path, monkeypatch):
    from t2i_cli.pipeline import TextToImage

    f = tmp_path / "p.txt"
    f.write_text("a red bird\ntwo green cats\na blue fish on the left\n")
    real = TextToImage.batches
    calls = []

    def batches(self, request, *a, **k):
        calls.append(request.prompt)
        if len(calls) == 2:
            raise KeyboardInterrupt
        yield from real(self, request, *a, **k)

    monkeypatch.setattr(TextToImage, "batches", batches)
    out = tmp_path / "o"
    r = generate(tiny_weights, out, "--prompts", f, "--candidates", "1")
    assert r.exit_code == 130, (r.stdout, r.stderr)
    assert calls == ["a red bird", "two green cats"]
    assert [p.name for p in out.iterdir()] == ["a-red-bird-000.png"]
    assert r.stdout.split() == [str(out / "a-red-bird-000.png")]


def test_each_prompt_s_files_are_named_before_the_next_prompt_is_drawn(tiny_weights, tmp_path, monkeypatch):
    """A long prompt file names its files as it goes, not all at the end: when each prompt starts drawing,
    stdout already holds every file of the prompts before it, and each file is named once."""
    from t2i_cli.pipeline import TextToImage

    f = tmp_path / "p.txt"
    f.write_text("a red bird\ntwo green cats\na blue fish on the left\n")
    real = TextToImage.batches
    seen = []

    def batches(self, request, *a, **k):
        sys.stdout.flush()
        seen.append(sys.stdout.buffer.getvalue().decode().split())
        yield from real(self, request, *a, **k)

    monkeypatch.setattr(TextToImage, "batches", batches)
    out = tmp_path / "o"
    r = generate(tiny_weights, out, "--prompts", f, "--candidates", "2", "--keep", "1", "--grid")
    assert r.exit_code == 0, r.stderr
    firsts = [str(out / n) for n in ("a-red-bird-000.png", "a-red-bird-grid-000.png")]
    assert seen[0] == [] and seen[1] == firsts and len(seen[2]) == 4 and seen[2][:2] == firsts
    last = [str(out / f"a-blue-fish-on-the-left-{n}000.png") for n in ("", "grid-")]
    assert r.stdout.split() == seen[2] + last


def test_generate_prompts_with_an_image_prompt_completes_it_for_each_line(tiny_weights, tmp_path):
    from PIL import Image

    src = tmp_path / "src.png"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(src)
    f = tmp_path / "p.txt"
    f.write_text("a red bird\ntwo green cats\n")
    r = generate(tiny_weights, tmp_path / "o", "--prompts", f, "--image", src, "--keep-top", "0.25", "--quiet")
    assert r.exit_code == 0, r.stderr
    for prompt in ("a red bird", "two green cats"):
        one = generate(tiny_weights, tmp_path / "one", prompt, "--image", src, "--keep-top", "0.25", "--quiet")
        assert one.exit_code == 0, one.stderr
    assert files(tmp_path / "o") == files(tmp_path / "one") and len(files(tmp_path / "o")) == 2
    assert read_png_text(tmp_path / "o" / "two-green-cats-000.png")["keep_top"] == "0.25"


def test_a_prompt_line_too_long_or_standard_input_that_is_closed_or_a_terminal_is_refused(tmp_path, monkeypatch):
    import io
    import sys

    f = tmp_path / "p.txt"
    f.write_text("a red bird\n" + "x" * (prompt_file.MAX_PROMPT_CHARS + 1) + "\n")
    with pytest.raises(DataError, match="line 2 is 1,001 characters long; a prompt is at most 1,000"):
        read_prompts(f)
    f.write_text("a red bird\n" + "x" * prompt_file.MAX_PROMPT_CHARS + "\n")
    assert len(read_prompts(f).prompts) == 2

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"a red bird\n")))
    with pytest.raises(DataError, match="standard input, which is a terminal"):
        read_prompts(Path("-"))
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(DataError, match="standard input, which is closed"):
        read_prompts(Path("-"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a red bird\n\ntwo cats\n")))
    assert [p.prompt for p in read_prompts(Path("-")).prompts] == ["a red bird", "two cats"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from standard input\n")))
    assert [p.prompt for p in read_prompts("-").prompts] == ["from standard input"]  # - as typed, a str
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from standard input\n")))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("a file named dash\n")  # ./- as typed is that file, not standard input
    assert [p.prompt for p in read_prompts("./-").prompts] == ["a file named dash"]
    with pytest.raises(UsageError, match="--prompts is given an empty file name"):  # exit 2, as --init ""
        read_prompts("")
    with pytest.raises(DataError, match=r"^--prompts \./nothing/- does not exist"):
        read_prompts("./nothing/-")


def test_an_interrupt_while_paths_are_printed_names_each_file_once(tiny_weights, tmp_path, monkeypatch):
    """Ctrl-C while the second of a prompt's files is being named: the rest are named, and none twice."""
    from t2i_cli import cli

    f = tmp_path / "p.txt"
    f.write_text("a red bird\n")
    real = cli.out.print
    calls = []

    def interrupted_once(*a, **k):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*a, **k)

    monkeypatch.setattr(cli.out, "print", interrupted_once)
    out = tmp_path / "o"
    r = generate(tiny_weights, out, "--prompts", f, "--n", "3")
    assert r.exit_code == 130, (r.stdout, r.stderr)
    assert r.stdout.split() == [str(out / f"a-red-bird-{i:03d}.png") for i in range(3)]


def test_paths_named_under_a_live_bar_go_above_it_only_when_stdout_is_the_bar_s_terminal(monkeypatch, capsys):
    """stdout and stderr one terminal: a path printed straight to stdout landed on the bar's own line, so it goes
    through the bar's console (Rich draws it above the bar); stdout elsewhere (a file, a pipe): to stdout."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from t2i_cli import cli

    for same in (True, False):
        monkeypatch.setattr(cli, "_same_terminal", lambda same=same: same)
        screen = io.StringIO()
        with Progress(console=Console(file=screen, force_terminal=True)) as bar:
            named = [0]
            cli._name_paths([cli.Written(Path("a.png"), {}), cli.Written(Path("b.png"), {})], named, bar)
        assert named == [2]
        assert ("a.png" in screen.getvalue()) == same and ("b.png" in screen.getvalue()) == same
        assert capsys.readouterr().out.split() == ([] if same else ["a.png", "b.png"])
    assert not cli._same_terminal()  # under pytest stdout is captured, not a terminal


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_prompt_file_is_read_no_further_than_its_bound(tmp_path, monkeypatch, source):
    """`--prompts /dev/zero` or `yes | t2i generate --prompts -` must not read without end: the file (or
    standard input) is read for at most MAX_PROMPT_FILE + 1 bytes, then refused (the refusal alone came after
    an unbounded read, and no test saw the difference)."""
    import io

    asked = []

    class Endless(io.RawIOBase):
        def read(self, n=-1):
            asked.append(n)
            if n is None or n < 0:
                raise AssertionError("an unbounded read of an endless stream")
            return b"a red bird\n" * (n // 11) + b"a" * (n % 11)

    if source == "stdin":
        monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": Endless(), "closed": False,
                                                          "isatty": lambda self: False})())
        path = "-"
    else:
        monkeypatch.setattr(prompt_file, "open", lambda *a, **k: Endless(), raising=False)
        path = tmp_path / "endless.txt"
    with pytest.raises(DataError, match="split it"):
        read_prompts(path)
    assert asked == [prompt_file.MAX_PROMPT_FILE + 1]


def test_lines_that_differ_only_in_case_and_spacing_are_one_prompt_as_they_draw_the_same_pixels(tmp_path):
    """The model reads a prompt lower-cased, in words and runs of marks: "A Red  Bird" drew exactly the pixels of
    "a red bird" (a second file of the same picture), so read_prompts keeps it at its first line; a hyphen or other
    words keep a line apart. The pixels are checked equal, not assumed, on a tiny model with regional guidance."""
    import numpy as np
    from PIL import Image

    from conftest import TINY_CAPTIONS, build_tiny_folder

    f = tmp_path / "p.txt"
    f.write_text("a red bird and a blue fish\nA Red  Bird and a BLUE fish\na red-bird and a blue fish\n"
                 "a red bird , and a blue fish\na red bird, and a blue fish\n")
    got = read_prompts(f)
    assert [p.line for p in got.prompts] == [1, 3, 4] and got.repeats == ((2, 1), (5, 4))
    assert "letter case and spacing aside" in got.repeats_message()
    assert prompt_file.as_read("Ａ red bird") == prompt_file.as_read("a red bird")  # the world's parser reads
    # them alike, as the tokenizer does (NFKC); and the tokenizer reads U+001C as a mark, where Python's \s is a space
    assert prompt_file.as_read("a red\x1cbird") != prompt_file.as_read("a red bird")
    weights = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    drawn = {}
    for i, prompt in enumerate(("a red bird and a blue fish", "A Red  Bird and a BLUE fish")):
        r = generate(weights, tmp_path / f"o{i}", prompt, "--seed", "5", "--quiet", "--candidates", "1")
        assert r.exit_code == 0, r.stderr
        (png,) = (tmp_path / f"o{i}").glob("*.png")
        drawn[i] = png
    a, b = (np.asarray(Image.open(drawn[i]).convert("RGB")) for i in (0, 1))
    assert "regions" in read_png_text(drawn[1]) and np.array_equal(a, b)
