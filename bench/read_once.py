"""Work done once, this build against an older one side by side: `t2i export` of a transformer run holding the
shipped models (each model file was read three times, the tokenizer up to six), `t2i data preview --crop` of a
folder of PNGs (each shown picture was decoded twice: by the source's check, then at the crop's side), and
images.load_rgb of a 16-bit RGB PNG with a transparent colour (tRNS) that marks no pixel (its file was always
decoded a second time for the samples' low bytes) and of one whose colour marks a quarter of it (still decoded
twice: the low bytes are needed there); `t2i info` of the shipped weights (folder_info: each file was read
and hashed twice, for the folder's identity and for its own sha256); and `t2i rerank DIR --top 4` of a folder of
PNGs with the shipped CLIP (rank_folder and write_top_sheet: each PNG was decoded two or three times, for its text,
its score and its tile on the sheet; its PNG decodes are counted, and the ranking's files, scores and the sheet's
bytes make its digest). Added for session 44 ("Work done once", hC): `t2i rerank DIR --top 4` of a folder of JPEGs
(each decoded for its score at the dVAE's side, 128, and again for its sheet tile at the CLIP's, 64), `rerank
--bits` of the PNG folder (add_bits decoded each again, a PNG of the dVAE's side twice: its picture and its
recorded codes), images.load_rgb of an 8-bit RGB PNG with a transparent colour (its header read four times), and
data._manifest_above under a 16 MiB metadata.csv that names none of the folder's pictures (read twice: its rows,
then its UTF-8 check). The rerank cases count their PNG and JPEG decodes.

Each case runs --reps times in a fresh Python process per build, the builds alternating; the seconds are the
operation's own (imports and the tiny setup excluded), the median of the runs. "same" says every build wrote the
same bytes (the exported files, the sheet, the decoded pixels). The older build is `git archive REV src` in a
temporary folder (--old, default the commit before these changes).

    PYTHONPATH=src python bench/read_once.py [--old 272f870] [--reps 5] [--cases rerank] [--skip export]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import hashlib, json, sys, time
from pathlib import Path
case, args = sys.argv[1], json.loads(sys.argv[2])
if case == "export":
    from t2i_cli.train import export_runs
    to = Path(args["to"])
    t = time.perf_counter()
    export_runs([Path(args["run"])], to, half=args["half"])
    t = time.perf_counter() - t
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(to.iterdir()))).hexdigest()
elif case == "preview":
    from t2i_cli.data import Augment, open_source, preview
    t = time.perf_counter()
    n, side, crop = args["n"], args["side"], args["crop"]
    import inspect
    if "keep_side" in inspect.signature(open_source).parameters:  # this build: each shown picture kept at the crop's
        decoded = Augment(0, False, crop).decoded_side(side)
        dataset = open_source(args["folder"], side, n_scenes=n, keep=n, keep_side=decoded)
    else:  # the older one: `data preview --crop` kept none (keep=0)
        dataset = open_source(args["folder"], side, n_scenes=n, keep=0)
    dataset.augment = Augment(0, False, crop)
    out = preview(args["folder"], Path(args["out"]), n=n, side=side, dataset=dataset)
    t = time.perf_counter() - t
    digest = hashlib.sha256(Path(out).read_bytes()).hexdigest()
elif case == "rerank":
    import inspect, shutil
    from collections import Counter
    from PIL import ImageFile
    from t2i_cli import rerank as rr
    from t2i_cli.pipeline import TextToImage
    decodes, load = Counter(), ImageFile.ImageFile.load
    def counted(im):
        if im.tile and getattr(im, "filename", None) and str(im.filename).endswith((".png", ".jpg")):
            decodes[str(im.filename)[-3:]] += 1
        return load(im)
    ImageFile.ImageFile.load = counted
    folder = Path(args["out"]).with_name("pics")
    shutil.copytree(args["folder"], folder)  # (a fresh copy each run: the sheet is written there)
    pipe = TextToImage.from_folder(Path(args["weights"]), "cpu", need_clip=True)
    side, k = pipe.bundle.clip.cfg.image_side, args["top"]
    t = time.perf_counter()
    bits = args.get("bits", False)
    if "squares" in inspect.signature(rr.rank_folder).parameters:  # this build: each PNG decoded once
        squares = rr.Squares({side: k} if k else {})
        if bits and hasattr(squares, "for_bits"):  # (session 44: --bits read from the same decode)
            squares.for_bits(pipe.bundle.dvae)
        ranked, _ = rr.rank_folder(pipe, folder, squares=squares)
        if bits:
            rr.add_bits(pipe, ranked, **({"squares": squares} if hasattr(squares, "for_bits") else {}))
        sheet = rr.write_top_sheet(folder, ranked, k, side, squares) if k else None
    else:
        ranked, _ = rr.rank_folder(pipe, folder)
        if bits:
            rr.add_bits(pipe, ranked)
        sheet = rr.write_top_sheet(folder, ranked, k, side) if k else None
    t = time.perf_counter() - t
    rows = [[r.path.name, r.prompt, r.score, r.rank, r.bits] for r in ranked]
    digest = hashlib.sha256(json.dumps(rows).encode() + (sheet.read_bytes() if sheet else b"")).hexdigest()
    said = ", ".join(f"{decodes[kind]} {kind.upper()}" for kind in ("png", "jpg") if decodes[kind])
    print(json.dumps({"decodes": said, "pictures": len(ranked)}), file=sys.stderr)
elif case == "above":
    from t2i_cli import data
    folder = Path(args["folder"])
    wanted = {data._key(p) for p in folder.iterdir()}
    t = time.perf_counter()
    said = data._manifest_above(folder, wanted)
    t = time.perf_counter() - t
    digest = hashlib.sha256(json.dumps([said[0], sorted(said[1]), str(said[2])]).encode()).hexdigest()
elif case == "info":
    from t2i_cli.weights import folder_info
    t = time.perf_counter()
    shown = folder_info(Path(args["folder"]))
    t = time.perf_counter() - t
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()
else:
    from t2i_cli.images import load_rgb
    t = time.perf_counter()
    img = load_rgb(Path(args["png"]), 128)
    t = time.perf_counter() - t
    digest = hashlib.sha256(img.tobytes()).hexdigest()
print(json.dumps([t, digest]))
"""


