"""Review of the afternoon's diff (cef4dcc..): defects found and fixed."""

from pathlib import Path

import pytest
from PIL import Image

from conftest import run
from t2i_cli.name_captions import caption_of


@pytest.mark.parametrize("name, caption", [("TicTacToe2", "tic tac toe"), ("iPad2Air4", "i pad 2 air"),
                                           ("NaNoWriMo2023", "na no wri mo"), ("HoHoHo2023", "ho ho ho")])
def test_words_of_two_or_three_letters_in_camel_case_are_no_random_id(name: str, caption: str):
    """The random-id rule (ShareX's "chrome_5gT8kLm2Qp") took any piece of short camel-case words with a digit for
    an id: "TicTacToe2", "iPad2Air4" had no caption at all; they keep their words, and ids are still dropped."""
    assert caption_of(name) == caption
    assert caption_of("chrome_5gT8kLm2Qp") == "chrome"
    assert caption_of("thumbnail_dQw4w9WgXcQ") == "thumbnail"
    assert caption_of("msedge_Xy7Qw2Lp9Z") == "msedge"


@pytest.mark.parametrize("name", ["DJI_0001 (1)", "GOPR0001 (1)", "IMG_1234-Edit (1)",
                                  "PXL_20240501_103102345.PORTRAIT (1)", "Photo on 5-1-24 at 10.31 AM (1)",
                                  "pexels-anna-shvets-4587991 (1)",
                                  "markus-spiske-Q1p7bh3SHj8-unsplash (1)", "Messenger_creation_1a2b3c4d-1a2b (1)"])
def test_a_downloads_copy_of_a_camera_or_stock_name_has_no_caption_either(name: str):
    """A browser's second download of a camera's or stock site's picture ("DJI_0001 (1)", "pexels-anna-shvets-4587991
    (1)") was captioned "dji", "pexels anna shvets": its counter kept the new rules from matching; none, as its
    original and "DSC_0001 (1)" have none."""
    assert caption_of(name.rsplit(" (", 1)[0]) is None
    assert caption_of(name) is None


def test_reranks_kept_pictures_are_counted_as_pillow_holds_them():
    """Squares kept pictures up to KEPT_BYTES counted at 3 bytes a pixel; Pillow holds an RGB picture in 4, so the
    budget (the README's bound) held a third more. Three pictures of a budget of three are kept, not four."""
    from pathlib import Path

    from PIL import Image

    from t2i_cli import rerank as rr

    side = 32
    squares = rr.Squares(budget=3 * side * side * len(Image.new("RGBA", (1, 1)).tobytes()))
    for i in range(5):
        squares.keep(Path(f"p{i}.png"), side, Image.new("RGB", (side, side), (i, 0, 0)))
    assert len(squares.kept) == 3
    assert squares.used == squares.budget


@pytest.mark.parametrize("split", ["train_images", "test_images", "Val Images", "trainval", "heldout"])
def test_kaggles_train_images_folder_names_no_class(tmp_path, split: str):
    """`data caption --from folder` of a Kaggle dataset, "ds/train_images/x.png", captioned each picture "train
    images" (only "train", "test", ... were a split's folder): none, and a class folder under it names its own."""
    from t2i_cli.name_captions import folder_caption

    ds = tmp_path / "ds"
    assert folder_caption(ds / split / "IMG_0001.png", ds) is None
    assert folder_caption(ds / split / "cat" / "IMG_0001.png", ds) == "cat"
    assert folder_caption(ds / "train set" / "IMG_0001.png", ds) == "train set"  # (a toy's: a class)


def test_info_of_a_whole_run_whose_stage_was_extended_does_not_send_to_its_old_weights(tmp_path: Path):
    """After `t2i train --resume RUN/clip --steps 3` (the README's way to extend one stage), `t2i info RUN` said
    "finished ... next: generate with: t2i generate PROMPT --weights RUN/weights", the model exported before, while
    the stage's own finish line says `t2i train --resume RUN` exports it: info says so too, until that is done."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(4):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(pics / f"pic{i}.png")
        (pics / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "generate with" in run("info", out).stdout
    assert run("train", "--resume", out / "clip", "--steps", "3", "--workers", "0", "--quiet").exit_code == 0
    said = " ".join(run("info", out).stdout.split())
    assert f"t2i train --resume {out} exports it there" in said and "generate with" not in said, said
    assert run("train", "--resume", out, "--workers", "0", "--quiet").exit_code == 0
    said = " ".join(run("info", out).stdout.split())
    assert "generate with" in said and "exports it there" not in said, said


def test_info_of_a_whole_run_whose_dvae_stage_was_extended_still_says_generate(tmp_path: Path):
    """Extending a whole run's dvae stage (`t2i train --resume RUN/dvae --steps 3`) changes nothing RUN/weights
    holds (the transformer's copy of the dVAE it trained on, which the run's resume exports again), but `t2i info
    RUN` said its dvae stage "trained on after RUN/weights was exported ... t2i train --resume RUN exports it
    there", and said it again after that resume: it says to generate."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(4):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(pics / f"pic{i}.png")
        (pics / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert run("train", "--resume", out / "dvae", "--steps", "3", "--workers", "0", "--quiet").exit_code == 0
    for resumed in (False, True):
        if resumed:
            assert run("train", "--resume", out, "--workers", "0", "--quiet").exit_code == 0
        said = " ".join(run("info", out).stdout.split())
        assert "generate with" in said and "exports it there" not in said, said
