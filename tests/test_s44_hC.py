"""Session 44, hC: work done once and code written once (images, rerank, data, name_captions), outputs unchanged."""

from __future__ import annotations

from pathlib import Path

from t2i_cli import name_captions
from t2i_cli.models import tokenizer


def test_name_captions_keycap_flag_and_number_marks_read_as_before():
    """The keycap, the subdivision flag and the "No." words are the tokenizer's / one definition: captions as before."""
    assert name_captions._KEYCAP == ord(tokenizer.KEYCAP) and name_captions._BLACK_FLAG == ord(tokenizer.BLACK_FLAG)
    cases = {"Symphony No. 5": "symphony no 5", "nr.3 track": "nr 3 track", "0023-fe0f-20e3": "keycap number sign",
             "1f3f4-e0067-e0062-e0065-e006e-e0067-e007f": "flag england", "u+0023 u+fe0f u+20e3": "keycap number sign",
             "#\ufe0f\u20e3 key": "keycap number sign key", "1\u20e3": "keycap digit one",
             "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F": "flag scotland"}
    assert {name: name_captions.caption_of(name) for name in cases} == cases


def _png(path, side=8, colour=(200, 30, 30)):
    from PIL import Image

    Image.new("RGB", (side, side), colour).save(path)
    return path


def test_manifest_above_naming_none_is_read_once_for_its_utf8_check(tmp_path, monkeypatch):
    """A metadata.csv above the folder that names none of its uncaptioned pictures: told UTF-8 or not from the bytes
    read for its rows (it was read again by _not_utf8_manifest); a Latin-1 one naming them is said as before."""
    from t2i_cli import data

    (tmp_path / "train").mkdir()
    a = _png(tmp_path / "train" / "a.png")
    wanted = {data._key(a)}
    checks = []
    real = data._not_utf8_manifest
    monkeypatch.setattr(data, "_not_utf8_manifest", lambda m: checks.append(m) or real(m))
    (tmp_path / "metadata.csv").write_bytes("file_name,text\ntrain/other.png,a caf\u00e9\n".encode())
    assert data._manifest_above(tmp_path / "train", wanted) == (None, set(), None, "")
    (tmp_path / "metadata.csv").write_bytes("file_name,text\ntrain/other.png,a caf\u00e9\n".encode("cp1252"))
    assert data._manifest_above(tmp_path / "train", wanted) == (None, set(), None, "")
    assert checks == []
    (tmp_path / "metadata.csv").write_bytes("file_name,text\ntrain/a.png,a caf\u00e9\n".encode("cp1252"))
    said, named, give, _ = data._manifest_above(tmp_path / "train", wanted)
    assert named == wanted and give == tmp_path and checks == []  # (the CSV's reader stops at the line, said)
    assert said == (f"{tmp_path / 'metadata.csv'} names 1 of the pictures here without a caption but is not UTF-8: "
                    f"save it as UTF-8 (a spreadsheet's \"CSV UTF-8\"), then give {tmp_path} as the source to read it")


def test_windows_paths_in_a_manifest_said_as_before(tmp_path):
    """The drive / network path reasons, one helper for the manifest source and a folder's manifest rows."""
    from pathlib import Path

    from t2i_cli import data

    assert data._windows_path(Path("C:\\ds\\a.png")) == data.WINDOWS_DRIVE
    assert data._windows_path(tmp_path / "C:/data/a.png") == data.WINDOWS_DRIVE
    assert data._windows_path(Path("\\\\server\\share\\a.png")) == data.NETWORK_PATH
    assert data._windows_path(tmp_path / "train\\a.png") is None


def _loads(monkeypatch) -> list[tuple[str, tuple]]:
    """Each decode Pillow makes while the test runs: the file's name and the rows it decodes (its tile's box)."""
    from PIL import ImageFile

    made: list[tuple[str, tuple]] = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:
            made.append((Path(str(getattr(self, "filename", ""))).name, tuple(self.tile[0][1])))
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return made


def _photo(path, w: int, h: int, seed: int = 0):
    import numpy as np
    from PIL import Image

    a = np.random.default_rng(seed).integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(a).resize((w, h), Image.BILINEAR).save(path, quality=90)
    return path


