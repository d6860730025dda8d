"""Session 47, hM: a review of hF's data-side messages (Git LFS pointers, web pages, SVG and HEIC under a picture's
name, wholly transparent pictures, archives, kohya-ss captions, captions in a folder beside the pictures'): each
mend with a test that fails without it."""

import struct
import zlib
from pathlib import Path

from PIL import Image

from conftest import run


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
    (ds / "images" / "green-tree.txt").unlink()
    (ds / "images" / "green-tree.png").unlink()
    r = run("data", "caption", ds)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code != 0 and said.startswith(f"error: no caption to write under {ds}: 2 pictures whose NAME.txt "
                                                "sits in another folder"), said
    assert not list((ds / "images").glob("*.txt")), said
