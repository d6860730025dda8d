"""Tensor <-> PIL conversion, loading user images safely, contact sheets and PNG text chunks."""

from __future__ import annotations

import functools
import io
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin

from t2i_cli.errors import DataError
from t2i_cli.files import IMAGE_SUFFIXES, UNMARKED, atomic_write_bytes  # noqa: F401 (IMAGE_SUFFIXES: re-exported)

# Pillow's own decompression-bomb limit (about 89 megapixels warns, twice that raises); we make the
# warning an error too, so a bomb is refused before it is decoded.
Image.MAX_IMAGE_PIXELS = 89_478_485
# Pictures t2i cannot read, said as such where a folder holds them (an iPhone saves HEIC by default, a camera its
# raw files): Pillow has no decoder for them. Nor does t2i read the icon and old formats Pillow does (a folder of
# .xpm or .ico icons, /usr/share/pixmaps', was "captions without image", its pictures unnamed).
UNREAD_FORMATS = {".heic": "HEIC", ".heif": "HEIC", ".jxl": "JPEG XL", ".svg": "SVG", ".xpm": "XPM", ".ico": "ICO",
                  ".icns": "ICNS", ".tga": "TGA", ".pcx": "PCX", ".psd": "Photoshop",
                  **dict.fromkeys((".ppm", ".pgm", ".pbm", ".pnm"), "PNM"),
                  **dict.fromkeys((".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf"), "camera raw")}
UNREAD_SUFFIXES = tuple(UNREAD_FORMATS)


# ... of which Pillow reads these: `vary` and `--image` read such a file given by its path (pygame's yellow.tga), so
# a folder's is said to be left out, not unreadable ("t2i cannot read TGA" was said of a file vary had just read)
PILLOW_READS = frozenset({"XPM", "ICO", "ICNS", "TGA", "PCX", "Photoshop", "PNM"})


def unread_picture(suffix: str) -> str:
    """Why a picture of a format t2i cannot read is left out (suffix one of UNREAD_SUFFIXES, any case)."""
    kind = UNREAD_FORMATS[suffix.lower()]
    if kind in PILLOW_READS:
        return f"{kind} picture (t2i does not read {kind} from a folder: convert to JPEG or PNG)"
    return f"{kind} picture (t2i cannot read {kind}: convert to JPEG or PNG)"


UNREAD_PICTURE = unread_picture(".heic")
# impostor's reasons for an SVG or HEIC picture under a picture's name (an icon site's "PNG" that is its SVG; an
# iPhone's HEIC photo renamed .jpg, as some transfer tools and users do)
UNREAD_FORMATS_SAID = {".svg": unread_picture(".svg"), ".heic": unread_picture(".heic")}
HEIC_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis")  # an ISO-BMFF file's major brand (not AVIF's)
BACKGROUND = (255, 255, 255)  # what transparent pixels of a user's image become (white, as on most icons)


# A file with a picture's name that holds something else, known by its first bytes (impostor): a Git LFS pointer (a
# dataset repository cloned without git-lfs, or with GIT_LFS_SKIP_SMUDGE, holds ~130-byte text files in place of its
# pictures) and a web page (a browser's "save" of the page a picture was on, under the picture's name). Both were
# "unreadable image" / "cannot identify image file", which says neither what the file is nor how to get the picture.
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
IMPOSTOR_BYTES = 1024  # the bytes of a file impostor reads
LFS_POINTER_FILE = "Git LFS pointer file in place of a picture (fetch the pictures: git lfs pull)"
HTML_FILE = "HTML file saved under a picture's name (a web page: save the picture itself)"