def test_load_rgbs_decodes_a_jpeg_once_for_sides_of_one_scale(tmp_path, monkeypatch):
    """load_rgbs(path, sides): load_rgb's bytes at each side, one decode for the sides whose JPEG scale is one (a
    200 x 150 JPEG at 32 and 64: not reduced at either), one a scale where they differ (2,400 px: 1/8 and 1/4)."""
    from t2i_cli import images

    small, large = _photo(tmp_path / "small.jpg", 200, 150), _photo(tmp_path / "large.jpg", 2400, 2000, 1)
    png = _png(tmp_path / "p.png", 90)
    want = {(p, s): images.load_rgb(p, s).tobytes() for p in (small, large, png) for s in (32, 64)}
    made = _loads(monkeypatch)
    for path, decodes in ((small, 1), (large, 2), (png, 1)):
        made.clear()
        got = images.load_rgbs(path, (32, 64))
        assert len(made) == decodes, made
        assert {s: got[s].tobytes() for s in got} == {s: want[path, s] for s in (32, 64)}


def test_reranks_jpeg_is_decoded_once_for_its_score_and_its_sheet_tile(tiny_weights, tmp_path, monkeypatch):
    """A JPEG scored at one side (the dVAE's) and shown on the --top sheet at another (the CLIP's) was decoded for
    each; now once (where its JPEG scale is one at both), the same sheet and scores."""
    from t2i_cli import rerank as rr
    from t2i_cli.pipeline import TextToImage

    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(3):
        _photo(folder / f"j{i}.jpg", 60 + 10 * i, 50, i)
        (folder / f"j{i}.txt").write_text("a red bird\n")
    pipe = TextToImage.from_folder(tiny_weights, "cpu", need_clip=True)
    monkeypatch.setattr(rr, "read_side", lambda pipe: 24)  # (scored at 24, the sheet at the CLIP's 16)
    side = pipe.bundle.clip.cfg.image_side
    ranked, _ = rr.rank_folder(pipe, folder)
    old = rr.write_top_sheet(folder, ranked, 3, side).read_bytes()
    made = _loads(monkeypatch)
    squares = rr.Squares({side: 3})
    again, _ = rr.rank_folder(pipe, folder, squares=squares)
    sheet = rr.write_top_sheet(folder, again, 3, side, squares)
    made = [m for m in made if m[0].endswith(".jpg")]  # (and the first sheet's text read: passed over)
    assert sorted(made) == sorted((f"j{i}.jpg", (0, 0, 60 + 10 * i, 50)) for i in range(3)), made
    assert [(r.path, r.score) for r in again] == [(r.path, r.score) for r in ranked] and sheet.read_bytes() == old


def test_rerank_bits_reads_each_png_once(tiny_weights, tmp_path, monkeypatch):
    """rerank --bits decoded every picture again for its bits (a PNG of the dVAE's side twice: its picture and its
    recorded codes); now from collect's decode (Squares.for_bits), the same bits, t2i's own PNGs and others."""
    from conftest import run
    from t2i_cli import rerank as rr
    from t2i_cli.pipeline import TextToImage

    folder = tmp_path / "pics"
    r = run("generate", "a red bird", "--n", "2", "--weights", tiny_weights, "--out", folder, "--seed", "5", "-q",
            "--threads", "1")
    assert r.exit_code == 0, r.stderr
    _png(folder / "mine.png", 16, (20, 200, 30))
    _png(folder / "other.png", 40, (20, 30, 200))
    for p in ("mine", "other"):
        (folder / f"{p}.txt").write_text("a red bird\n")
    pipe = TextToImage.from_folder(tiny_weights, "cpu", need_clip=True)
    before, _ = rr.rank_folder(pipe, folder)
    rr.add_bits(pipe, before)
    made = _loads(monkeypatch)
    squares = rr.Squares()
    squares.for_bits(pipe.bundle.dvae)
    ranked, _ = rr.rank_folder(pipe, folder, squares=squares)
    rr.add_bits(pipe, ranked, squares=squares)
    assert sorted(name for name, _ in made) == sorted(p.name for p in folder.glob("*.png")), made
    assert [(r.path, r.score, r.bits) for r in ranked] == [(r.path, r.score, r.bits) for r in before]
    assert not squares.kept and not squares.texts and squares.used == 0  # (let go once used)
    for budget in (0, 16 * 16 * rr.PIXEL_BYTES + 100):  # past the budget: read again where used, the same bits
        squares = rr.Squares(budget=budget)
        squares.for_bits(pipe.bundle.dvae)
        ranked, _ = rr.rank_folder(pipe, folder, squares=squares)
        assert squares.used <= budget
        rr.add_bits(pipe, ranked, squares=squares)
        assert [(r.path, r.score, r.bits) for r in ranked] == [(r.path, r.score, r.bits) for r in before]


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _keyed_png16(path, a, key, interlaced: bool = False):
    import struct
    import zlib

    passes = [a[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7] if interlaced else [a]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for p in passes if p.size for row in p)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    h, w = a.shape[:2]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, interlaced))
                     + chunk(b"tRNS", struct.pack(">HHH", *key)) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def test_a_16_bit_keyed_png_is_read_again_only_down_to_its_last_marked_row(tmp_path, monkeypatch):
    """The low bytes of a 16-bit PNG whose transparent colour marks pixels were decoded from the whole file again;
    now down to the last row where a pixel's high bytes are the colour's. The same pixels as the whole decode."""
    import numpy as np
    from PIL import Image

    from t2i_cli import images

    key = (4096, 8192, 12288)
    rng = np.random.default_rng(0)
    a = (rng.integers(0, 256, (60, 50, 3)) * 257).astype(np.uint16)
    a[(a >> 8 == np.array(key) >> 8).all(axis=2)] ^= 0x100
    a[5:12, 10:30] = key  # transparent
    a[15, :5] = (4096 + 1, 8192, 12288)  # the colour's high bytes, other low ones: opaque (row 15: the last)
    path = _keyed_png16(tmp_path / "k.png", a, key)
    shown = np.where((a == key).all(axis=2)[..., None], 255, a >> 8).astype(np.uint8)
    made = _loads(monkeypatch)
    got = images.load_rgb(path, 40)
    assert made == [("k.png", (0, 0, 50, 60)), ("k.png", (0, 0, 50, 16))], made
    assert got.tobytes() == images.square(Image.fromarray(shown), 40).tobytes()
    made.clear()  # an interlaced one: its passes span its height, so it is decoded whole again (the same pixels)
    assert images.load_rgb(_keyed_png16(tmp_path / "i.png", a, key, True), 40).tobytes() == got.tobytes()
    assert made == [("i.png", (0, 0, 50, 60))] * 2, made


