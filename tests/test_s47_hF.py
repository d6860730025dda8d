"""Session 47, hF: a user's journey on a new set of real pictures (Qt's Fluent widget skins, Matplotlib's toolbar
icons and sample pictures, Sphinx's theme images, Gmsh's documentation figures: bench/make_widgets_folder.py) and on
the odd files a user's folder holds: defects found on the way, each with a test that fails without its fix."""

from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run

LFS = ("version https://git-lfs.github.com/spec/v1\n"
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
HTML = '<!DOCTYPE html>\n<html><head><title>bird</title></head><body><img src="bird.jpg"></body></html>\n'


def test_a_git_lfs_pointer_or_a_web_page_under_a_pictures_name_is_said_as_such(tmp_path: Path):
    """A dataset repository cloned without git-lfs holds ~130-byte pointer files in place of its pictures, and a
    browser's "save" of the page a picture was on writes HTML under the picture's name: training and `data preview`
    counted them as "unreadable images", and `vary` / `--image` said "cannot identify image file '...'" (the path
    twice) and "give a complete PNG, ...": neither what the file is nor how to get the picture. Each is now named
    as what it is, with what to do; a file that is neither is still an unreadable image."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("red-bird", "blue-fish"):
        (pics / f"{name}.png").write_text(LFS)
    (pics / "web-bird.jpg").write_text("\ufeff  " + HTML.lower())  # (a byte-order mark and spaces before it)
    (pics / "notes.png").write_text("not a picture at all\n")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(pics / "red.png")
    for name in ("red-bird", "blue-fish", "web-bird", "notes", "red"):
        (pics / f"{name}.txt").write_text(f"a {name}\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    said = " ".join((r.stdout + r.stderr).split())
    assert ("skipped 4 items (2 Git LFS pointer files in place of a picture (fetch the pictures: git lfs pull), "
            f"e.g. {pics / 'blue-fish.png'}; 1 HTML file saved under a picture's name (a web page: save the picture "
            f"itself): {pics / 'web-bird.jpg'}; 1 unreadable image: {pics / 'notes.png'}); using 1") in said, said
    line = one_line_failure(run("vary", pics / "red-bird.png"))
    assert line == (f"error: image {pics / 'red-bird.png'} is a Git LFS pointer, not the picture (its repository was "
                    "cloned without its large files): run `git lfs pull` there, or give the picture itself"), line
    line = one_line_failure(run("generate", "a bird", "--image", pics / "web-bird.jpg"))
    assert line == (f"error: image {pics / 'web-bird.jpg'} is a web page (HTML), not a picture: open it in a "
                    "browser and save the picture itself, or give another picture"), line
    line = one_line_failure(run("vary", pics / "notes.png"))  # (neither: said once, without Pillow's words)
    assert line == (f"error: cannot read image {pics / 'notes.png'}: its first bytes are no picture format Pillow "
                    "knows (a damaged file, or not a picture); give a complete PNG, JPEG, WebP, BMP, GIF, TIFF or "
                    "AVIF file"), line
    # `t2i data caption` names each as what it is too (it left them "unreadable image")
    uncaptioned = tmp_path / "uncaptioned"
    uncaptioned.mkdir()
    (uncaptioned / "green-tree.png").write_text(LFS)
    r = run("data", "caption", uncaptioned)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code != 0 and "Git LFS pointer file in place of a picture" in said, said
    assert not (uncaptioned / "green-tree.txt").exists()


def test_a_wholly_transparent_picture_is_said_apart_from_one_drawn_in_white(tmp_path: Path):
    """Qt's Fluent widget skins hold 73 pictures with no pixel drawn (a disabled state's background, like a spacer
    GIF): training and `data preview` said them "drawn in white, for a dark background ... save them on a dark
    background", which shows nothing there either. They are counted apart, told to be moved out, and still used;
    a white sprite on a transparent background is still said as before."""
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGBA", (24, 24), (255, 255, 255, 0)).save(pics / "skin-disabled.png")
    spacer = Image.new("P", (1, 1), 0)
    spacer.putpalette([0, 0, 0, 255, 255, 255])
    spacer.save(pics / "spacer.gif", transparency=0)
    house = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    house.paste((255, 255, 255, 255), (4, 8, 20, 22))
    house.save(pics / "city.png")
    Image.new("RGB", (20, 20), (200, 30, 30)).save(pics / "red.png")
    for name in ("skin-disabled", "spacer", "city", "red"):
        (pics / f"{name}.txt").write_text(f"a {name}\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    said = " ".join((r.stdout + r.stderr).split())
    assert "using 4;" in said, said  # (used, not left out)
    assert ("1 picture is blank once its transparent pixels are made white (drawn in white, for a dark background: "
            f"each trains as a white square): {pics / 'city.png'}; save it on a dark background; 2 pictures are "
            "wholly transparent (nothing drawn: each trains as a white square), e.g. "
            f"{pics / 'skin-disabled.png'}; move them out of the folder") in said, said


def test_from_a_t2i_picture_saved_again_without_its_text_says_the_text_may_have_been_dropped(tmp_path: Path,
                                                                                          tiny_weights: Path):
    """A picture t2i drew, cropped or converted by an editor (which drops a PNG's text chunks), given to `--from`
    was said "not written by `t2i generate` or `t2i vary`", which its user knows to be false: the line says the
    other way a PNG loses its settings."""
    r = run("generate", "a red bird", "--n", "1", "--weights", tiny_weights, "--out", tmp_path / "out", "--seed", "0")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    drawn = tmp_path / "out" / "a-red-bird-000.png"
    with Image.open(drawn) as im:
        assert "t2i" in im.text
        Image.frombytes("RGB", im.size, im.convert("RGB").tobytes()).save(tmp_path / "edited.png")
    line = one_line_failure(run("generate", "--from", tmp_path / "edited.png", "--weights", tiny_weights,
                                "--out", tmp_path / "again"))
    assert line == (f"error: {tmp_path / 'edited.png'} carries no t2i settings (it was not written by `t2i generate` "
                    "or `t2i vary`, or was saved again by a program that drops a PNG's text, as most editors and "
                    "converters do); --from needs one of their PNGs as they wrote it"), line


def test_an_archive_or_one_picture_given_as_the_data_source_is_said_with_what_to_give(tmp_path: Path):
    """A Kaggle or Hugging Face download is a .zip, and a user gives it (or one picture of the folder) to `--data`:
    both were "cannot use X as a data source; give a folder of ...". An archive is named with the command that
    unpacks it (its path quoted for the shell), a picture with its folder; another file keeps the line."""
    pics = tmp_path / "my pics"
    pics.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(pics / "red.png")
    (pics / "red.txt").write_text("a red square\n")
    archive = tmp_path / "My Pics.ZIP"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # (an empty zip: not opened)
    tarball = tmp_path / "pics.tar.gz"
    tarball.write_bytes(b"\x1f\x8b")
    line = one_line_failure(run("data", "preview", archive, "--out", tmp_path / "sheet.png"))
    assert line == (f"error: {archive} is an archive (.zip), and t2i reads a folder: unpack it (unzip '{archive}' -d "
                    f"'{tmp_path / 'My Pics'}') and give '{tmp_path / 'My Pics'}'"), line
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", tarball, "--out", tmp_path / "run"))
    unpacked = tmp_path / "pics"
    assert line == (f"error: {tarball} is an archive (.tar.gz), and t2i reads a folder: unpack it (mkdir "
                    f"{unpacked} && tar xf {tarball} -C {unpacked}) and give {unpacked}"), line
    line = one_line_failure(run("data", "preview", pics / "red.png", "--out", tmp_path / "sheet.png"))
    assert line == (f"error: {pics / 'red.png'} is one picture, and a data source is a folder of pictures with their "
                    f"captions: give its folder, '{pics}'"), line
    line = one_line_failure(run("data", "preview", pics / "red.txt", "--out", tmp_path / "sheet.png"))
    assert line.startswith(f"error: cannot use {pics / 'red.txt'} as a data source; give a folder"), line
    assert not (tmp_path / "run").exists() and not (tmp_path / "sheet.png").exists()


def test_a_folder_holding_only_an_archive_says_to_unpack_it(tmp_path: Path):
    """A folder a dataset was downloaded into, its .zip not unpacked: "no usable image-caption pairs ...; add some".
    The refusal names the archive and the command that unpacks it; a folder without one keeps its line."""
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "b-pictures.tar.gz").write_bytes(b"\x1f\x8b")
    (folder / "a-pictures.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", folder, "--out", tmp_path / "run"))
    assert line.endswith(f"under {folder}; it holds an archive: unpack it (unzip {folder / 'a-pictures.zip'} -d "
                         f"{folder / 'a-pictures'}) and give {folder / 'a-pictures'}"), line
    for archive in folder.iterdir():
        archive.unlink()
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", folder, "--out", tmp_path / "run"))
    assert line.endswith("; add some, or use the procedural world (world) as the source"), line


def test_a_kohya_caption_file_beside_a_picture_is_named_with_the_rename_it_needs(tmp_path: Path):
    """kohya-ss's sd-scripts write a picture's caption as PIC.caption (its captioning's default extension): such a
    folder was "no usable image-caption pairs ... 3 images without .txt caption; to caption them by their names: t2i
    data caption ...", which would have captioned them "ac adapter" beside their real captions. Each is named as a
    .caption file to rename, with a command that renames them without replacing a .txt; a picture with neither is
    still one without a caption, and `t2i data caption` leaves the pictures with a .caption file alone."""
    folder = tmp_path / "train" / "10_bird"
    folder.mkdir(parents=True)
    for i, name in enumerate(("blue-jay", "red-robin")):
        Image.new("RGB", (16, 16), (40 * i, 80, 200)).save(folder / f"{name}.png")
        (folder / f"{name}.caption").write_text(f"a photo of a {name.replace('-', ' ')}, sks bird\n")
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", tmp_path / "train", "--out", tmp_path / "r"))
    assert (f"(found only: 2 images whose caption is a .caption file (kohya-ss's extension: name it PIC.txt), e.g. "
            f"{folder / 'blue-jay.caption'}); to rename each PIC.caption to PIC.txt: find {tmp_path / 'train'} -iname "
            """'*.caption' -exec sh -c 'mv -n "$1" "${1%.*}.txt"' _ {} \\;""") in line, line
    assert "t2i data caption" not in line, line
    r = run("data", "caption", tmp_path / "train")
    assert r.exit_code == 0 and not list(folder.glob("*.txt")), (r.stdout, r.stderr)
    Image.new("RGB", (16, 16), (9, 9, 9)).save(folder / "crow.png")
    (folder / "robin.txt").write_text("a robin\n")
    Image.new("RGB", (16, 16), (200, 9, 9)).save(folder / "robin.png")
    r = run("data", "preview", tmp_path / "train", "--out", tmp_path / "sheet.png")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0 and "using 1;" in said, said
    assert ("2 images whose caption is a .caption file (kohya-ss's extension: name it PIC.txt), e.g. "
            f"{folder / 'blue-jay.caption'}; 1 image without .txt caption: {folder / 'crow.png'}") in said, said


def test_an_svg_drawing_saved_under_a_png_name_is_said_as_svg(tmp_path: Path):
    """An icon site's "Download PNG" that is its SVG (`<?xml ...?><svg ...>` in icon.png) was an "unreadable image"
    in a folder and "cannot identify image file" to `vary`: it is said as the SVG it is, counted with the folder's
    .svg files; a .svg file keeps its own line."""
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "icon.png").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                                   'width="8" height="8"><rect width="8" height="8" fill="red"/></svg>\n')
    (pics / "icon.txt").write_text("a red icon\n")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(pics / "red.png")
    (pics / "red.txt").write_text("a red square\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said
    assert f"skipped 1 item (1 SVG picture (t2i cannot read SVG: convert to JPEG or PNG): {pics / 'icon.png'}); " \
           "using 1" in said, said
    line = one_line_failure(run("vary", pics / "icon.png"))
    assert line == (f"error: cannot read image {pics / 'icon.png'}: it is an SVG drawing under another name; t2i "
                    "cannot read SVG: convert it to PNG (e.g. rsvg-convert, Inkscape) or give another picture"), line
    (pics / "real.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n')
    line = one_line_failure(run("vary", pics / "real.svg"))
    assert line == (f"error: cannot read image {pics / 'real.svg'}: SVG picture (t2i cannot read SVG: convert to JPEG "
                    "or PNG)"), line


def test_a_heic_photo_renamed_jpg_is_said_as_heic(tmp_path: Path):
    """An iPhone's HEIC photo renamed IMG_0001.jpg (some transfer tools and users do) was an "unreadable image" in a
    folder and "cannot identify image file" to `vary`: it is said as the HEIC photo it is (its ISO-BMFF brand), with
    the conversion it needs; an AVIF, of the same container, is still read."""
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "IMG_0001.jpg").write_bytes((24).to_bytes(4, "big") + b"ftypheic" + bytes(4) + b"mif1heic" + bytes(200))
    (pics / "IMG_0001.txt").write_text("a beach\n")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(pics / "red.avif")
    (pics / "red.txt").write_text("a red square\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said
    assert ("skipped 1 item (1 HEIC picture (t2i cannot read HEIC: convert to JPEG or PNG): "
            f"{pics / 'IMG_0001.jpg'}); using 1") in said, said
    line = one_line_failure(run("vary", pics / "IMG_0001.jpg"))
    assert line == (f"error: cannot read image {pics / 'IMG_0001.jpg'}: it is a HEIC photo (an iPhone's) under another "
                    "name; t2i cannot read HEIC: convert it to JPEG (e.g. heif-convert, or Preview's Export) or give "
                    "another picture"), line


def test_pictures_and_captions_in_folders_side_by_side_are_said_so_not_sent_to_data_caption(tmp_path: Path):
    """A dataset of images/x.png beside captions/x.txt: each caption was "without image", each picture "without .txt
    caption", and the refusal suggested `t2i data caption`, which would have captioned the pictures by their names
    beside their own captions. It says where their captions are and to move them; it still suggests `t2i data
    caption` where a picture has no caption anywhere."""
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    (ds / "captions").mkdir()
    for i, name in enumerate(("red-bird", "blue-fish")):
        Image.new("RGB", (16, 16), (100 * i, 30, 30)).save(ds / "images" / f"{name}.png")
        (ds / "captions" / f"{name}.txt").write_text(f"a {name.replace('-', ' ')}\n")
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", ds, "--out", tmp_path / "run"))
    assert line.endswith(f"; 2 pictures without a caption have a NAME.txt in another folder, e.g. "
                         f"{ds / 'images' / 'blue-fish.png'} ({ds / 'captions' / 'blue-fish.txt'}): t2i reads a "
                         "picture's caption beside it, so move each caption next to its picture (or write a "
                         "metadata.jsonl of both paths)"), line
    assert "t2i data caption" not in line, line
    Image.new("RGB", (16, 16), (9, 9, 9)).save(ds / "images" / "green-tree.png")
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", ds, "--out", tmp_path / "run"))
    assert "2 pictures without a caption have a NAME.txt in another folder" in line, line
    assert f"to caption them by their names: t2i data caption {ds}" in line, line
