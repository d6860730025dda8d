"""Session 40: what README.md says of each command, checked where a command did otherwise."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def picture(path: Path, colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path)
    return path


def test_data_caption_names_the_other_from_for_pictures_without_words_beside_captionable_ones(tmp_path: Path):
    # README: names without words "get none: counted and named, with the other `--from` to try". Where other
    # pictures of the folder got a caption, a dry run and a write counted and named them but left the --from out
    # (only a folder where nothing could be captioned said it).
    pics = tmp_path / "pics"
    picture(pics / "red-bird_02.png", 10)
    picture(pics / "IMG_2041.png", 50)
    for args in (["--dry-run"], ["-q"]):
        r = run("data", "caption", pics, *args)
        assert r.exit_code == 0, r.stderr
        assert r.stderr.strip().splitlines() == [
            f"warning: 1 picture whose name holds no words to caption it by, e.g. {pics / 'IMG_2041.png'}; try --from "
            "folder for those, or write their NAME.txt files yourself"]
    assert (pics / "red-bird_02.txt").read_text() == "red bird\n" and not (pics / "IMG_2041.txt").exists()
    by_folder = run("data", "caption", pics, "--from", "folder", "--dry-run")  # the other way round: FOLDER's own
    assert by_folder.exit_code == 0, by_folder.stderr  # pictures take no caption from it; red-bird_02.txt is written
    assert "whose folder's name holds no words" in by_folder.stderr and "try --from name for those" in by_folder.stderr