def impostor(path: Path) -> str:
    """What a file with a picture's name holds instead of one, from its first bytes: LFS_POINTER_FILE, HTML_FILE,
    an SVG drawing's or a HEIC photo's reason (as a .svg or .heic file's), or "" (another file, or one that cannot be
    read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(IMPOSTOR_BYTES)
    except OSError:
        return ""
    if head.startswith(LFS_POINTER):
        return LFS_POINTER_FILE
    if head[4:8] == b"ftyp" and _heic(head):
        return UNREAD_FORMATS_SAID[".heic"]
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if not text.startswith(b"<"):
        return ""
    # whichever opens first: a page (`<!DOCTYPE html`, `<html`) or a drawing (`<svg`: an icon site's "PNG" that is
    # its SVG, `<?xml ...?><svg ...`); an XHTML page, `<?xml ...?>` first, with an inline SVG icon in its first
    # bytes was said an SVG drawing, to convert to PNG
    page = min((i for i in (text.find(b"<!doctype html"), text.find(b"<html")) if i >= 0), default=len(text))
    drawing = text.find(b"<svg")
    if 0 <= drawing < page:
        return UNREAD_FORMATS_SAID[".svg"]
    return HTML_FILE if page < len(text) else ""


def _heic(head: bytes) -> bool:
    """Whether an ISO-BMFF file's first bytes (its ftyp box first) are a HEIC picture's: its major brand one of
    HEIC_BRANDS, or HEIF's general image brand (mif1, or msf1 of a sequence) with one of them among its compatible
    brands and no AVIF's (a HEIC written `ftyp mif1` with `heic` compatible was "unreadable": only the major brand
    was looked at)."""
    brands = [head[i:i + 4] for i in range(16, min(int.from_bytes(head[:4], "big"), len(head)) - 3, 4)]
    return head[8:12] in HEIC_BRANDS or (head[8:12] in (b"mif1", b"msf1") and any(b in HEIC_BRANDS for b in brands)
                                         and not any(b in (b"avif", b"avis") for b in brands))


READ_KINDS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")  # Pillow's names of the formats t2i reads


def _begins_as(path: Path) -> str:
    """The format of READ_KINDS whose signature a file's first 16 bytes hold (Pillow's own test of them, as
    Image.open makes it), or "" (none, or the file cannot be read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return ""
    Image.init()
    return next((kind for kind in READ_KINDS if kind in Image.OPEN and Image.OPEN[kind][1] is not None
                 and Image.OPEN[kind][1](head)), "")


def unreadable(path: Path, what: str, e: Exception) -> DataError:
    """The one line for an image file that cannot be read: what is wrong with it and what to give instead."""
    if not Path(path).exists():
        return DataError(f"{what} {path} does not exist; check the path")
    if Path(path).is_dir():
        return DataError(f"{what} {path} is a folder; give an image file")
    try:
        empty = Path(path).stat().st_size == 0
    except OSError:
        empty = False
    if empty:  # (Pillow: "cannot identify image file", as for a file of another kind)
        return DataError(f"{what} {path} is an empty file (0 bytes); give a complete picture")
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return DataError(f"{what} {path} has more pixels than t2i decodes ({Image.MAX_IMAGE_PIXELS:,}); scale it "
                         f"down (t2i reads pictures at 128 px or so on a side)")
    if isinstance(e, ValueError) and ("MAX_TEXT_CHUNK" in str(e) or "MAX_TEXT_MEMORY" in str(e)):
        # Pillow's bounds on a PNG's text (1 MB a chunk, 64 MB in all): the pixels may be whole
        return DataError(f"{what} {path} carries more text (metadata) than t2i reads ({e}); save the picture "
                         f"again without its text chunks")
    if isinstance(e, Image.UnidentifiedImageError) and Path(path).suffix.lower() not in UNREAD_FORMATS \
            and (kind := impostor(Path(path))):  # (a .svg keeps its own line, below)
        return DataError(f"{what} {path} is a Git LFS pointer, not the picture (its repository was cloned without "
                         f"its large files): run `git lfs pull` there, or give the picture itself"
                         if kind == LFS_POINTER_FILE else
                         f"cannot read {what} {path}: it is an SVG drawing under another name; t2i cannot read SVG: "
                         f"convert it to PNG (e.g. rsvg-convert, Inkscape) or give another picture"
                         if kind == UNREAD_FORMATS_SAID[".svg"] else
                         f"cannot read {what} {path}: it is a HEIC photo (an iPhone's) under another name; t2i cannot "
                         f"read HEIC: convert it to JPEG (e.g. heif-convert, or Preview's Export) or give another "
                         f"picture"
                         if kind == UNREAD_FORMATS_SAID[".heic"] else
                         f"{what} {path} is a web page (HTML), not a picture: open it in a browser and save the "
                         f"picture itself, or give another picture")
    if isinstance(e, Image.UnidentifiedImageError) and Path(path).suffix.lower() in UNREAD_FORMATS \
            and UNREAD_FORMATS[Path(path).suffix.lower()] not in PILLOW_READS:  # (an SVG given to vary was "cannot
        # identify image file", where a folder's is said as such; a damaged TGA, which vary reads whole, is not
        # "t2i does not read TGA from a folder")
        return DataError(f"cannot read {what} {path}: {unread_picture(Path(path).suffix)}")
    if isinstance(e, ValueError) and Path(path).suffix.lower() in UNREAD_FORMATS \
            and (kind := UNREAD_FORMATS[Path(path).suffix.lower()]) in PILLOW_READS:  # an XPM Pillow identifies but
        # cannot read (a colour by name, `c white`: /usr/share/pixmaps/openjdk-17.xpm) was told "give a complete PNG,
        # JPEG, ...", as if damaged, and a folder's "convert to JPEG or PNG" cannot be done with Pillow: said as
        # Pillow's limit, with programs that read more of the format (a cut or unidentified file: as before)
        return DataError(f"cannot read {what} {path}: Pillow, which t2i reads {kind} pictures with, cannot read "
                         f"this one ({e}); save it as PNG or JPEG with a program that opens it (GIMP, ImageMagick), "
                         f"or give another picture")
    if isinstance(e, Image.UnidentifiedImageError) and (kind := _begins_as(Path(path))):  # (a PNG cut inside its
        # header, or one whose header is damaged, was said "its first bytes are no picture format Pillow knows")
        return DataError(f"cannot read {what} {path}: it begins as a {kind} file, but Pillow cannot read its header (a "
                         f"damaged or cut-short file); give a complete PNG, JPEG, WebP, BMP, GIF, TIFF or AVIF file")
    if isinstance(e, Image.UnidentifiedImageError):  # (Pillow's "cannot identify image file '<path>'" named the
        # path twice, a long one making the line twice as long, and not what is wrong)
        return DataError(f"cannot read {what} {path}: its first bytes are no picture format Pillow knows (a damaged "
                         f"file, or not a picture); give a complete PNG, JPEG, WebP, BMP, GIF, TIFF or AVIF file")
    return DataError(f"cannot read {what} {path}: {e}; give a complete PNG, JPEG, WebP, BMP, GIF, TIFF or AVIF "
                     f"file")


@contextmanager
def _pillow_warnings() -> Iterator[None]:
    """Pillow's decompression-bomb warning made an error, its warnings about a broken EXIF block silenced (opened)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")
        yield


@contextmanager
def opened(path: Path) -> Iterator[Image.Image]:
    """Image.open(path) with a decompression bomb refused (Pillow's warning made an error, so the image is not
    decoded) and Pillow's warnings about a broken EXIF block silenced: the picture reads, and a tag Pillow
    cannot read counts as absent (an orientation it cannot read leaves the picture as stored)."""
    with _pillow_warnings(), Image.open(path) as im:
        yield im


DRAFT_MARGIN = 4  # a JPEG is decoded at no less than this many times the side asked for (load_rgb)


def load_rgb(path: Path, side: int) -> Image.Image:
    """Open an image file as RGB, resize its short side to `side` and centre-crop it square. A JPEG many times
    larger is decoded at a half, a quarter or an eighth of its size (libjpeg scales in its transform), never
    below DRAFT_MARGIN x side, so the Lanczos resize still makes the picture: a 12-megapixel photo reads 4.5-7x
    faster, within 43.1 dB PSNR of the full decode on fine line art, and a truncated file is still found
    (BENCHMARKS.md "Large JPEGs")."""
    return load_rgbs(path, (side,))[side]


def _draft_scale(size: tuple[int, int], side: int) -> int:
    """The scale (1, 2, 4 or 8) load_rgb's im.draft reduces a JPEG of size (width, height) by at side, as Pillow's
    JpegImageFile.draft chooses it: the largest that leaves the picture at least DRAFT_MARGIN x side both ways."""
    fit = min(size[0] // (DRAFT_MARGIN * side), size[1] // (DRAFT_MARGIN * side))
    return next(s for s in (8, 4, 2, 1) if fit >= s or s == 1)


def load_rgbs(path: Path, sides) -> dict[int, Image.Image]:
    """load_rgb(path, side) for each of sides, the same bytes, from one decode of the file where they allow it: a
    JPEG reduced in its decode by another scale at one side than at another is decoded once for each scale (rerank
    decoded a JPEG twice for its score and its tile on the --top sheet, at another side, at the same scale). Its
    header is read once for each decode (_draft_scale: it was read again for each other side, to ask im.draft)."""
    left, out = sorted(set(sides), reverse=True), {}
    try:
        while left:
            with opened(path) as im:
                stored = im.size
                drafted = im.draft(None, (DRAFT_MARGIN * left[0], DRAFT_MARGIN * left[0]))  # JPEG only (else None)
                alike = [left[0], *(s for s in left[1:]
                                    if drafted is None or _draft_scale(stored, s) == _draft_scale(stored, left[0]))]
                left = [s for s in left if s not in alike]
                im.load()
                if drafted is None or drafted[1][2:] == stored:  # a phone's photo as shown; no copy when upright
                    out.update(_shown_squares(im, alike))
                    continue
                orientation = im.getexif().get(0x0112, 1)
                img = to_rgb(im)
            # Reduced: a side that the scale does not divide is rounded up with padding past the picture (4001 / 8 ->
            # 501 pixels, the picture 500.125 of them; centred on 501 the crop was off by part of a pixel), so the
            # square is taken from the picture's own size, in the orientation it is stored in, and the small square
            # is turned.
            method = EXIF_TRANSPOSE.get(orientation)
            for s in alike:
                small = square(img, s, size=drafted[1][2:])
                out[s] = small.transpose(method) if method is not None else small
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise unreadable(path, "image", e) from e
    return out


def _shown_squares(im: Image.Image, sides) -> dict[int, Image.Image]:
    """load_rgb's pictures at each of sides of a decoded image not reduced in its decode (im.draft): as shown, its
    square, RGB (its transparent colour read and its turn made once for them all)."""
    upright = im.getexif().get(0x0112, 1) in (1, None)  # a phone's photo as it is shown; no copy when upright
    im = _keyed_png(im)  # (while it is the file's picture: a turned copy is not; once: its header read once)
    shown = im if upright else ImageOps.exif_transpose(im)
    return {side: _square_rgb(shown, side) for side in sides}


def rgb_of(png: Image.Image, side: int) -> Image.Image:
    """load_rgb(path, side)'s picture, the same bytes, of the PNG read_png decoded from path: made from that
    decode, not another (a PNG is never reduced in its decode, as a JPEG is)."""
    return rgbs_of(png, (side,))[side]


def rgbs_of(png: Image.Image, sides) -> dict[int, Image.Image]:
    """rgb_of(png, side) for each of sides (the PNG's transparent colour read once for them all)."""
    try:
        with _pillow_warnings():
            return _shown_squares(png, sides)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise unreadable(Path(png.filename), "image", e) from e


# What ImageOps.exif_transpose does for each EXIF orientation.
EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                  4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                  7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def load_mask_cells(path: Path, grid: int) -> torch.Tensor:
    """An inpainting mask as (grid, grid) bools: a cell is True when any pixel of it is light (> 127 after
    greyscale; transparent pixels count as black, so strokes on a transparent layer mark what they cover).
    The mask is centre-cropped square like an image prompt (load_rgb), then each crop pixel belongs to
    exactly one cell, so no pixel is lost to resampling."""
    square = _centre_square(_mask_grey(path))
    s = square.width
    light = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8).view(s, s) > 127
    starts = [min(r * s // grid, s - 1) for r in range(grid + 1)]  # a crop smaller than the grid repeats pixels
    bounds = [(starts[r], max(starts[r] + 1, (r + 1) * s // grid)) for r in range(grid)]
    return torch.tensor([[bool(light[y0:y1, x0:x1].any()) for x0, x1 in bounds] for y0, y1 in bounds])


def _mask_grey(path: Path) -> Image.Image:
    """A mask file as shown (EXIF orientation), in greyscale, transparent pixels black."""
    try:
        with opened(path) as im:
            im.load()
            return _rgb(ImageOps.exif_transpose(_keyed_png(im)), background=(0, 0, 0)).convert("L")  # as load_rgb
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise unreadable(path, "mask", e) from e


def _centre_square(img: Image.Image) -> Image.Image:
    """The centre square of img (short side by short side), unresized: what an image prompt's mask is read from."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def mask_light_outside(path: Path) -> bool:
    """Whether a mask has light pixels (> 127) outside the centre square that load_mask_cells reads."""
    grey = _mask_grey(path)
    return grey.getextrema()[1] > 127 and not _centre_square(grey).getextrema()[1] > 127


def image_size(path: Path, what: str = "image") -> tuple[int, int]:
    """(width, height) of an image file as it is shown (an EXIF orientation of 5-8 turns it a quarter, as
    load_rgb does), read from its header (errors name it as `what`)."""
    try:
        with opened(path) as im:
            exif = _png_exif(path) if im.format == "PNG" else None
            if exif is None:  # (another format's getexif reads its header; a PNG's decodes it, as said below)
                exif = im.getexif()
            turned = exif.get(0x0112, 1) in (5, 6, 7, 8)
            return im.size[::-1] if turned else im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise unreadable(path, what, e) from e


PNG_CHUNKS_WALKED = 1 << 16  # chunks _png_exif steps over before it leaves the look to Pillow (a decode)
PNG_EXIF_READ = 1 << 22  # the largest eXIf chunk _png_exif reads (a larger one is left to Pillow)


def _png_exif(path: Path) -> Image.Exif | None:
    """A PNG's EXIF as load_rgb reads it after its decode (Pillow's getexif of a PNG decodes the whole picture to
    find an eXIf chunk after the pixels: image_size of a large PNG cost a decode, and image_prompt decoded it
    again), found by stepping over its chunks, none decoded: the last eXIf before IEND (or before an animated
    PNG's second frame), as Pillow keeps it. None where the walk cannot say as Pillow would (more than
    PNG_CHUNKS_WALKED chunks, an eXIf over PNG_EXIF_READ bytes): the caller asks Pillow."""
    import struct

    exif, pixels = b"", False
    with open(path, "rb") as f:
        f.seek(8)  # (the signature: Image.open checked it)
        for _ in range(PNG_CHUNKS_WALKED):
            head = f.read(8)
            if len(head) < 8:
                break  # (cut: Pillow's look stops there too)
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND" or (kind == b"fcTL" and pixels):
                break
            pixels = pixels or kind == b"IDAT"
            if kind == b"eXIf":
                if length > PNG_EXIF_READ:
                    return None
                exif = f.read(length)
                f.seek(4, 1)
            else:
                f.seek(length + 4, 1)
        else:
            return None
    found = Image.Exif()
    if exif:
        found.load(b"Exif\x00\x00" + exif)  # (as Pillow's eXIf chunk reader keeps it)
    return found


def _png_file(im: Image.Image) -> Path | None:
    """The file a PNG was read from, whose header _grey_depth and _low_bytes read again; None for another picture,
    or one read from no file."""
    if im.format != "PNG" or not isinstance(getattr(im, "filename", None), (str, Path)) or not im.filename:
        return None
    return Path(im.filename)


def _grey_depth(im: Image.Image) -> int | None:
    """The bits of a grey PNG's levels below 8 (2 or 4; Pillow reads them scaled to 0..255), read from its file
    again; None for another picture, or one read from no file."""
    if (path := _png_file(im)) is None:
        return None
    try:
        with opened(path) as again:
            if len(again.tile) == 1 and again.size == im.size and again.info.get("transparency") == im.info.get(
                    "transparency"):
                return {"L;2": 2, "L;4": 4}.get(again.tile[0][3])
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        pass
    return None


def _low_bytes(im: Image.Image, decode: bool = True, rows: int | None = None) -> Image.Image | bool | None:
    """The low bytes of a 16-bit RGB PNG's samples (Pillow keeps the high ones) as an RGB picture, read again from
    its file; None where im is no such PNG read from a file (an 8-bit one), or the file no longer holds it.
    decode False: only whether it is such a PNG (True, else None), from its header: nothing is decoded. rows: only
    the first rows are decoded (a PNG's rows are decoded in order; those below are left black), where it is not
    interlaced."""
    if (path := _png_file(im)) is None:
        return None
    try:
        with opened(path) as again:
            tile = again.tile[0] if len(again.tile) == 1 else None
            if (tile is None or tile[3] != "RGB;16B" or again.size != im.size
                    or again.info.get("transparency") != im.info.get("transparency")):
                return None
            if not decode:
                return True
            box = tile[1]
            if rows is not None and not again.info.get("interlace"):  # (an interlaced PNG's passes each span its
                box = (*box[:3], min(box[3], box[1] + rows))  # whole height: decoded whole)
            again.tile = [tile._replace(extents=box, args="RGB;16L") if hasattr(tile, "_replace")
                          else (tile[0], box, tile[2], "RGB;16L")]
            again.load()  # (the same unpacker, a byte further: the low byte of each big-endian sample)
        return again  # (leaving `with` closes the file, not the pixels)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None


def _keyed_png(im: Image.Image) -> Image.Image:
    """im as RGBA where it is a 16-bit RGB PNG with a transparent colour (tRNS), that colour's pixels transparent:
    Pillow reads the samples' high bytes and keeps the colour in its 16-bit values, which marked pixels by their
    low 8 bits (the colour (4096, 4096, 4096) read as dark grey, pure black as transparent). Compared at 16 bits,
    as the PNG specification has it, with the low bytes read again from the file (a band of rows at a time) only
    where some pixel's high bytes are the colour's (else im itself, its colour dropped: nothing is decoded again or
    copied); an in-memory picture is compared by its high bytes where the colour is above 255. A 2- or 4-bit grey PNG's
    transparent level is scaled as its pixels are (level 2 of 2 bits, 170, stayed; pixels of 2 were transparent).
    Other pictures: im."""
    key = im.info.get("transparency")
    if im.mode == "L" and isinstance(key, int) and 0 <= key < 16 and (bits := _grey_depth(im)) is not None:
        keyed = im.copy()  # a 2- or 4-bit grey PNG's transparent level, in its own levels: as Pillow reads them
        keyed.info.pop("transparency")  # (a level past the depth's marks no pixel)
        if key < 1 << bits:
            keyed.info["transparency"] = key * 255 // ((1 << bits) - 1)
        return keyed
    if im.mode != "RGB" or not isinstance(key, tuple) or len(key) != 3:
        return im
    sixteen = _low_bytes(im, decode=False)  # (the header alone)
    if sixteen is None and max(key) <= 255:  # an 8-bit colour: Pillow applies it as it is
        return im
    w, h = im.size
    alpha = Image.new("L", (w, h))
    rows = max(1, BAND_PIXELS // max(1, w))
    last = -1  # the last row where some pixel's high bytes are the colour's
    for y in range(0, h, rows):  # by the high bytes first
        same = np.all(np.asarray(im.crop((0, y, w, min(h, y + rows)))) == np.array([k >> 8 for k in key], np.uint8),
                      axis=2)
        if (marked := np.flatnonzero(same.any(axis=1))).size:
            last = y + int(marked[-1])
        alpha.paste(Image.fromarray(np.where(same, 0, 255).astype(np.uint8)), (0, y))
    if last < 0:  # the colour marks no pixel: the picture itself, without the colour (its file
        # decoded once, and no RGBA copy of it made: the same pixels, all opaque)
        opaque = im._new(im.im)  # (the same pixels, not copied)
        opaque.info = {k: v for k, v in im.info.items() if k != "transparency"}
        return opaque
    # the file is decoded again for its low bytes only where a pixel's high bytes are the colour's, and only down to
    # the last row where one is (a colour marking the top of a picture: its top alone decoded again)
    low = _low_bytes(im, rows=last + 1) if sixteen is not None else None
    for y in range(0, last + 1, rows) if low is not None else ():
        box = (0, y, w, min(h, y + rows))
        same = np.asarray(alpha.crop(box)) == 0
        same &= np.all(np.asarray(low.crop(box)) == np.array([k & 0xFF for k in key], np.uint8), axis=2)
        alpha.paste(Image.fromarray(np.where(same, 0, 255).astype(np.uint8)), (0, y))
    del low
    rgba = Image.new("RGBA", (w, h))
    rgba.paste(im)  # (pasted, not converted: convert would apply the colour as Pillow reads it)
    rgba.putalpha(alpha)
    rgba.info = {k: v for k, v in im.info.items() if k != "transparency"}  # (its EXIF orientation too)
    return rgba


def to_rgb(im: Image.Image, background: tuple[int, int, int] = BACKGROUND,
           levels: tuple[float, float] | None = None) -> Image.Image:
    """Any mode as 8-bit RGB: transparency (RGBA, LA, a palette, RGB or grey PNG with a transparent colour) is
    composited on `background` (what a plain convert("RGB") would show is the colour stored under alpha 0,
    usually black), and 16- or 32-bit greyscale is scaled to 8 bits rather than clipped (a float image whose
    values lie in 0..1, as a float TIFF's usually do, read as 0..1 of white, not as black). Each pixel is made
    from itself alone, but for the scale of an "I" or "F" picture: levels, when im is a band of a picture, are
    the whole picture's (_levels)."""
    return _rgb(_keyed_png(im), background, levels)


def _rgb(im: Image.Image, background: tuple[int, int, int] = BACKGROUND,
         levels: tuple[float, float] | None = None) -> Image.Image:
    """to_rgb of a picture _keyed_png has made (or that is no file's: a band, a turned copy): its header is not
    read again (load_rgb read a keyed PNG's three times, in _shown_square, square_rgb and to_rgb: now once)."""
    if im.mode == "F":  # NaN as 0, infinities as the finite extremes; up to 2: a 0..1 image (a little overshoot)
        lo, hi = levels or _levels(im)
        a = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=hi, neginf=lo)
        scale = 255.0 / max(1.0, hi) if hi <= 2.0 else 255.0 / max(255.0, hi)
        im = Image.fromarray(np.clip(a * scale, 0, 255).round().astype(np.uint8), mode="L")
    elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
        lo, hi = (levels or _levels(im)) if im.mode == "I" else (0, 65535)
        scale = 255.0 / max(1.0, float(hi) if hi > 255 else 255.0)
        key = im.info.get("transparency")  # a 16-bit grey PNG's transparent level (tRNS), in its own values
        grey = im.convert("F").point(lambda v: v * scale).convert("L")
        grey.info.pop("transparency", None)  # (convert keeps it: as an 8-bit level it marked other pixels)
        if isinstance(key, int):
            grey.putalpha(Image.fromarray(np.where(np.asarray(im) == key, 0, 255).astype(np.uint8)))
        im = grey
    # a palette, RGB or grey PNG marks a transparent colour (tRNS) in info; convert("RGBA") applies it
    if "transparency" in im.info and im.mode in ("P", "RGB", "L", "1") or im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")  # (a large picture is not copied once more)
        plate = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(plate, rgba).convert("RGB")
    return im.convert("RGB")


def _levels(im: Image.Image) -> tuple[float, float]:
    """What to_rgb scales an "I" picture by (its extrema) or an "F" one (its finite extrema; (0, 0) when it has
    none), read a band of rows at a time (an "F" picture's values are not copied whole)."""
    if im.mode != "F":
        return im.getextrema()
    lo, hi = np.inf, -np.inf
    rows = max(1, BAND_PIXELS // max(1, im.width))
    for top in range(0, im.height, rows):
        a = np.asarray(im.crop((0, top, im.width, min(im.height, top + rows))), dtype=np.float32)
        finite = a[np.isfinite(a)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (lo, hi) if hi >= lo else (0.0, 0.0)


def square(img: Image.Image, side: int, size: tuple[float, float] | None = None) -> Image.Image:
    """The centre square of img (short side by short side) resized to side x side (Lanczos), in one
    resampling of that square alone: what resizing the short side to `side` and centre-cropping shows,
    without resizing the rest first (a 200,000 x 4 strip blown up to 3.2 M x 64 took 4 GB before t2i 0.9.0).
    size: the picture's width and height within img when they are less (a reduced JPEG's, in its pixels)."""
    w, h = size or img.size
    s = min(w, h)
    return img.resize((side, side), Image.LANCZOS, box=((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2))


BAND_PIXELS = 1 << 20  # square_rgb makes a large picture RGB this many pixels (a band of whole rows) at a time


def square_rgb(im: Image.Image, side: int, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """square(to_rgb(im, background), side), the same bytes, without the full-size copies to_rgb makes of a large
    picture (an 81-megapixel RGBA PNG took four beside its decoded pixels, 1.5 GB): it is made RGB a band of
    rows (BAND_PIXELS) at a time. Pillow resizes in two passes, rounding to 8 bits between them: each row across,
    then each column down, unless the height shrinks much more than the width (Pillow 13 then goes down first),
    which a picture at least as wide as it is tall never does, its square being all of its height. So each band
    of such a picture is resized across as it is made, and the narrow picture of the bands is resized down, by
    the weights Pillow's one call uses (they depend on the rows alone). A taller picture's bands are put
    together into the RGB picture, which is resized as before (the decoded picture and one RGB copy). An RGB
    picture (with no transparent colour) is resized as it is: to_rgb would copy it unchanged."""
    return _square_rgb(_keyed_png(im), side, background)  # (before it is cut in bands, which are no file's)


def _square_rgb(im: Image.Image, side: int, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """square_rgb of a picture _keyed_png has made (or that is no file's): its header is not read again."""
    w, h = im.size
    if im.mode == "RGB" and "transparency" not in im.info:  # to_rgb would copy it as it is
        return square(im, side)
    if w * h <= BAND_PIXELS:
        return square(_rgb(im, background), side)
    levels = _levels(im) if im.mode in ("I", "F") else None
    rows = max(1, BAND_PIXELS // w)
    if w < h or w < 2 * side:  # (less than twice the side across: the narrow picture would be as large)
        rgb = Image.new("RGB", (w, h))
        for y in range(0, h, rows):
            rgb.paste(_rgb(im.crop((0, y, w, min(h, y + rows))), background, levels), (0, y))
        return square(rgb, side)
    x0, x1 = (w - h) / 2, (w + h) / 2  # the centre square's columns (all of its rows)
    narrow = Image.new("RGB", (side, h))
    for y in range(0, h, rows):
        band = _rgb(im.crop((0, y, w, min(h, y + rows))), background, levels)
        narrow.paste(band.resize((side, band.height), Image.LANCZOS, box=(x0, 0, x1, band.height)), (0, y))
    return narrow.resize((side, side), Image.LANCZOS)


WHITE_ENOUGH = 250  # blank_on_white: each of R, G and B at least this


def blank_on_white(path: Path) -> bool:
    """Whether a picture with transparent pixels shows nothing once they are made white (BACKGROUND): every pixel
    it draws is white or nearly, as a white sprite or icon drawn for a dark background (pygame's city.png, a white
    house) or a wholly transparent one. A picture without transparency is never one: a white picture is what it
    shows. Read again whole: called for a picture whose small decode was white."""
    try:
        with opened(path) as im:
            if not ("transparency" in im.info or im.mode in ("RGBA", "LA", "PA", "RGBa", "La")):
                return False
            if im.width * im.height > 16 * BAND_PIXELS:  # (its small decode was white: not decoded whole again)
                return True
            rgb = to_rgb(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return False
    return min(lo for lo, _ in rgb.getextrema()) >= WHITE_ENOUGH


def wholly_transparent(path: Path) -> bool:
    """Whether a picture draws nothing at all, every pixel transparent (a 9-patch skin of a disabled state, a spacer
    GIF): said apart from one drawn in white (blank_on_white), which a dark background would show. Read again whole
    (a large one is not: False); called for a picture blank_on_white found blank. Its transparency is read as to_rgb
    reads it (black on a black background, white on a white one): a 16-bit or 2-bit grey PNG's transparent level and
    a 16-bit RGB PNG's transparent colour, which Pillow's convert("RGBA") does not apply, were "drawn in white"."""
    try:
        with opened(path) as im:
            if im.width * im.height > 16 * BAND_PIXELS:
                return False
            keyed = _keyed_png(im)
            return max(hi for _, hi in _rgb(keyed, (0, 0, 0)).getextrema()) == 0 \
                and min(lo for lo, _ in _rgb(keyed).getextrema()) == 255
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return False


def crop_rgb(pixels: bytes, side: int, box: tuple[int, int, int], out: int) -> bytes:
    """The square (x0, y0, c) of a side x side RGB picture's bytes, resized to out x out (Lanczos; not resized
    when c is out): a training crop."""
    x0, y0, c = box
    img = Image.frombytes("RGB", (side, side), pixels).crop((x0, y0, x0 + c, y0 + c))
    return (img if c == out else img.resize((out, out), Image.LANCZOS)).tobytes()


def tensor_from_image(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float tensor (3, H, W) in [0, 1]."""
    return tensor_from_rgb(img.convert("RGB").tobytes(), img.height, img.width)


def tensor_from_rgb(pixels: bytes, height: int, width: int) -> torch.Tensor:
    """RGB bytes (an RGB image's tobytes()) -> float tensor (3, H, W) in [0, 1]."""
    data = torch.frombuffer(bytearray(pixels), dtype=torch.uint8)
    return data.view(height, width, 3).permute(2, 0, 1).float() / 255.0


def check_picture(x: torch.Tensor, what: str) -> None:
    """Refuse what is not one picture, a tensor (3, H, W), in one line naming what took it (a batch: a raw permute
    or conv2d error), pointing at images[i] for a batch (models.dvae.check_images is the batch's check)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[0] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        hint = "; for one picture of a batch: images[i]" if isinstance(x, torch.Tensor) and x.dim() == 4 else ""
        raise ValueError(f"{what} takes one picture, a tensor (3, H, W) in [0, 1]; got {shape}{hint}")


def image_from_tensor(x: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) in [0, 1] -> PIL RGB image (values clamped)."""
    check_picture(x, "image_from_tensor")
    x = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().cpu()
    return Image.frombytes("RGB", (x.shape[1], x.shape[0]), bytes(x.numpy().tobytes()))


def contact_sheet(images: list[Image.Image], labels: list[str] | None = None, columns: int = 4,
                  label_height: int = 24) -> Image.Image:
    """Lay images out in a grid, each with an optional label line beneath (wrapped to two lines)."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    w, h = images[0].size
    cols = min(columns, len(images))
    rows = (len(images) + cols - 1) // cols
    lh = label_height if labels else 0
    sheet = Image.new("RGB", (cols * (w + 4) + 4, rows * (h + lh + 4) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, img in enumerate(images):
        x, y = 4 + (i % cols) * (w + 4), 4 + (i // cols) * (h + lh + 4)
        sheet.paste(img.convert("RGB").resize((w, h)), (x, y))
        if labels:
            _draw_label(draw, font, labels[i], x, y + h + 1, w)
    return sheet


def attention_strip(image: torch.Tensor, maps: list[tuple[str, torch.Tensor]], side: int = 128) -> Image.Image:
    """A captioned strip: the image (3, H, W) in [0, 1], then one panel per (label, map (h, w) >= 0) where
    what the map weighs most stays bright and the rest is dimmed."""
    import torch.nn.functional as F

    base = F.interpolate(image[None].float(), size=(side, side), mode="bilinear", align_corners=False)[0]
    panels, labels = [image_from_tensor(base.clamp(0, 1))], ["image"]
    for label, attn in maps:
        heat = F.interpolate(attn[None, None].float(), size=(side, side), mode="bilinear", align_corners=False)[0]
        heat = heat / heat.max().clamp(min=1e-8)
        panels.append(image_from_tensor((base * (0.15 + 0.85 * heat)).clamp(0, 1)))
        labels.append(label)
    return contact_sheet(panels, labels, columns=len(panels), label_height=26)


def drawable(text: str) -> str:
    """text as the sheets' font can draw it: Pillow's built-in font has glyphs for ASCII alone, so a letter
    with a mark is drawn without it ("café" as "cafe", "Straße" as "Strasse") rather than as a box; what has no
    ASCII form (日本, ж) stays as it is, a box a character. A caption in decomposed form (NFD, as macOS writes file
    names: "cafe" and a combining accent) is composed first: its accent was drawn as a box after the letter."""
    import unicodedata

    if text.isascii():
        return text
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text).translate(UNMARKED):
        if ch.isascii():
            out.append(ch)
            continue
        if unicodedata.combining(ch) and out and out[-1].isascii():  # a mark no letter composes with ("q" and an
            continue  # accent): the letter is drawn without it
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and base.isascii() else ch)
    return "".join(out)


# Fonts looked for by file name in the system's font folders (Pillow's truetype search: /usr/share/fonts, macOS'
# and Windows' Fonts) where a label holds letters the built-in font has no glyph for (Cyrillic, Greek, Arabic,
# Chinese...: each was drawn as a box); the first that has a glyph for every one of them, else the one with most.
LABEL_FONTS = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
               "wqy-microhei.ttc", "wqy-zenhei.ttc", "DroidSansFallbackFull.ttf", "Arial Unicode.ttf", "arialuni.ttf",
               "msyh.ttc", "YuGothR.ttc", "Arial.ttf", "arial.ttf")
LABEL_FONT_SIZE = 10  # Pillow's built-in font's


@functools.lru_cache(maxsize=None)
def _system_font(name: str):
    """A system font by file name at the labels' size, or None where it is not installed (or cannot be read)."""
    try:
        return ImageFont.truetype(name, LABEL_FONT_SIZE)
    except (OSError, ValueError):
        return None


def _drawn(name: str, ch: str) -> tuple[tuple[int, int], bytes]:
    """ch as the system font `name` draws it: its mask's size and pixels."""
    mask = _system_font(name).getmask(ch)
    return mask.size, bytes(mask)


@functools.lru_cache(maxsize=None)
def _missing_glyph(name: str) -> tuple[tuple[int, int], bytes]:
    """The glyph the system font `name` draws for a character it lacks (that of a private-use code point no font
    assigns), drawn once a font."""
    return _drawn(name, "\U0010fffd")


@functools.lru_cache(maxsize=4096)
def _has_glyph(name: str, ch: str) -> bool:
    """Whether the system font `name` draws ch as a glyph of its own: a character it lacks is drawn as its
    "missing" glyph, the same for every such character."""
    return _drawn(name, ch) != _missing_glyph(name)


def label_font(text: str):
    """The font to draw a label with where the built-in one has no glyph for some of its letters (drawable leaves
    them), or None (none of LABEL_FONTS is installed: boxes, as before)."""
    needed = {ch for ch in text if not ch.isascii() and not ch.isspace()}
    best, covered = None, 0
    for name in LABEL_FONTS:
        if _system_font(name) is None:
            continue
        has = sum(_has_glyph(name, ch) for ch in needed)
        if has == len(needed):
            return _system_font(name)
        if has > covered:
            best, covered = _system_font(name), has
    return best


def _label_head(text: str, width: int) -> str:
    """The start of text that two lines of `width` pixels can show (its words cut as _draw_label cuts them, and
    no more letters than two lines have pixels): the font is chosen for these letters alone, as the rest is not
    drawn (a 64 KB caption of Chinese, some 13,000 different characters, had each looked up in every font, a
    second a label, longer with more fonts installed)."""
    return " ".join(w[:width + 1] for w in text.split()[:2 * (width + 1)])[:2 * (width + 1)]


def _draw_label(draw: ImageDraw.ImageDraw, font, text: str, x: int, y: int, width: int) -> None:
    """Draw text in up to two lines that fit `width` pixels (in a system font where the built-in one cannot draw
    its letters: label_font), without the format characters that draw nothing (models.tokenizer.without_format): a
    right-to-left override (U+202E) drew "a red bird" as "a drib der", and an embedding or isolate reordered words."""
    if not text.isascii():
        from t2i_cli.models.tokenizer import without_format

        text = without_format(text)
    shown = drawable(text)
    # (the letters its two lines show: one past them, not drawn, chose a system font for a label shown in ASCII)
    if not (head := _label_head(shown, width)).isascii() and (system := label_font(head)) is not None:
        import unicodedata

        font, shown = system, unicodedata.normalize("NFC", text)  # (its accents too, which that font draws)
    # a word of more letters than the tile has pixels cannot fit (no glyph is under a pixel wide): cut before it is
    # measured, so a caption of one 64 KB word costs what a short one does
    words, lines, line = [w[:width + 1] for w in shown.split()], [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
            if len(lines) == 2:  # a third line begins: it is not shown (nor are the words after it measured)
                break
    lines.append(line)
    if len(lines) > 2:  # more than two lines: the second ends in "..." (the rest is not shown)
        lines = [lines[0], lines[1] + " ..."]
    for k, ln in enumerate(lines[:2]):
        draw.text((x, y + 11 * k), _fit(draw, font, ln, width), fill=(20, 20, 20), font=font)


def _fit(draw: ImageDraw.ImageDraw, font, text: str, width: int) -> str:
    """text cut to fit `width` pixels, ending in "..." where cut: a word wider than a small tile (`data preview
    --side 32`) ran into the next tile's picture."""
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)  # the longest prefix that fits with "...", by bisection (a caption of one 16,000-letter
    while lo < hi:  # word took minutes cut a letter at a time): text[:lo] fits, text[:hi + 1] does not
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "...", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    text = text[:lo]
    return text.rstrip() + "..." if text else ""


def _escape(value: str) -> str:
    """Make a metadata value safe for a PNG iTXt chunk: no NULs or other control characters, and no lone
    surrogates (a path of bytes that are not UTF-8, as Python decodes it), which UTF-8 cannot store."""
    return "".join(f"\\x{ord(ch):02x}" if ch not in "\n\t" and ord(ch) < 32 else
                   f"\\u{ord(ch):04x}" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in str(value))


def encode_png(img: Image.Image, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes of img with `text` stored as (UTF-8) iTXt chunks."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(_escape(key)[:79], _escape(value))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def save_png(img: Image.Image, path: Path, text: dict[str, str] | None = None) -> Path:
    """Write img as PNG atomically, with `text` stored as text chunks."""
    return atomic_write_bytes(Path(path), encode_png(img, text))


def read_png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG file, known by its content whatever its name ({} if it has none, or is another
    format, which is not decoded); raises DataError if it is not an image."""
    return read_png(path)[0]


def read_png(path: Path) -> tuple[dict[str, str], Image.Image | None]:
    """read_png_text's text chunks, and the PNG decoded to reach them (None for another format, not decoded):
    rgb_of makes load_rgb's picture of it without decoding the file again (rerank)."""
    try:
        with opened(path) as im:
            if im.format != "PNG":
                return {}, None
            im.load()  # (text chunks may follow the pixels; leaving `with` closes the file, not the pixels)
            return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}, im
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise unreadable(path, "image", e) from e


PLOT_COLOURS = ((40, 90, 220), (220, 100, 30), (40, 160, 70))


def line_plot(series: dict[str, list[tuple[float, float]]], title: str = "",
              size: tuple[int, int] = (480, 300)) -> Image.Image:
    """A minimal line chart of named series of (x, y) points (auto-scaled to all of them), for loss curves."""
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    points = [p for pts in series.values() for p in pts]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    left, right, top, bottom = 50, w - 10, 20, h - 25
    sx = (right - left) / max(x1 - x0, 1e-9)
    sy = (bottom - top) / max(y1 - y0, 1e-9)
    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    for k, (name, pts) in enumerate(series.items()):
        colour = PLOT_COLOURS[k % len(PLOT_COLOURS)]
        xy = [(left + (x - x0) * sx, bottom - (y - y0) * sy) for x, y in pts]
        if len(xy) >= 2:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy if len(xy) < 2 else ():
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((right - 90, top + 4 + 12 * k), name, fill=colour, font=font)
    draw.text((left, 4), title, fill=(0, 0, 0), font=font)
    draw.text((4, top), f"{y1:.3g}", fill=(0, 0, 0), font=font)
    draw.text((4, bottom - 10), f"{y0:.3g}", fill=(0, 0, 0), font=font)
    draw.text((left, bottom + 6), f"{x0:g}", fill=(0, 0, 0), font=font)
    draw.text((right - 40, bottom + 6), f"{x1:g}", fill=(0, 0, 0), font=font)
    return img
