"""Picture reading and evaluation leftovers of the s42 mutation audit (helper hL): a 16-bit RGB PNG's transparent
colour and a 2- or 4-bit grey PNG's transparent level, evaluate_model's checks of its tasks, and a label of exactly two
lines."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from t2i_cli import images

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_rgb16(path: Path, pixels: np.ndarray, key: tuple[int, int, int] | None, interlaced: bool = False,
              orientation: int = 1) -> Path:
    """A 16-bit RGB PNG of pixels (h, w, 3) with the transparent colour key (tRNS), written chunk by chunk (Pillow
    saves no 16-bit RGB); interlaced: Adam7, each pass's rows unfiltered."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = pixels.shape
    passes = [pixels[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7] if interlaced else [pixels]
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for p in passes if p.size for row in p)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, int(interlaced)))
    if key is not None:
        data += chunk(b"tRNS", struct.pack(">HHH", *key))
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        data += chunk(b"eXIf", exif.tobytes())
    path.write_bytes(data + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def keyed_pixels(h: int = 4, w: int = 4) -> np.ndarray:
    a = np.full((h, w, 3), 30000, np.uint16)
    a[0, 0] = 4096  # the transparent colour
    a[h - 1, w - 1] = 0  # black (4096's low bytes)
    a[1, 1] = (4097, 4096, 4096)  # the same high bytes as the colour, another colour at 16 bits
    return a


# ----------------------------------------------------------------------------- 16-bit RGB PNG with tRNS
@pytest.mark.parametrize("interlaced", [False, True])
def test_a_16_bit_rgb_pngs_transparent_colour_is_the_background_and_black_stays_black(tmp_path, interlaced):
    """Pillow reads a 16-bit RGB PNG's high bytes and keeps its transparent colour (tRNS) in 16-bit values, which
    marked pixels by their low bytes: the colour (4096, 4096, 4096) read as dark grey (16) and pure black as the
    white background. The colour is compared at 16 bits: a pixel of its high bytes but another low byte shows."""
    p = png_rgb16(tmp_path / "rgb16.png", keyed_pixels(), (4096, 4096, 4096), interlaced)
    with Image.open(p) as im:
        assert im.mode == "RGB" and im.info["transparency"] == (4096, 4096, 4096)
        got = np.asarray(images.to_rgb(im))
    assert got[0, 0].tolist() == [255, 255, 255]  # the transparent colour: the background
    assert got[3, 3].tolist() == [0, 0, 0]  # black
    assert got[1, 1].tolist() == [16, 16, 16]  # 4097: not the colour
    assert (got[2, :3] == 117).all()  # 30000 of 65535 (Pillow's high byte)
    assert np.asarray(images.load_rgb(p, 4)).tolist() == got.tolist()
    with Image.open(p) as im:  # on black, as a mask reads it
        assert np.asarray(images.to_rgb(im, background=(0, 0, 0)))[0, 0].tolist() == [0, 0, 0]
    light = np.zeros((4, 4, 3), np.uint16)
    light[0, 0], light[3, 3] = 60000, 60001  # a light transparent colour: a mask's black, not a light stroke
    mask = png_rgb16(tmp_path / "mask.png", light, (60000, 60000, 60000), interlaced)
    assert images.load_mask_cells(mask, 4).nonzero().tolist() == [[3, 3]]


def test_a_large_16_bit_rgb_pngs_transparent_colour_is_the_background_made_a_band_at_a_time(tmp_path):
    """A picture of more than a band of pixels is made RGB a band of rows at a time (square_rgb): the bands, no
    file's pictures, kept the colour in its 16-bit values."""
    big = np.full((1000, 1100, 3), 30000, np.uint16)  # wider than tall: resized across a band at a time
    big[:, :300] = 4096
    big[:, -300:] = 0
    big[:, 300:700] = (4097, 4096, 4096)  # the colour's high bytes: shown (4097 is not the colour)
    p = png_rgb16(tmp_path / "big.png", big, (4096, 4096, 4096))
    tall = png_rgb16(tmp_path / "tall.png", np.ascontiguousarray(big.transpose(1, 0, 2)), (4096, 4096, 4096))
    for path in (p, tall):
        with Image.open(path) as im:
            whole = np.asarray(images.square(images.to_rgb(im), 16))
        with Image.open(path) as im:
            banded = np.asarray(images.square_rgb(im, 16))
        assert banded.tolist() == whole.tolist()
        assert np.asarray(images.load_rgb(path, 16)).tolist() == whole.tolist()
    assert np.asarray(images.load_rgb(p, 16))[8, 0].tolist() == [255, 255, 255]  # the colour: white
    assert np.asarray(images.load_rgb(p, 16))[8, 15].tolist() == [0, 0, 0]  # black stays black
    assert np.asarray(images.load_rgb(p, 16))[8, 7].max() < 64  # 4097 shows (dark grey, not the white background)
    assert np.asarray(images.load_rgb(tall, 16))[0, 8].tolist() == [255, 255, 255]


def test_a_16_bit_rgb_png_in_memory_is_keyed_by_its_high_bytes(tmp_path):
    """A picture opened from bytes has no file to read its low bytes again from: a colour above 255 can only be
    a 16-bit one, compared by its high bytes (black is not it)."""
    p = png_rgb16(tmp_path / "rgb16.png", keyed_pixels(), (4096, 4096, 4096))
    with Image.open(io.BytesIO(p.read_bytes())) as im:
        got = np.asarray(images.to_rgb(im))
    assert got[0, 0].tolist() == [255, 255, 255] and got[3, 3].tolist() == [0, 0, 0]


def test_a_turned_16_bit_rgb_png_keeps_its_transparent_colour_and_its_turn(tmp_path):
    """A photo's EXIF orientation turns the picture made transparent where its colour is (not the file's)."""
    upright = png_rgb16(tmp_path / "up.png", keyed_pixels(), (4096, 4096, 4096))
    turned = png_rgb16(tmp_path / "turned.png", keyed_pixels(), (4096, 4096, 4096), orientation=6)
    want = images.load_rgb(upright, 4).transpose(Image.Transpose.ROTATE_270)
    assert np.asarray(images.load_rgb(turned, 4)).tolist() == np.asarray(want).tolist()
    assert np.asarray(want)[0, 3].tolist() == [255, 255, 255]


def png_grey(path: Path, levels: np.ndarray, bits: int, key: int) -> Path:
    """A grey PNG of levels (h, w) at 2 or 4 bits a pixel with the transparent level key (tRNS)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = levels.shape
    per = 8 // bits
    padded = np.zeros((h, -(-w // per) * per), np.uint8)
    padded[:, :w] = levels
    packed = sum(padded[:, k::per] << (8 - bits * (k + 1)) for k in range(per)).astype(np.uint8)
    raw = b"".join(b"\0" + row.tobytes() for row in packed)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, 0, 0, 0, 0))
    path.write_bytes(data + chunk(b"tRNS", struct.pack(">H", key)) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("bits", [2, 4])
def test_a_2_or_4_bit_grey_pngs_transparent_level_is_the_background(tmp_path, bits):
    """Pillow reads a 2- or 4-bit grey PNG's levels scaled to 0..255 and keeps its transparent level (tRNS) in
    the file's levels: the level's pixels showed (2 of 2 bits as 170), and pixels of 8-bit value 2 would have been
    transparent. Small and large (made RGB a band at a time) alike."""
    top = (1 << bits) - 1
    key = top - 1  # 170 at 2 bits, 238 at 4
    small = np.array([[0, 1, key, top]] * 4, np.uint8)
    p = png_grey(tmp_path / "grey.png", small, bits, key)
    with Image.open(p) as im:
        assert im.mode == "L" and im.info["transparency"] == key
        got = np.asarray(images.to_rgb(im))[0, :, 0].tolist()
    assert got == [0, 255 // top, 255, 255]  # the transparent level: white
    big = np.zeros((1000, 1100), np.uint8)
    big[:, :500] = key
    bp = png_grey(tmp_path / "big.png", big, bits, key)
    with Image.open(bp) as im:
        whole = np.asarray(images.square(images.to_rgb(im), 16))
    with Image.open(bp) as im:
        assert np.asarray(images.square_rgb(im, 16)).tolist() == whole.tolist()
    assert np.asarray(images.load_rgb(bp, 16)).tolist() == whole.tolist()
    assert whole[8, 0].tolist() == [255, 255, 255] and whole[8, 15].tolist() == [0, 0, 0]


# ----------------------------------------------------------------------------- evaluate_model's tasks
class NoDrawing:
    """A pipeline that must not be asked to draw: evaluate_model refuses its arguments first."""

    def request(self, *a, **k):
        raise AssertionError("drew before refusing the tasks")

    draw_each = rerank = __call__ = request


def test_evaluate_model_refuses_a_string_of_tasks_and_an_unknown_task_before_drawing():
    """tasks="single_object" was its letters (KeyError: 's'); an unknown name, after the tasks before it were
    drawn and scored, a KeyError."""
    from t2i_cli.world.evaluate import evaluate_model

    with pytest.raises(ValueError, match=r"tasks must be a tuple of task names \(single_object, .*got 'colours'"):
        evaluate_model(NoDrawing(), None, 1, 0, tasks="colours")
    for tasks in (("no_such_task",), ("single_object", "colour"), ["counting", "Position"]):
        with pytest.raises(ValueError, match=r"tasks must be task names \(single_object, colours, .*heldout\)"):
            evaluate_model(NoDrawing(), None, 1, 0, tasks=tasks)


# ----------------------------------------------------------------------------- labels
def test_a_label_of_exactly_two_lines_is_drawn_whole_without_dots():
    """Only a label that needs a third line ends its second in " ..."; one that fits two lines is drawn as it
    is, every word shown."""
    from t2i_cli.images import _draw_label

    font = ImageFont.load_default()
    draw, drawn = ImageDraw.Draw(Image.new("RGB", (200, 40))), []
    width = int(draw.textlength("a red bird and", font=font)) + 1  # the first line's width: the second is shorter
    draw.text = lambda xy, line, **k: drawn.append(line)
    text = "a red bird and a blue cat"
    _draw_label(draw, font, text, 0, 0, width)
    assert drawn == ["a red bird and", "a blue cat"], drawn
    assert not any(line.endswith("...") for line in drawn), drawn
