"""Session 47's lead's mends of the closing reads (each test fails without its mend)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from conftest import run


def test_training_and_data_caption_match_captions_in_another_folder_alike(tmp_path: Path):
    """images/credits.png beside captions/credits.txt: a document's name (credits.txt) is no caption without image
    (session 47), so `t2i data caption` captioned credits.png by its name, while training's (and data preview's)
    refusal, matching every orphan .txt, said it had a caption in another folder, to move. Both now match the
    captions alone: the refusal names red-bird.png alone, and data caption writes credits.png's caption."""
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    (ds / "captions").mkdir()
    for i, name in enumerate(("red-bird", "credits", "blue-fish")):
        Image.new("RGB", (16, 16), (90 * i, 30, 30)).save(ds / "images" / f"{name}.png")
    (ds / "captions" / "red-bird.txt").write_text("a red bird\n")
    (ds / "captions" / "credits.txt").write_text("thanks to all\n")
    r = run("data", "preview", ds, "--out", tmp_path / "p.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code != 0 and re.search(r"1 picture without a caption has a NAME.txt in another folder, e\.g\. "
                                          + re.escape(str(ds / "images" / "red-bird.png")), said), said
    r = run("data", "caption", ds, "--dry-run")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0 and f"{ds / 'images' / 'credits.txt'}: credits" in said, said
    assert "1 picture whose NAME.txt sits in another folder left without a caption, e.g. " in said, said


def test_a_command_suggested_for_a_path_typed_with_tilde_works_where_pasted(tmp_path: Path, monkeypatch):
    """`t2i data preview "~/my data"` of a folder holding only an archive: its unpack command quoted the path as
    typed, `tar xf '~/my data/pics.tar'`, which a shell does not expand inside quotes (pasted, it made a folder named
    ~ here and tar failed). Lines say a path typed with ~ expanded, so the command works where pasted."""
    import shlex
    import subprocess
    import tarfile

    home = tmp_path / "home"
    data = home / "my data"
    data.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "red-bird.png")
    (tmp_path / "red-bird.txt").write_text("a red bird\n")
    with tarfile.open(data / "pics.tar", "w") as tar:
        for name in ("red-bird.png", "red-bird.txt"):
            tar.add(tmp_path / name, arcname=name)
    r = run("data", "preview", "~/my data", "--out", tmp_path / "p.png")
    line = " ".join(r.stderr.split())
    assert r.exit_code != 0 and "'~/" not in line and f"tar xf {shlex.quote(str(data / 'pics.tar'))}" in line, line
    command = re.search(r"\((mkdir [^)]*)\)", line)
    assert command, line
    work = tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run(command.group(1), shell=True, cwd=work, check=True)
    assert not (work / "~").exists() and (data / "pics" / "red-bird.png").is_file()


def test_the_quote_the_prompt_hint_is_one_word_to_a_shell_whatever_the_prompt_holds(tmp_path: Path):
    """`t2i generate a '$5' 'bird`x`'` was told `t2i generate "a $5 bird`x`"`: pasted into a shell, the double quotes
    expanded $5 and ran the backquoted x. The hint's quoted prompt is one word holding the words as typed, read
    back by a shell; a plain prompt keeps its double quotes."""
    import shlex
    import subprocess

    for words, plain in ((["a", "$5", "bird`touch pwned`"], False), (["a", 'say "hi"', "back\\slash!"], False),
                         (["a", "red", "bird"], True)):
        r = run("generate", *words)
        line = " ".join(r.stderr.split())
        hint = re.search(r"quote it, t2i generate (.*); see ", line)
        assert r.exit_code == 2 and hint, line
        assert hint.group(1).startswith('"') == plain, line
        echoed = subprocess.run(["bash", "-c", f"printf '%s\\n' {hint.group(1)}"], cwd=tmp_path, capture_output=True,
                                text=True, check=True).stdout
        assert echoed == " ".join(words) + "\n" and not (tmp_path / "pwned").exists(), (hint.group(1), echoed)
        assert shlex.split(hint.group(1)) == [" ".join(words)]


def test_t2i_weights_beginning_with_tilde_is_the_home_folders(tmp_path: Path, monkeypatch, tiny_weights):
    """T2I_WEIGHTS="~/w" (quoted: the shell leaves ~) was "weights folder ~/w (from T2I_WEIGHTS) does not exist",
    where --weights "~/w" reads the home folder's w since session 47: the variable reads ~ as the option does."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(tiny_weights, home / "w")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("T2I_WEIGHTS", "~/w")
    monkeypatch.chdir(tmp_path)
    r = run("generate", "a red bird", "--n", "1", "--out", "o")
    assert r.exit_code == 0 and (tmp_path / "o" / "a-red-bird-000.png").is_file(), (r.stdout, r.stderr)


def test_the_kohya_rename_command_said_renames_a_caption_file_in_capitals_too(tmp_path: Path):
    """A picture's PIC.CAPTION (kohya-ss's extension, in capitals: counted as one, any case) was told to run
    `find DIR -name '*.caption' ... ${1%.caption}.txt`, which missed it; the command said now renames it, run as
    said, and the folder trains."""
    import subprocess

    pics = tmp_path / "my pics"
    pics.mkdir()
    for i, name in enumerate(("red-bird", "blue-fish")):
        Image.new("RGB", (16, 16), (90 * i, 30, 30)).save(pics / f"{name}.png")
    (pics / "red-bird.CAPTION").write_text("a red bird\n")
    (pics / "blue-fish.caption").write_text("a blue fish\n")
    r = run("data", "preview", pics, "--out", tmp_path / "p.png")
    line = " ".join(r.stderr.split())
    command = re.search(r"to rename each PIC\.caption to PIC\.txt: (find .*\\;)", line)
    assert r.exit_code != 0 and command, line
    subprocess.run(command.group(1), shell=True, check=True, cwd=tmp_path)
    assert sorted(p.name for p in pics.glob("*.txt")) == ["blue-fish.txt", "red-bird.txt"]
    r = run("data", "preview", pics, "--out", tmp_path / "p.png")
    assert r.exit_code == 0, r.stderr
