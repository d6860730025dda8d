"""A large picture is made RGB a band of rows at a time (images.square_rgb) and read once when a preview opens its
folder: the pixels every mode of picture loads to are the bytes the whole-picture way gave (t2i 0.12.6's
load_rgb, kept below as the reference), whatever the band's height."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from t2i_cli import data, images


def reference_to_rgb(im: Image.Image, background=images.BACKGROUND) -> Image.Image:
    """to_rgb as t2i 0.12.6 had it: the whole picture converted at once."""
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float32)
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        a = np.nan_to_num(a, nan=0.0, posinf=hi, neginf=lo)
        scale = 255.0 / max(1.0, hi) if hi <= 2.0 else 255.0 / max(255.0, hi)
        im = Image.fromarray(np.clip(a * scale, 0, 255).round().astype(np.uint8), mode="L")
    elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
        lo, hi = im.getextrema() if im.mode == "I" else (0, 65535)
        scale = 255.0 / max(1.0, float(hi) if hi > 255 else 255.0)
        im = im.convert("F").point(lambda v: v * scale).convert("L")
    if "transparency" in im.info and im.mode in ("P", "RGB", "L", "1") or im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        plate = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(plate, rgba).convert("RGB")
    return im.convert("RGB")


def reference_load(path: Path, side: int) -> bytes:
    """load_rgb's bytes as t2i 0.12.6 made them (a JPEG many times larger decoded smaller, as now)."""
    with Image.open(path) as im:
        stored = im.size
        drafted = im.draft(None, (images.DRAFT_MARGIN * side, images.DRAFT_MARGIN * side))
        im.load()
        if drafted is None or drafted[1][2:] == stored:
            return images.square(reference_to_rgb(ImageOps.exif_transpose(im)), side).tobytes()
        small = images.square(reference_to_rgb(im), side, size=drafted[1][2:])
        method = images.EXIF_TRANSPOSE.get(im.getexif().get(0x0112, 1))
        return (small.transpose(method) if method is not None else small).tobytes()


def pictures(folder: Path, w: int, h: int) -> list[Path]:
    """One file of every mode t2i reads, w x h as shown, with fine detail, transparency where the mode has it."""
    rng = np.random.default_rng(w * 1000 + h)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((h, w)) < 0.3, 0, rgba[..., 3])  # some fully transparent pixels
    made = {}

    def save(name, img, **kw):
        made[name] = folder / name
        img.save(made[name], **kw)

    save("rgb.png", Image.fromarray(rgba[..., :3].copy(), "RGB"))
    save("rgba.png", Image.fromarray(rgba, "RGBA"))
    save("la.png", Image.fromarray(rgba[..., [0, 3]].copy(), "LA"))
    save("l.png", Image.fromarray(rgba[..., 0].copy(), "L"))
    save("one.png", Image.fromarray(rgba[..., 0].copy(), "L").convert("1"))
    palette = Image.fromarray(rgba[..., :3].copy(), "RGB").quantize(64)
    save("p.png", palette)
    save("p_trns.png", palette, transparency=bytes([0 if i % 5 == 0 else 255 - i for i in range(64)]))
    save("rgb_trns.png", Image.fromarray(rgba[..., :3] // 64 * 64, "RGB"), transparency=(64, 128, 0))
    save("l_trns.png", Image.fromarray(rgba[..., 0] // 32 * 32, "L"), transparency=96)
    grey16 = (rng.integers(0, 65536, (h, w))).astype(np.uint16)
    save("i16.png", Image.fromarray(grey16))  # I;16
    save("i.tif", Image.fromarray(grey16.astype(np.int32) * 3 - 7000, "I"))
    f = rng.normal(0.5, 0.3, (h, w)).astype(np.float32)
    f[0, 0], f[1, 1], f[2, 2] = np.nan, np.inf, -np.inf
    save("f.tif", Image.fromarray(f, "F"))
    save("f_wide.tif", Image.fromarray(f * 900, "F"))
    save("cmyk.jpg", Image.fromarray(rgba, "RGBA").convert("CMYK"), quality=95)
    for orientation in (6, 3):  # stored w x h turned: stored as h x w for a quarter turn
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored = rgba[..., :3].copy() if orientation == 3 else np.ascontiguousarray(rgba[..., :3].transpose(1, 0, 2))
        save(f"turned{orientation}.jpg", Image.fromarray(stored, "RGB"), exif=exif, quality=90)
        save(f"turned{orientation}.png", Image.fromarray(stored, "RGB"), exif=exif)
    return list(made.values())


@pytest.mark.parametrize("w,h", [(97, 61), (61, 97), (88, 88), (301, 7)])
@pytest.mark.parametrize("band", [1, 5 * 97, 10**9])  # a row, a few rows, the whole picture at once
def test_every_mode_of_picture_loads_to_the_bytes_the_whole_picture_way_gave(tmp_path, monkeypatch, w, h, band):
    monkeypatch.setattr(images, "BAND_PIXELS", band)
    for path in pictures(tmp_path, w, h):
        for side in (7, 16, 32):
            assert images.load_rgb(path, side).tobytes() == reference_load(path, side), (path.name, side)


def test_a_large_picture_is_made_rgb_a_band_at_a_time(monkeypatch):
    """The bands are what the test above compares: the picture is cut, and no band is made RGB whole."""
    rng = np.random.default_rng(3)
    im = Image.fromarray(rng.integers(0, 256, (120, 200, 4), dtype=np.uint8), "RGBA")
    monkeypatch.setattr(images, "BAND_PIXELS", 200 * 16)
    made, real = [], images._rgb
    monkeypatch.setattr(images, "_rgb", lambda band, *a: made.append(band.size) or real(band, *a))
    got = images.square_rgb(im, 24)
    assert got.tobytes() == images.square(reference_to_rgb(im), 24).tobytes()
    assert len(made) > 5 and all(size[1] <= 16 for size in made), made


def test_a_preview_reads_each_picture_it_shows_once(tmp_path, monkeypatch):
    """`data preview` decoded each picture twice: once when the folder was checked, once to show it. The check's
    pixels are kept for the pictures the sheet shows, the same bytes a fresh read gives."""
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40 + i, 50, 4), dtype=np.uint8), "RGBA").save(tmp_path / f"p{i}.png")
        (tmp_path / f"p{i}.txt").write_text(f"picture {i}")
    data._digest_if_decodes.cache_clear()
    fresh = {p.name: images.load_rgb(p, 16).tobytes() for p in tmp_path.glob("*.png")}
    opened, real = [], images.opened

    def spy(path):
        opened.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(images, "opened", spy)
    data._digest_if_decodes.cache_clear()
    ds = data.open_source(str(tmp_path), 16, keep=3)
    shown = [ds[i][0] for i in range(3)]
    rest = [ds[i][0] for i in range(3, 5)]
    names = [p.name for p, _ in ds.pairs]
    assert [opened.count(n) for n in names] == [1, 1, 1, 2, 2], opened  # the shown ones once; the rest checked, read
    for x, name in zip(shown + rest, names, strict=True):
        assert images.tensor_from_rgb(fresh[name], 16, 16).equal(x)
