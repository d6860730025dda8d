"""Session 47, hM: a review of hF's data-side messages (Git LFS pointers, web pages, SVG and HEIC under a picture's
name, wholly transparent pictures, archives, kohya-ss captions, captions in a folder beside the pictures'): each
mend with a test that fails without it."""

import shutil
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run


def _png(path: Path, width: int, depth: int, colour: int, row: bytes, trns: bytes) -> None:
    """A PNG of width x 4 pixels, each row `row` (its filter byte added), with a tRNS chunk: written chunk by chunk,
    as Pillow does not save a 16-bit RGB or a 2-bit grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, 4, depth, colour, 0, 0, 0))
                     + chunk(b"tRNS", trns) + chunk(b"IDAT", zlib.compress((b"\0" + row) * 4)) + chunk(b"IEND", b""))


def test_a_wholly_transparent_16_bit_or_2_bit_png_is_said_wholly_transparent(tmp_path: Path):
    """hF's wholly-transparent check read transparency with Pillow's convert("RGBA"), which does not apply a 16-bit
    grey PNG's transparent level, a 16-bit RGB PNG's transparent colour or a 2-bit grey PNG's level (t2i's own
    to_rgb does, as the README says): such a picture with every pixel transparent was told "drawn in white, for a
    dark background ... save it on a dark background". It is read as to_rgb reads it now; a white house on a
    transparent background is still "drawn in white"."""
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("I;16", (8, 8), 1000).save(pics / "grey16.png", transparency=1000)
    _png(pics / "rgb16.png", 4, 16, 2, bytes([0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC]) * 4,
         bytes([0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC]))
    _png(pics / "grey2.png", 4, 2, 0, bytes([0b10101010]), b"\x00\x02")
    house = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    house.paste((255, 255, 255, 255), (4, 8, 20, 22))
    house.save(pics / "house.png")
    Image.new("RGB", (20, 20), (200, 30, 30)).save(pics / "red.png")
    for name in ("grey16", "rgb16", "grey2", "house", "red"):
        (pics / f"{name}.txt").write_text(f"a {name}\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0 and "using 5;" in said, said
    assert ("1 picture is blank once its transparent pixels are made white (drawn in white, for a dark background: "
            f"each trains as a white square): {pics / 'house.png'}; save it on a dark background; 3 pictures are "
            f"wholly transparent (nothing drawn: each trains as a white square), e.g. {pics / 'grey16.png'}; move "
            "them out of the folder") in said, said


def test_data_caption_leaves_a_picture_whose_caption_sits_in_another_folder_without_one(tmp_path: Path):
    """images/x.png beside captions/x.txt: training's refusal says to move each caption beside its picture, and,
    where another picture has no caption anywhere, to run `t2i data caption` for it, which captioned every one of
    them by its name (images/red-bird.txt "red bird" beside its real captions/red-bird.txt, which then never
    trained). It writes the caption of the picture without one alone, and names the others with what to do; where
    every picture has its caption in another folder, it writes nothing and says so in one line."""
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    (ds / "captions").mkdir()
    for i, name in enumerate(("red-bird", "blue-fish", "green-tree")):
        Image.new("RGB", (16, 16), (90 * i, 30, 30)).save(ds / "images" / f"{name}.png")
    for name in ("red-bird", "blue-fish"):
        (ds / "captions" / f"{name}.txt").write_text(f"a real caption of {name}\n")
    r = run("data", "caption", ds)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said
    assert sorted(p.name for p in (ds / "images").glob("*.txt")) == ["green-tree.txt"], said
    assert ("2 pictures whose NAME.txt sits in another folder left without a caption, e.g. "
            f"{ds / 'images' / 'blue-fish.png'} ({ds / 'captions' / 'blue-fish.txt'}): training reads a picture's "
            "caption beside it, so move each caption next to its picture") in said, said
    r = run("data", "caption", ds)  # (run again: green-tree.txt is there, and nothing is left to write)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0 and (f"nothing to write: every picture under {ds} has a caption or a NAME.txt in another "
                                 "folder (warned above)") in said, said
    (ds / "images" / "green-tree.txt").unlink()
    (ds / "images" / "green-tree.png").unlink()
    r = run("data", "caption", ds)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code != 0 and said.startswith(f"error: no caption to write under {ds}: 2 pictures whose NAME.txt "
                                                "sits in another folder"), said
    assert not list((ds / "images").glob("*.txt")), said


@pytest.mark.skipif(shutil.which("tar") is None, reason="runs the tar command t2i suggests")
def test_an_archive_is_unpacked_by_the_command_said_into_a_folder_of_its_own(tmp_path: Path):
    """An archive given as the data source was said with `tar xf ARCHIVE` and "give the folder it makes": run where
    the user stood, it unpacked the archive's files into that folder, replacing a file there of a name the archive
    holds (GNU tar does, unasked), and an archive of loose pictures makes no folder. The command said now unpacks
    it into a new folder beside it, named after it, and that folder is the one to give: run as said, from another
    folder, it leaves that folder's files alone, and the folder it names trains."""
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(loose / "red.png")
    (loose / "red.txt").write_text("a red square\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with tarfile.open(downloads / "my pics.tar.gz", "w:gz") as tar:  # (its pictures loose, at its top)
        for name in ("red.png", "red.txt"):
            tar.add(loose / name, arcname=name)
    unpacked = downloads / "my pics"
    line = one_line_failure(run("data", "preview", downloads / "my pics.tar.gz", "--out", tmp_path / "sheet.png"))
    assert line == (f"error: {downloads / 'my pics.tar.gz'} is an archive (.tar.gz), and t2i reads a folder: unpack it "
                    f"(mkdir '{unpacked}' && tar xf '{downloads / 'my pics.tar.gz'}' -C '{unpacked}') and give "
                    f"'{unpacked}'"), line
    here = tmp_path / "home"
    here.mkdir()
    (here / "red.txt").write_text("my own notes\n")
    command = line.split("unpack it (", 1)[1].rsplit(") and give ", 1)[0]
    subprocess.run(["sh", "-c", command], cwd=here, check=True)
    assert (here / "red.txt").read_text() == "my own notes\n" and sorted(p.name for p in here.iterdir()) == ["red.txt"]
    r = run("data", "preview", unpacked, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0 and (tmp_path / "sheet.png").exists(), (r.stdout, r.stderr)
    folder = tmp_path / "download"  # (a folder holding only a .zip: the folder beside it, in that folder)
    folder.mkdir()
    (folder / "a-pictures.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", folder, "--out", tmp_path / "run"))
    assert line.endswith(f"under {folder}; it holds an archive: unpack it (unzip {folder / 'a-pictures.zip'} -d "
                         f"{folder / 'a-pictures'}) and give {folder / 'a-pictures'}"), line


def test_a_heic_photo_of_heifs_general_brand_renamed_jpg_is_said_as_heic(tmp_path: Path):
    """A HEIC photo whose ftyp box names HEIF's general brand first (`mif1`, with `heic` among its compatible
    brands, as ISO/IEC 23008-12 allows and some writers do) renamed .jpg was an "unreadable image" (hF's check read
    the major brand alone): it is said as HEIC; a damaged AVIF of the same brand (`mif1` with `avif`) is not."""
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "IMG_0002.jpg").write_bytes((24).to_bytes(4, "big") + b"ftypmif1" + bytes(4) + b"mif1heic" + bytes(200))
    (pics / "web.jpg").write_bytes((28).to_bytes(4, "big") + b"ftypmif1" + bytes(4) + b"mif1avifmiaf" + bytes(200))
    Image.new("RGB", (16, 16), (200, 30, 30)).save(pics / "red.png")
    for name in ("IMG_0002", "web", "red"):
        (pics / f"{name}.txt").write_text(f"a {name}\n")
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said
    assert ("skipped 2 items (1 HEIC picture (t2i cannot read HEIC: convert to JPEG or PNG): "
            f"{pics / 'IMG_0002.jpg'}; 1 unreadable image: {pics / 'web.jpg'}); using 1") in said, said
    line = one_line_failure(run("vary", pics / "IMG_0002.jpg"))
    assert line.startswith(f"error: cannot read image {pics / 'IMG_0002.jpg'}: it is a HEIC photo"), line


