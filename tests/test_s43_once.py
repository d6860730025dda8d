"""Work done once: `t2i export` reads each file of the runs it exports once (it read each model file three
times, a tokenizer six), `t2i data preview --crop` decodes each picture it shows once, and a 16-bit RGB PNG
with a transparent colour is decoded once more, not twice (bench/read_once.py measures them)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

import t2i_cli.weights as weights
from conftest import run


def t2i(*args) -> None:
    r = run(*args)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A tokenizer run, a dVAE run and a transformer run on them (tiny, a few steps)."""
    root = tmp_path_factory.mktemp("s43")
    torch.set_num_threads(1)
    common = ["--preset", "tiny", "--workers", "0", "-q"]
    t2i("train", "--stage", "tokenizer", "--out", root / "tok", "--preset", "tiny", "-q")
    t2i("train", "--stage", "dvae", "--steps", "2", "--out", root / "dvae", *common)
    t2i("train", "--stage", "transformer", "--steps", "1", "--dvae", root / "dvae", "--tokenizer", root / "tok",
        "--out", root / "tr", *common)
    return root


def read_spy(monkeypatch) -> collections.Counter:
    """(path, how) -> times: every whole read of a file (Path.read_bytes) and every safetensors open (with its
    tensors or the header alone) while the test runs."""
    seen: collections.Counter = collections.Counter()
    real_read, real_open = Path.read_bytes, weights._open

    def read_bytes(self):
        seen[self.resolve(), "bytes"] += 1
        return real_read(self)

    def _open(path, with_tensors):
        seen[Path(path).resolve(), "tensors" if with_tensors else "header"] += 1
        return real_open(path, with_tensors)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(weights, "_open", _open)
    return seen


@pytest.mark.parametrize("half", [False, True])
def test_export_reads_each_file_once(runs: Path, tmp_path: Path, monkeypatch, half: bool):
    tr = runs / "tr"
    expected = {name: (tr / name).read_bytes() for name in ("tokenizer.json", "dvae.safetensors",
                                                             "transformer.safetensors")}
    seen = read_spy(monkeypatch)
    t2i("export", tr, "--to", tmp_path / "w", *(["--half"] if half else []))
    for name in expected:
        src = (tr / name).resolve()
        assert seen[src, "bytes"] == 1, (name, seen)  # compared, checked and written from one read
        assert seen[src, "tensors"] == 0, (name, seen)  # (two more reads: the NaN check and a load for the config)
    monkeypatch.undo()
    written = {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()}
    if not half:
        assert written == expected  # the same bytes as the run's files
    else:
        assert written["tokenizer.json"] == expected["tokenizer.json"]
        for name in ("dvae.safetensors", "transformer.safetensors"):
            mine, meta = weights.load_tensors(tr / name)
            there, meta_there = weights.load_tensors(tmp_path / "w" / name)
            assert meta_there == meta and there.keys() == mine.keys()
            assert all(there[k].dtype == torch.float16 and torch.equal(there[k], v.half()) for k, v in mine.items())
    # the same export again reads each source and each file there once, and writes nothing
    seen = read_spy(monkeypatch)
    t2i("export", tr, "--to", tmp_path / "w", *(["--half"] if half else []))
    for name in expected:
        assert seen[(tr / name).resolve(), "bytes"] == 1, (name, seen)
        assert seen[(tmp_path / "w" / name).resolve(), "bytes"] == 1, (name, seen)
        assert seen[(tr / name).resolve(), "tensors"] == 0, (name, seen)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()} == written