def test_a_keyed_pngs_header_is_read_once_a_load(tmp_path, monkeypatch):
    """An 8-bit RGB PNG with a transparent colour (tRNS) had its header read again by _keyed_png three times a
    load_rgb (in _shown_square, square_rgb and to_rgb); once now, the same pixels."""
    from PIL import Image

    from t2i_cli import images

    im = Image.new("RGB", (30, 20), (10, 20, 30))
    im.paste((200, 0, 0), (0, 0, 10, 20))
    im.save(tmp_path / "k.png", transparency=(200, 0, 0))
    want = im.copy()
    want.paste(images.BACKGROUND, (0, 0, 10, 20))  # (the colour's pixels transparent, on the background)
    want = images.square(want, 16)
    opens = []
    real = images.opened
    monkeypatch.setattr(images, "opened", lambda path: opens.append(path) or real(path))
    got = images.load_rgb(tmp_path / "k.png", 16)
    assert len(opens) == 2, opens  # (its decode, and its header read for its depth)
    assert got.tobytes() == want.tobytes()


def test_an_image_prompts_source_is_decoded_once(tiny_weights, tmp_path, monkeypatch):
    """vary SRC / --image: a t2i PNG of the dVAE's side was decoded for its picture, then again for the codes it
    records (image_prompt.source_codes); once now, the same codes, for it, another PNG and a JPEG."""
    from conftest import run
    from t2i_cli.image_prompt import source_codes
    from t2i_cli.images import image_size, load_rgb, read_png_text
    from t2i_cli.pipeline import TextToImage

    r = run("generate", "a red bird", "--weights", tiny_weights, "--out", tmp_path / "g", "--seed", "3", "-q",
            "--threads", "1")
    assert r.exit_code == 0, r.stderr
    drawn = next((tmp_path / "g").glob("*.png"))
    dvae = TextToImage.from_folder(tiny_weights, "cpu").bundle.dvae
    side = dvae.cfg.image_side
    sources = [drawn, _png(tmp_path / "o.png", 40, (20, 30, 200)), _photo(tmp_path / "j.jpg", 60, 50)]
    want = [source_codes(dvae, p, load_rgb(p, side), read_png_text(p) if image_size(p) == (side, side) else {})
            for p in sources]
    made = _loads(monkeypatch)
    for path, codes in zip(sources, want, strict=True):
        made.clear()
        assert source_codes(dvae, path).tolist() == codes.tolist()
        assert [name for name, _ in made] == [path.name], made
