"""Session 45, hJ: a user's journey on a new set of real pictures (pygame's example data and documentation
pictures in 13 formats, scikit-learn's and Matplotlib's sample photos, Tk's logos, bench/make_formats_folder.py):
defects found on the way, each with a test that fails without its fix."""

from pathlib import Path

from PIL import Image

from conftest import run
from t2i_cli.name_captions import caption_of


def test_a_sprite_named_shot_is_captioned_shot_and_a_screen_shot_still_none(tmp_path: Path):
    """pygame's bullet sprite `shot.gif` got no caption from `t2i data caption` ("a name that holds no words"): "shot"
    was a tool's word wherever it stood. It is one beside "screen" or a date (macOS' "Screen Shot ... at ...") only."""
    assert caption_of("shot") == "shot"
    assert caption_of("shot_001") == "shot"  # (a counter with a leading zero dropped, as "bird_001" is "bird")
    for name in ("Screen Shot 2020-05-01 at 10.31.02", "Screen Shot 2020-05-01 at 10.31.02 (2)", "screen shot",
                 "Shot_20240501_103102"):
        assert caption_of(name) is None, name
    pics = tmp_path / "pygame"
    pics.mkdir()
    Image.new("P", (9, 18), 1).save(pics / "shot.gif")
    Image.new("RGB", (16, 24), (200, 200, 0)).save(pics / "bomb.png")
    r = run("data", "caption", pics)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert (pics / "shot.txt").read_text() == "shot\n"
    assert (pics / "bomb.txt").read_text() == "bomb\n"
    assert "no words" not in r.stdout + r.stderr


def test_resume_of_a_finished_whole_run_says_nothing_was_trained_and_how_to_train_on(tmp_path: Path):
    """A user converted the TGA, PCX and PNM pictures t2i named to PNG, captioned them and ran `t2i train --resume
    RUN` on the finished whole run: it said "done before" for each stage and nothing else, as if the new pictures had
    been trained on. It says nothing was trained now, and the commands that train on."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(4):
        Image.new("RGB", (20, 20), (60 * i, 200 - 40 * i, 90)).save(pics / f"pic{i}.png")
        (pics / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--sample-every", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "nothing trained" not in r.stdout
    Image.new("RGB", (20, 20), (250, 20, 20)).save(pics / "red.png")
    (pics / "red.txt").write_text("red\n")
    r = run("train", "--resume", out, "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    said = " ".join(r.stdout.split())
    assert "every stage had finished: nothing trained now" in said, said
    assert f"t2i train --resume {out}/STAGE --steps N, N over its steps (dvae 2, transformer 2, clip 2)" in said, said
    assert f"then t2i train --resume {out} to export it" in said, said
    # a stage extended on its own folder, then the whole run resumed to export it: said as such, not "to train on"
    r = run("train", "--resume", out / "transformer", "--steps", "3", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    r = run("train", "--resume", out, "--quiet")
    said = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "exported the stages' latest models (transformer.safetensors updated)" in said, said
    assert "to train on" not in said, said
    r = run("train", "--resume", out, "--quiet")  # and again: nothing new to export
    assert "to train on" in " ".join(r.stdout.split()), r.stdout


def test_a_white_sprite_on_a_transparent_background_is_said_blank_once_made_white(tmp_path: Path):
    """pygame's city.png, a white house on a transparent background (a sprite made for a dark screen), trained as a
    plain white square, unsaid (transparent pixels are made white): training and `data preview` now say it, naming
    it, and use it. A white picture without transparency, and a dark sprite on a transparent background, are not."""
    pics = tmp_path / "pics"
    pics.mkdir()
    house = Image.new("P", (24, 24), 0)
    house.putpalette([0, 0, 0, 255, 255, 255])
    house.paste(1, (4, 8, 20, 22))
    house.save(pics / "city.png", transparency=0)
    white = Image.new("RGBA", (30, 20), (255, 255, 255, 0))
    white.paste((252, 255, 253, 255), (5, 5, 25, 15))
    white.save(pics / "cloud.png")
    dark = Image.new("RGBA", (20, 20), (255, 255, 255, 0))
    dark.paste((10, 10, 10, 255), (5, 5, 15, 15))
    dark.save(pics / "ball.png")
    Image.new("RGB", (20, 20), (255, 255, 255)).save(pics / "snow.jpg")
    Image.new("RGB", (20, 20), (200, 30, 30)).save(pics / "red.gif")
    for name in ("city", "cloud", "ball", "snow", "red"):
        (pics / f"{name}.txt").write_text(f"a {name}\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    said = " ".join((r.stdout + r.stderr).split())
    assert "using 5;" in said, said  # (used, not left out)
    assert "2 pictures are blank once their transparent pixels are made white (drawn in white, for a dark " \
           f"background: each trains as a white square), e.g. {pics / 'city.png'}; save them on a dark background" \
           in said, said
    r = run("train", "--stage", "tokenizer", "--data", pics, "--out", tmp_path / "tok", "--preset", "tiny", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "2 pictures are blank once" in " ".join((r.stdout + r.stderr).split())
    (pics / "city.png").unlink()
    (pics / "cloud.png").unlink()
    r = run("data", "preview", pics, "--out", tmp_path / "sheet2.png")
    said = " ".join((r.stdout + r.stderr).split())
    assert "using 3;" not in said and "using 3" in said and "blank" not in said, said


def test_a_tga_is_said_left_out_of_a_folder_not_unreadable_and_an_svg_given_to_vary_is_named(tmp_path: Path,
                                                                                             tiny_weights: Path):
    """pygame's yellow.tga: `t2i data caption` and training said "t2i cannot read TGA" of a file `t2i vary` had just
    read (Pillow reads TGA, PCX, PNM, XPM, ICO, ICNS and PSD; a folder's are left out). Such a format is now said left
    out of a folder; one Pillow cannot read (SVG, HEIC) is still "cannot read", and an SVG given to vary says so in
    its one line (it was Pillow's "cannot identify image file")."""
    pics = tmp_path / "pygame"
    pics.mkdir()
    Image.new("RGB", (32, 32), (250, 250, 0)).save(pics / "yellow.tga")
    (pics / "teal.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
                                   '<rect width="32" height="32" fill="teal"/></svg>\n')
    Image.new("RGB", (32, 32), (200, 0, 0)).save(pics / "red.png")
    r = run("data", "caption", pics)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said
    assert f"1 TGA picture (t2i does not read TGA from a folder: convert to JPEG or PNG) not captioned, e.g. " \
           f"{pics / 'yellow.tga'}" in said, said
    assert "1 SVG picture (t2i cannot read SVG: convert to JPEG or PNG)" in said, said
    r = run("vary", pics / "yellow.tga", "--weights", tiny_weights, "--n", "1", "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)  # (it does read a TGA given by its path)
    r = run("vary", pics / "teal.svg", "--weights", tiny_weights, "--n", "1", "--out", tmp_path / "out")
    assert r.exit_code != 0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert lines == [f"error: cannot read image {pics / 'teal.svg'}: SVG picture (t2i cannot read SVG: convert to "
                     f"JPEG or PNG)"], lines
