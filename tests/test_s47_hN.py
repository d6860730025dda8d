"""Session 47 (hN): review of hK's and hG's merged changes (paths with ~, caption dashes, a run's model keys).
Each test fails without its mend."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home folder of the test's own, and a current folder apart from it."""
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    return home


def captioned(folder: Path, names=("apple", "bird", "clock")) -> Path:
    """folder with a 16-pixel picture and its same-name caption for each name."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.new("RGB", (16, 16), (40 * k, 200 - 40 * k, 90)).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text(f"a {name}\n")
    return folder


# ----------------------------------------------------------------------------- a folder named ~ here: ./~
def test_data_preview_of_a_folder_named_tilde_here_reads_it_not_the_home_folder(home):
    """`t2i data preview ./~` read the home folder: a Path reads ./~ as ~, which Path.expanduser made home ('no
    usable image-caption pairs ... under /home/me'); the folder named ~ here is the one typed."""
    captioned(Path.cwd() / "~")
    r = run("data", "preview", "./~", "--out", "p.png", "--n", "3", "--side", "16")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert (Path.cwd() / "p.png").is_file()
    assert str(home) not in r.stdout + r.stderr


def test_a_folder_named_tilde_here_is_said_as_typed_not_as_the_home_folder(home, tiny_weights):
    """`generate --out ./~` wrote into the folder named ~ here and said '~/a-red-bird-000.png' (a Path reads ./~
    as ~): pasted, or given back to t2i (`vary ~/a-red-bird-000.png`), that names the home folder. It is said as
    typed, ./~/..., its --json too; `--out ~/pics/` (a trailing /) is still the home folder's pics, said as typed
    without a doubled /."""
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out", "./~")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert [p.name for p in (Path.cwd() / "~").iterdir()] == ["a-red-bird-000.png"]
    assert r.stdout.split() == ["./~/a-red-bird-000.png"]
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out", ".//-/")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert r.stdout.split() == [".//-/a-red-bird-000.png"]
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out", "~/pics/")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert [p.name for p in (home / "pics").iterdir()] == ["a-red-bird-000.png"]
    assert [p.name for p in (Path.cwd() / "~").iterdir()] == ["a-red-bird-000.png"]


# ----------------------------------------------------------------------------- ~ said as typed
def test_a_path_typed_with_tilde_is_said_expanded_in_its_lines_as_in_its_json(home, tiny_weights):
    """`--out ~/pics` is the home folder's pics; the lines that name it say it expanded, as a shell would have
    passed it: said as typed (session 47 for a while), a file named on stdout was no path a script could open
    (`... | xargs ls`: "cannot access '~/pics/a-red-bird-000.png'"), a quoted command t2i suggests left ~ unexpanded
    (`tar xf '~/my data/x.tar'`), and a path typed in full under the home folder was said with ~ (closing read)."""
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out", "~/pics")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert r.stdout.split() == [f"{home}/pics/a-red-bird-000.png"]
    assert Path(r.stdout.split()[0]).is_file()
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out=~/pics", "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert f'"path": "{home}/pics/a-red-bird-001.png"' in r.stdout
    r = run("generate", "a red bird", "--weights", "~/nope", "--out", "o")
    assert r.exit_code != 0
    assert f"weights folder {home}/nope does not exist" in r.stderr and "~/nope" not in r.stderr, r.stderr
    r = run("generate", "a red bird", "--weights", f"{home}/nope", "--out", "o")
    assert f"weights folder {home}/nope does not exist" in r.stderr, r.stderr


# ----------------------------------------------------------------------------- captions from names: hyphens
@pytest.mark.parametrize("name, caption", [("red\u2010bird", "red bird"), ("bird \u2010 Copy", "bird"),
                                           ("x\u2010ray_02", "x ray"), ("red-bird", "red bird"),
                                           ("Große Straße – Kopie (2)", "große straße"),
                                           ("🙈", "see-no-evil monkey")])
def test_a_hyphen_written_as_u2010_parts_words_as_every_other_dash_does(name, caption):
    """U+2010 HYPHEN, a typesetter's hyphen, was left out of the dashes that part words (it holds a symbol's
    name's hyphens while a name is read): 'red‐bird' stayed one word 'red-bird' where red-bird and red–bird are
    'red bird', and 'bird ‐ Copy' was captioned 'bird -', a lone dash, its copy's mark kept. A symbol's name keeps
    its hyphens (🙈)."""
    from t2i_cli.name_captions import caption_of

    assert caption_of(name) == caption


# ----------------------------------------------------------------------------- the quote-the-prompt hint
@pytest.mark.parametrize("args, hint", [
    (["a", "red", "--", "bird", "--n", "2"], 't2i generate "a red bird" --n 2;'),
    (["a", "red", "--", "bird"], 't2i generate "a red bird";'),
    (["--", "a  red", "bird", "--n=2"], 't2i generate "a  red bird" --n=2;'),
])
def test_the_quote_the_prompt_hint_keeps_the_words_written_before_double_dash(args, hint):
    """`t2i generate a red -- bird --n 2` was told `t2i generate "a bird" --n 2`: the words between the prompt and
    -- were lost from the hint (its prompt's words were those after -- alone)."""
    line = one_line_failure(run("generate", *args), 2)
    assert "a prompt of several words is one argument: quote it, " + hint in line, line


def test_a_tilde_naming_no_user_is_refused_not_made_a_folder_here(home, tiny_weights):
    """`--out=~nobdy/x` (a user mistyped; a shell leaves it as typed) made a folder named ~nobdy in the current one
    and wrote there, exit 0, as `--out=~/pics` made ~ before ~ was the home folder: refused in one line naming it and
    ./~nobdy/x for a folder of that name, which is taken; a file of such a name here is read as it is."""
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out=~nobdy5x/x")
    line = one_line_failure(r, 2)
    assert "--out ~nobdy5x/x: ~nobdy5x names the home folder of a user so named, and there is none" in line, line
    assert "./~nobdy5x/x" in line and not (Path.cwd() / "~nobdy5x").exists()
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", "--out", "./~nobdy5x/x")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert (Path.cwd() / "~nobdy5x" / "x" / "a-red-bird-000.png").is_file()
    r = run("vary", "~nobdy5x/x/a-red-bird-000.png", "--weights", tiny_weights, "--n", "1", "--out", "v")
    assert r.exit_code == 0, (r.stdout, r.stderr)


# ----------------------------------------------------------------------------- long values said to 40 characters
@pytest.mark.parametrize("args", [
    ["--stage", "dvae", "--lr", "x" * 3000],
    ["--stage", "dvae", "--steps", "é" * 3000],  # (the non-ASCII refusal)
    ["--stage", "all", "--steps", "dvae=" + "é" * 3000],
    ["--stage", "dvae", "--lr", "dvae=1," + "x" * 3000 + "=2"],
    ["--stage", "dvae", "--model", "n_hid=" + "é" * 3000],
    ["--stage", "dvae", "--model", "n_hid=" + "x" * 3000],
    ["--stage", "dvae", "--model", "x" * 3000 + "=1"],
    ["--stage", "dvae", "--model", "x" * 3000],
    ["--stage", "x" * 3000],
])
def test_a_long_train_value_is_said_to_its_first_40_characters(tmp_path, args):
    """A --model, --steps or --lr value (or key) of 3,000 characters was said whole, twice in some lines (a line of
    6-12 KB: `--steps 'ééé...': 'ééé...' is not a number written in ASCII`), where a weights file's or a run file's
    value is said to its first 40 characters and its length (hG's mend one option over)."""
    line = one_line_failure(run("train", "--out", tmp_path / "r", "--preset", "tiny", *args), 2)
    assert len(line) < 400 and "characters)" in line, line
    assert not (tmp_path / "r").exists()


def test_data_previews_source_with_tilde_is_read_as_the_home_folder(home):
    """`t2i data preview "~/ds"` (its SOURCE an argument, not among the path options ~ was expanded in) named its
    files /home/me/ds/a.png and its hint `t2i data caption /home/me/ds`, where eval --data ~/ds and train --data say
    ~/ds: said as typed, as every other path with ~. (Since the closing read every path typed with ~ is said
    expanded, this one too: the test keeps that SOURCE is read as the home folder's.)"""
    captioned(home / "ds")
    Image.new("RGB", (16, 16), (1, 2, 3)).save(home / "ds" / "lone.png")
    r = run("data", "preview", "~/ds", "--out", "p.png", "--n", "3", "--side", "16")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert f"without .txt caption: {home}/ds/lone.png)" in r.stderr, r.stderr
    assert f"t2i data caption {home}/ds " in r.stderr, r.stderr