def test_an_xhtml_page_with_an_inline_svg_icon_is_said_a_web_page_not_an_svg_drawing(tmp_path: Path):
    """A saved XHTML page (`<?xml ...?>` before its `<!DOCTYPE html ...><html>`) with an inline SVG icon in its
    first kilobyte, under a picture's name, was said "an SVG drawing under another name ... convert it to PNG"
    (hF's check looked for `<svg` before `<html` anywhere): it is said a web page; an SVG drawing with a DOCTYPE
    and a comment before its `<svg` is still said SVG."""
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "bird.png").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
        '<title>bird</title></head><body><a href="/"><svg width="16" height="16"><path d="M0 0h16v16z"/></svg></a>'
        '<img src="bird.jpg"/></body></html>\n')
    (pics / "icon.png").write_text(
        '<?xml version="1.0"?>\n<!-- Generator: Adobe Illustrator 24.0.0 -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD '
        'SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg width="8" height="8"/>\n')
    line = one_line_failure(run("vary", pics / "bird.png"))
    assert line == (f"error: image {pics / 'bird.png'} is a web page (HTML), not a picture: open it in a browser and "
                    "save the picture itself, or give another picture"), line
    line = one_line_failure(run("vary", pics / "icon.png"))
    assert line.startswith(f"error: cannot read image {pics / 'icon.png'}: it is an SVG drawing"), line


