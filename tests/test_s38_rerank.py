"""`t2i rerank` of a training folder (pictures with NAME.txt captions, sub-folders), as a user walkthrough ran it:
`t2i rerank DIR --bits --top 2 --link-best`. Sub-folders were not ranked, a long caption file was said to be PNG
text, rerank's best/ copies and --top sheet were then "images without .txt caption" to training, and a picture
held twice (a link) had no copy of its own while "best holds the best 10" said it had.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import run


def picture(path: Path, rgb: tuple[int, int, int], caption: str | None = None) -> None:
    """A 16x16 solid PNG, with its NAME.txt caption beside it when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), rgb).save(path)
    if caption is not None:
        path.with_suffix(".txt").write_text(caption + "\n")


def training_folder(root: Path) -> Path:
    """A folder of pairs as training reads it: one at the top, one in sub/, one in sub/deeper/."""
    folder = root / "pairs"
    picture(folder / "top.png", (200, 20, 20), "a red bird")
    picture(folder / "sub" / "grey.png", (120, 120, 120), "two green cats")
    picture(folder / "sub" / "deeper" / "rgba.png", (20, 20, 200), "a blue fish on the left")
    return folder


def rows(folder: Path) -> list[tuple[str, str]]:
    return [(row["file"], row["prompt"]) for row in json.loads((folder / "ranking.json").read_text())]


def test_pictures_in_sub_folders_are_ranked_with_their_own_captions(tiny_weights, tmp_path):
    """Training reads a folder recursively; rerank read only the folder's own files, and said nothing of the
    others. Each is ranked against its own NAME.txt, named by its path within the folder (ranking.json and the
    table); best/'s copies of an earlier --link-best are rerank's own output, not ranked again."""
    folder = training_folder(tmp_path)
    for _ in range(2):  # the second time, best/ holds the first run's copies
        r = run("rerank", folder, "--weights", tiny_weights, "--bits", "--top", 1, "--link-best", "--device", "cpu")
        assert r.exit_code == 0, (r.stderr, r.exception)
        assert r.stderr == "", r.stderr  # every caption read as a prompt: no text file, no picture left out
        assert rows(folder) == [("sub/deeper/rgba.png", "a blue fish on the left"), ("sub/grey.png", "two green cats"),
                                ("top.png", "a red bird")]
        table = [line.split()[-1] for line in r.stdout.splitlines() if line.startswith("     1 ")]
        assert table == ["sub/deeper/rgba.png", "sub/grey.png", "top.png"], r.stdout
    assert sorted(p.name for p in (folder / "best").iterdir()) == ["grey-000.png", "rgba-000.png", "t2i-copies.json",
                                                                   "top-000.png"]


def test_a_long_caption_file_is_said_as_one_and_a_long_prompt_option_as_itself(tiny_weights, tmp_path):
    """A caption file's first line over 1,000 characters was said to be "read from PNG text"."""
    folder = tmp_path / "long"
    picture(folder / "big.png", (200, 20, 20), "a red bird " * 100)  # 1,100 characters
    picture(folder / "small.png", (20, 20, 200), "a blue fish on the left")
    r = run("rerank", folder, "--weights", tiny_weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert r.stderr.splitlines() == ["warning: 1 prompt read from a caption file (NAME.txt) was longer than 1,000 "
                                     "characters; each was cut to its first 1,000"], r.stderr
    r = run("rerank", folder, "--weights", tiny_weights, "--device", "cpu", "--prompt", "a red bird " * 100)
    assert r.exit_code == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "1,000" in line]
    assert said == ["warning: --prompt is longer than 1,000 characters; it was cut to its first 1,000"], r.stderr


def test_training_does_not_take_reranks_outputs_for_pictures_without_captions(tiny_weights, tmp_path):
    """After `rerank --top --link-best` of a training folder, `data preview` (and training) said "skipped 3 items
    (3 images without .txt caption ...)" of best/'s copies and the --top sheet: each is now said as what it is."""
    folder = tmp_path / "pairs"
    picture(folder / "a.png", (200, 20, 20), "a red bird")
    picture(folder / "b.png", (20, 20, 200), "a blue fish on the left")
    picture(folder / "nocap.png", (20, 200, 20))
    r = run("rerank", folder, "--weights", tiny_weights, "--top", 1, "--link-best", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    r = run("data", "preview", folder, "--out", tmp_path / "preview.png", "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stderr.strip() == (
        f"warning: skipped 4 items (1 contact sheet t2i wrote: {folder / 'ranking-top-000.png'}; 2 copies rerank "
        f"--link-best made (named in its t2i-copies.json), e.g. {folder / 'best' / 'a-000.png'}; 1 image without "
        f".txt caption: {folder / 'nocap.png'}); using 2; to caption those without one by their names: t2i data "
        f"caption {folder} (--dry-run shows the captions first)"), r.stderr  # (since 0.13.2: `data caption`)


def test_a_picture_held_twice_for_two_prompts_is_said_to_share_its_copy(tiny_weights, tmp_path):
    """palette.png ranks first for its prompt, but its link link.png (same bytes, another caption) was copied
    first; "best holds the best 2" hid that palette.png had no copy of its own: the line says what best/ holds."""
    folder = tmp_path / "pairs"
    picture(folder / "palette.png", (200, 200, 20), "a big yellow star at night")
    (folder / "link.png").symlink_to(folder / "palette.png")
    (folder / "link.txt").write_text("two green cats\n")
    picture(folder / "other.png", (20, 20, 200), "a blue fish on the left")
    r = run("rerank", folder, "--weights", tiny_weights, "--top", 1, "--link-best", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[-1] == (f"{folder / 'best'} holds the best 3 in 2 files (2 copied now; palette.png "
                                         f"is the same picture as link.png: best/link-000.png holds both)"), r.stdout
    assert sorted(p.name for p in (folder / "best").iterdir()) == ["link-000.png", "other-000.png", "t2i-copies.json"]
    r = run("rerank", folder, "--weights", tiny_weights, "--top", 1, "--link-best", "--device", "cpu")
    assert r.stdout.splitlines()[-1] == (f"{folder / 'best'} holds the best 3 in 2 files (0 copied now; palette.png "
                                         f"is the same picture as link.png: best/link-000.png holds both)"), r.stdout


def test_a_run_folder_inside_the_folder_is_counted_not_ranked(tiny_weights, tmp_path):
    """A training run's folder below the ranked one (its samples, captioned or not) is passed over as training
    passes it over, and said: its pictures are not the user's to rank."""
    folder = training_folder(tmp_path)
    inner = folder / "sub" / "my-run"
    inner.mkdir()
    (inner / "train_config.json").write_text(json.dumps({"stage": "dvae", "data": "world:train"}))
    picture(inner / "sample.png", (9, 9, 9), "a red bird")
    r = run("rerank", folder, "--weights", tiny_weights, "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert [f for f, _ in rows(folder)] == ["sub/deeper/rgba.png", "sub/grey.png", "top.png"]
    assert r.stderr == "warning: skipped 1 t2i run folder (its samples are not ranked)\n", r.stderr