def test_export_still_refuses_a_model_with_nan_weights(runs: Path, tmp_path: Path):
    """The NaN check now looks at the bytes the export writes: a NaN there is still refused, naming the file."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(runs / "tr", bad)
    tensors, meta = weights.load_tensors(bad / "transformer.safetensors")
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    weights.save_tensors(bad / "transformer.safetensors", tensors, meta)
    (bad / "checkpoint.safetensors").unlink(missing_ok=True)  # (its model would be exported instead)
    r = run("export", bad, "--to", tmp_path / "w")
    assert r.exit_code != 0
    assert f"{bad / 'transformer.safetensors'} holds NaN or infinite weights (1 tensor, e.g. {name})" in r.stderr
    assert not (tmp_path / "w").exists()


def decodes(monkeypatch) -> list[tuple[int, int]]:
    """The size of each picture Pillow decodes (a load with pixels to read) while the test runs."""
    from PIL import ImageFile

    sizes: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:
            sizes.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


def picture_folder(folder: Path, n: int = 5) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):  # each of its own size: the decodes are told apart by it
        Image.fromarray(rng.integers(0, 256, (60 + i, 80 + i, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"picture number {i}")
    return folder


@pytest.mark.parametrize("flags", [["--crop", "0.6"], ["--crop", "0.8", "--flip"]])
def test_data_preview_decodes_each_picture_once(tmp_path: Path, monkeypatch, flags: list[str]):
    """--crop decodes a picture larger than the sheet's side; the check of the source decoded each shown picture
    at the sheet's side (or at 8 pixels) and the sheet decoded it again at the crop's: now the check decodes it at
    the crop's side and the sheet shows that decode. The same sheet either way (the same load_rgb call)."""
    folder = picture_folder(tmp_path / "pics")
    decode_spy = decodes(monkeypatch)
    t2i("data", "preview", folder, "--out", tmp_path / "sheet.png", "--n", "3", "--side", "32", "-q", *flags)
    sizes = [(80 + i, 60 + i) for i in range(5)]
    assert sorted(decode_spy) == sizes, decode_spy  # each picture decoded once: the 3 shown and the 2 checked
    first = (tmp_path / "sheet.png").read_bytes()
    # the same pixels as a sheet made from a source opened without keeping its decodes (each decoded again)
    from t2i_cli import data

    dataset = data.open_source(str(folder), 32, keep=0)
    dataset.augment = data.Augment(0, "--flip" in flags, float(flags[1]))
    text = {"crop": flags[1], "flip": str("--flip" in flags).lower(), "seed": "0"}
    data.preview(str(folder), tmp_path / "again.png", n=3, side=32, dataset=dataset, text=text)
    assert (tmp_path / "again.png").read_bytes() == first


def keyed_png16(path: Path, pixels, key: tuple[int, int, int]) -> Path:
    """A 16-bit RGB PNG of these (h, w, 3) samples with the transparent colour key (tRNS)."""
    import struct
    import zlib

    import numpy as np

    a = np.asarray(pixels, dtype=np.uint16)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 16, 2, 0,
                                                                          0, 0))
                     + chunk(b"tRNS", struct.pack(">HHH", *key)) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def test_a_16_bit_png_whose_transparent_colour_marks_no_pixel_is_decoded_once(tmp_path: Path, monkeypatch):
    """The low bytes of a 16-bit RGB PNG with a transparent colour were read by decoding the file a second time,
    always; now only where some pixel's high bytes are the colour's. The same pixels either way: a pixel of the
    colour's high bytes and other low bytes stays opaque, one of the whole colour is transparent."""
    import numpy as np

    from t2i_cli import images

    key = (4096, 8192, 12288)
    a = np.full((40, 50, 3), 300 * 256 // 3, dtype=np.uint16)  # no pixel near the colour
    a[:, :25] = (60000, 0, 65535)
    sizes = decodes(monkeypatch)
    img = images.load_rgb(keyed_png16(tmp_path / "none.png", a, key), 40)
    assert sizes == [(50, 40)]  # once: nothing to read the low bytes for
    assert img.getpixel((2, 2)) == (234, 0, 255) and img.getpixel((38, 38)) == (100, 100, 100)
    with images.opened(tmp_path / "none.png") as im:  # and not copied: an RGBA copy of it, all opaque, was made
        im.load()
        keyed = images._keyed_png(im)
        assert keyed.im is im.im and "transparency" not in keyed.info and "transparency" in im.info
    b = a.copy()
    b[:20] = (4096 + 1, 8192, 12288)  # the colour's high bytes, other low bytes: opaque
    b[20:, 25:] = key  # the colour: transparent (on the white background)
    sizes.clear()
    img = images.load_rgb(keyed_png16(tmp_path / "some.png", b, key), 40)
    assert sizes == [(50, 40), (50, 40)]  # (the low bytes read where the high ones match)
    assert img.getpixel((2, 2)) == (16, 32, 48) and img.getpixel((38, 38)) == images.BACKGROUND


def test_info_reads_each_file_once_for_its_hashes(tiny_weights: Path, monkeypatch):
    """`t2i info` hashed every file of the folder for its identity, then read and hashed each again for the
    sha256 it shows: now both come from one read. The same hashes as each file's own sha256."""
    import hashlib
    import json

    folder = tiny_weights
    reads: collections.Counter = collections.Counter()
    real = weights.sha256_of

    def counted(path, *args, **kwargs):
        reads[Path(path).name] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(weights, "sha256_of", counted)
    r = run("info", "--weights", folder, "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    shown = json.loads(r.stdout)
    names = [p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".json")]
    assert reads and all(reads[name] == 1 for name in names), reads
    for part, entry in shown["models"].items():
        file = folder / ("tokenizer.json" if part == "tokenizer" else f"{part}.safetensors")
        assert entry["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest(), part
    assert shown["identity"] == weights.folder_hash(folder)