def test_from_a_png_whose_t2i_settings_are_damaged_is_not_said_to_have_lost_them(tmp_path: Path):
    """hF's line for a PNG without t2i's settings ("... or was saved again by a program that drops a PNG's text")
    was said of one whose `t2i` text is there but not JSON too (the same except clause): its text was not dropped.
    It is said as settings not in JSON, as one of other JSON is; a PNG without the text keeps hF's line."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("t2i", '{"prompt": "a red bird", "seed": ')
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "cut.png", pnginfo=info)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "plain.png")
    line = one_line_failure(run("generate", "--from", tmp_path / "cut.png", "--out", tmp_path / "out"))
    assert line == f"error: {tmp_path / 'cut.png'}: its t2i settings are not a JSON object of strings; was it edited?"
    line = one_line_failure(run("generate", "--from", tmp_path / "plain.png", "--out", tmp_path / "out"))
    assert "or was saved again by a program that drops a PNG's text" in line, line
    assert not (tmp_path / "out").exists()


def test_an_object_detectors_label_files_beside_the_pictures_folder_are_not_said_captions_to_move(tmp_path: Path):
    """A YOLO dataset (Roboflow's, Kaggle's) holds images/x.jpg beside labels/x.txt, each line a box's class and
    coordinates: hF's check of captions in another folder said them "a NAME.txt in another folder ... move each
    caption next to its picture", which would train on `0 0.51 0.43 0.22 0.31` as a caption. Files of numbers alone
    are not taken for captions (the folder is refused as one without captions, as before); a caption in words in
    captions/ beside images/ still is."""
    ds = tmp_path / "ds"
    (ds / "train" / "images").mkdir(parents=True)
    (ds / "train" / "labels").mkdir()
    for i, name in enumerate(("0001", "0002", "0003")):
        Image.new("RGB", (16, 16), (90 * i, 30, 30)).save(ds / "train" / "images" / f"{name}.jpg")
        (ds / "train" / "labels" / f"{name}.txt").write_text("0 0.51 0.43 0.22 0.31\n1 0.2 0.7 0.1 0.15\n" * i)
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", ds, "--out", tmp_path / "run"))
    assert "another folder" not in line and "move each caption" not in line, line
    assert "3 images without .txt caption" in line and "3 .txt captions without image" in line, line
    (ds / "train" / "labels" / "0002.txt").write_text("a red car on a road\n")
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", ds, "--out", tmp_path / "run"))
    assert line.endswith(f"; 1 picture without a caption has a NAME.txt in another folder, e.g. "
                         f"{ds / 'train' / 'images' / '0002.jpg'} ({ds / 'train' / 'labels' / '0002.txt'}): t2i "
                         "reads a picture's caption beside it, so move each caption next to its picture (or write a "
                         "metadata.jsonl of both paths)"), line


def test_a_picture_cut_inside_its_header_is_said_cut_short_not_no_picture_format(tmp_path: Path):
    """A PNG cut inside its first bytes (a download stopped at once) or whose header is damaged, given to `vary`,
    was said "its first bytes are no picture format Pillow knows (a damaged file, or not a picture)" since hF's
    change, where its first bytes are a PNG's: it is said to begin as one and to be damaged or cut short. A file
    that begins as no picture keeps hF's line."""
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:30])
    (tmp_path / "notes.png").write_text("not a picture at all\n")
    line = one_line_failure(run("vary", tmp_path / "cut.png"))
    assert line == (f"error: cannot read image {tmp_path / 'cut.png'}: it begins as a PNG file, but Pillow cannot "
                    "read its header (a damaged or cut-short file); give a complete PNG, JPEG, WebP, BMP, GIF, TIFF "
                    "or AVIF file"), line
    line = one_line_failure(run("vary", tmp_path / "notes.png"))
    assert "its first bytes are no picture format Pillow knows" in line, line