def keyed_png16(path: Path, w: int, h: int, key: tuple[int, int, int], marked: bool) -> Path:
    """A 16-bit RGB PNG of smooth colour with the transparent colour key; marked: its top-left quarter is key."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 65535 // w), (y * 65535 // h), ((x + y) * 32767 // (w + h))], axis=2).astype(np.uint16)
    a[(a[..., 0] >> 8 == key[0] >> 8) & (a[..., 1] >> 8 == key[1] >> 8) & (a[..., 2] >> 8 == key[2] >> 8)] ^= 0x100
    if marked:
        a[: h // 2, : w // 2] = key
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"tRNS", struct.pack(">HHH", *key)) + chunk(b"IDAT", zlib.compress(raw, 6))
                     + chunk(b"IEND", b""))
    return path


def setup(work: Path) -> dict[str, dict]:
    """The cases' inputs: a transformer run folder of the shipped models, a folder of captioned PNGs, two PNGs."""
    run = work / "run"
    run.mkdir()
    for name in ("tokenizer.json", "dvae.safetensors", "transformer.safetensors"):
        shutil.copy(ROOT / "weights" / name, run / name)
    config = {"stage": "transformer", "steps": 1, "seed": 0, "data": "world:train", "image_side": 64}
    (run / "train_config.json").write_text(json.dumps(config))  # (read_run_config fills in the rest)
    pics = work / "pics"
    pics.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):  # 3 megapixels each, smooth with noise (a photo-like PNG, slow to decode)
        y, x = np.mgrid[0:1500, 0:2000]
        a = np.stack([x * 255 // 2000, y * 255 // 1500, (x + y + 40 * i) % 256], axis=2)
        a = (a + rng.integers(0, 24, a.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(a).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text(f"picture {i}")
    ranked = work / "rerank"
    ranked.mkdir()
    for i in range(48):  # pictures as t2i draws them (128 px, their prompt in their text), 3 prompts; 6 of 768 px
        side = 768 if i % 8 == 0 else 128
        y, x = np.mgrid[0:side, 0:side]
        a = np.stack([x * 255 // side, y * 255 // side, (x * y // side + 30 * i) % 256], axis=2)
        a = (a + rng.integers(0, 32, a.shape)).clip(0, 255).astype(np.uint8)
        info = PngImagePlugin.PngInfo()
        info.add_itxt("prompt", ("a red bird", "a blue fish on the left", "two green cats")[i % 3])
        Image.fromarray(a).save(ranked / f"r{i:02d}.png", pnginfo=info)
    jpegs = work / "jpegs"
    jpegs.mkdir()
    for i in range(24):  # photos of 400 x 300 (less than 4 x 128 on their short side: one JPEG scale at 128 and 64)
        y, x = np.mgrid[0:300, 0:400]
        a = np.stack([x * 255 // 400, y * 255 // 300, (x * y // 300 + 30 * i) % 256], axis=2)
        a = (a + rng.integers(0, 32, a.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(a).save(jpegs / f"j{i:02d}.jpg", quality=90)
        (jpegs / f"j{i:02d}.txt").write_text(("a red bird", "a blue fish on the left", "two green cats")[i % 3])
    coded = work / "coded"  # the PNG folder, 12 of its 128 px pictures recording codes (random: not their pixels')
    shutil.copytree(ranked, coded)
    for i in range(12):
        im = Image.open(coded / f"r{i * 4 + 1:02d}.png")
        info = PngImagePlugin.PngInfo()
        info.add_itxt("prompt", im.text["prompt"])
        info.add_itxt("t2i_codes", base64.b64encode(rng.integers(0, 512, 256).astype("<u2").tobytes()).decode())
        im.save(coded / f"r{i * 4 + 1:02d}.png", pnginfo=info)
    key8 = Image.fromarray(rng.integers(0, 200, (1500, 2000, 3), dtype=np.uint8))
    key8.paste((250, 10, 10), (0, 0, 500, 500))
    key8.save(work / "key8.png", transparency=(250, 10, 10))
    above = work / "ds"
    (above / "train").mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (32, 32), (i * 60, 90, 30)).save(above / "train" / f"a{i}.png")
    with open(above / "metadata.csv", "w") as f:  # 16 MiB of rows naming other pictures
        f.write("file_name,text\n")
        line = "".join(f"other/b{i:07d}.png,a caption of a picture that is not here\n" for i in range(1000))
        for _ in range((16 << 20) // len(line) + 1):
            f.write(line)
    key = (20000, 30000, 40000)
    return {
        "export 3 shipped files (45 MB)": {"case": "export", "run": str(run), "half": False},
        "export --half": {"case": "export", "run": str(run), "half": True},
        "info of the shipped weights (every file hashed)": {"case": "info", "folder": str(ROOT / "weights")},
        "data preview --crop 0.6, 8 PNGs of 3 MP": {"case": "preview", "folder": str(pics), "n": 8, "side": 128,
                                                    "crop": 0.6},
        "rerank --top 4, 48 PNGs (42 of 128 px, 6 of 768 px)": {"case": "rerank", "folder": str(ranked), "top": 4,
                                                                 "weights": str(ROOT / "weights")},
        "rerank --top 4, 24 JPEGs of 400x300 (scored at 128, sheet at 64)": {
            "case": "rerank", "folder": str(jpegs), "top": 4, "weights": str(ROOT / "weights")},
        "rerank --bits, 48 PNGs (12 recording codes)": {"case": "rerank", "folder": str(coded), "top": 0, "bits": True,
                                                        "weights": str(ROOT / "weights")},
        "8-bit tRNS PNG 2000x1500, colour used": {"case": "png", "png": str(work / "key8.png")},
        "manifest above (16 MiB metadata.csv) naming none of 4 pictures": {"case": "above",
                                                                           "folder": str(above / "train")},
        "16-bit tRNS PNG 3000x2000, colour unused": {
            "case": "png", "png": str(keyed_png16(work / "unused.png", 3000, 2000, key, False))},
        "16-bit tRNS PNG 3000x2000, colour used": {
            "case": "png", "png": str(keyed_png16(work / "used.png", 3000, 2000, key, True))},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="272f870", help="the older build's commit")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cases", default="", help="run only the cases whose name holds this (e.g. rerank)")
    ap.add_argument("--skip", default="", help="leave out the cases whose name holds this (e.g. export)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="t2i-read-once-") as tmp:
        work = Path(tmp)
        old = work / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old, "src"], check=True,
                                 capture_output=True).stdout
        (work / "old.tar").write_bytes(archive)
        with tarfile.open(work / "old.tar") as tar:
            tar.extractall(old, filter="data")
        trees = {"old": old / "src", "new": ROOT / "src"}
        cases = {name: spec for name, spec in setup(work).items()
                 if args.cases in name and not (args.skip and args.skip in name)}
        decoded: dict[str, dict[str, set[str]]] = {c: {t: set() for t in trees} for c in cases}
        times: dict[str, dict[str, list[float]]] = {c: {t: [] for t in trees} for c in cases}
        digests: dict[str, set[str]] = {c: set() for c in cases}
        for rep in range(args.reps):
            for case, spec in cases.items():
                for tree, src in (trees.items() if rep % 2 == 0 else reversed(trees.items())):
                    spec = dict(spec)
                    out = work / f"out-{tree}"
                    shutil.rmtree(out, ignore_errors=True)
                    spec |= {"to": str(out / "w"), "out": str(out / "sheet.png")}
                    out.mkdir()
                    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
                    r = subprocess.run([sys.executable, "-c", PROBE, spec["case"], json.dumps(spec)], env=env,
                                       capture_output=True, text=True)
                    if r.returncode:
                        raise SystemExit(f"{case} ({tree}) failed:\n{r.stderr}")
                    t, digest = json.loads(r.stdout.strip().splitlines()[-1])
                    if spec["case"] == "rerank":  # (its PNG decodes, said after the table)
                        decoded[case][tree].add(r.stderr.strip().splitlines()[-1])
                    times[case][tree].append(t)
                    digests[case].add(digest)
        print("## Work done once (bench/read_once.py)\n")
        print(f"- date {time.strftime('%Y-%m-%dT%H:%M')}; {platform.platform()}; {os.cpu_count()} CPUs; load "
              f"{os.getloadavg()[0]:.1f}; Python {platform.python_version()}; old = {args.old}, new = this tree; "
              f"median of {args.reps}, one thread\n")
        print("| case | old s | new s | same bytes |\n|---|---:|---:|---|")
        for case in cases:
            old_s, new_s = (statistics.median(times[case][t]) for t in trees)
            print(f"| {case} | {old_s:.3f} | {new_s:.3f} | {'same' if len(digests[case]) == 1 else 'DIFFER'} |")
        for case in (c for c in cases if cases[c]["case"] == "rerank"):
            print(f"\n{case}: decodes " + "; ".join(f"{t} {', '.join(sorted(decoded[case][t]))}" for t in trees))


if __name__ == "__main__":
    main()
