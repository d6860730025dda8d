"""Session 43's small leftovers (helper hJ), each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import data


def _picture(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade % 256, 90, 200)).save(path)
    return path


def test_from_folder_reads_no_split_folder_as_a_class(tmp_path: Path):
    """A Hugging Face layout of split folders: `--from folder` captioned ds/train/IMG_0001.png "train" and
    ds/validation/x.png "validation". A class folder under a split names its pictures; a split's own pictures
    have no words, and the other --from is said only where it would caption them."""
    ds = tmp_path / "ds"
    _picture(ds / "train" / "golden_retriever" / "IMG_0001.png", 1)
    _picture(ds / "Test" / "tabby_cat" / "IMG_0002.png", 2)
    _picture(ds / "train" / "IMG_0003.png", 3)  # a split's picture of no class: no words anywhere
    _picture(ds / "validation" / "IMG_0004.png", 4)
    _picture(ds / "val" / "IMG_0005.png", 5)
    plan = data.plan_captions(ds, "folder")
    assert {txt.relative_to(ds).as_posix(): caption for txt, (caption, _) in plan.writes.items()} == {
        "train/golden_retriever/IMG_0001.txt": "golden retriever", "Test/tabby_cat/IMG_0002.txt": "tabby cat"}
    assert sorted(p.relative_to(ds).as_posix() for p in plan.nameless) == [
        "train/IMG_0003.png", "val/IMG_0005.png", "validation/IMG_0004.png"]
    r = run("data", "caption", ds, "--from", "folder", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*.txt")) == [
        "Test/tabby_cat/IMG_0002.txt", "train/golden_retriever/IMG_0001.txt"]
    # the three left: their names hold no words either, so --from name is not said to try
    assert "3 pictures whose folder's name holds no words" in r.stderr and "try --from" not in r.stderr, r.stderr

    # a split folder alone (`ds/train/x.png`): no caption to write, and neither source is sent to the other
    flat = tmp_path / "flat"
    _picture(flat / "train" / "IMG_0006.png", 6)
    _picture(flat / "TRAIN" / "DSC00012.png", 7)
    for source in ("folder", "name"):
        line = one_line_failure(run("data", "caption", flat, "--from", source))
        assert line.startswith(f"error: no caption to write under {flat}: 2 pictures whose") and "try --from" \
            not in line, line
    assert not list(flat.rglob("*.txt"))
    # ... and training's refusal does not send to `data caption --from folder`, which would caption them "train"
    r = run("data", "preview", flat)
    assert r.exit_code != 0 and "--from folder" not in r.stderr and "data caption" not in r.stderr, r.stderr

    # the hint stays where a class folder is under the split
    classes = tmp_path / "classes"
    _picture(classes / "train" / "red_bird" / "IMG_0007.png", 8)
    r = run("data", "preview", classes)
    assert f"t2i data caption {classes} --from folder" in r.stderr, r.stderr


def test_generate_prompts_from_a_pipe_refuses_an_out_named_as_a_picture_before_reading_it(tmp_path: Path):
    """`generate --prompts - --out new/bird.png` was refused only once the pipe closed (a writer that keeps it open,
    `tail -f`, kept the refusal waiting): the picture suffixes lived in images.py, which imports torch. Now refused
    at once, in the same words, without torch."""
    import os
    import subprocess
    import sys

    from conftest import SRC, end_group

    env = dict(os.environ, PYTHONPATH=SRC, TMPDIR=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "t2i_cli", "generate", "--prompts", "-", "--out", "new/bird.png"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True, cwd=tmp_path)
    try:
        p.stdin.write(b"a red bird\n")
        p.stdin.flush()  # (and left open)
        try:
            code = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("generate --prompts - --out new/bird.png waited for its pipe to close") from None
        assert code == 2
        assert p.stderr.read().decode().splitlines() == [
            "error: --out new/bird.png names a file, but --out is the folder the images go in (each named from its "
            "prompt, e.g. a-red-bird-000.png); give a folder, e.g. --out new"]
    finally:
        end_group(p)
        p.stdin.close()
    assert not (tmp_path / "new").exists()
    # the check itself loads no torch
    r = subprocess.run([sys.executable, "-c", "import sys\nfrom pathlib import Path\nfrom t2i_cli.cli import "
                        "check_out_folder\ntry:\n    check_out_folder(Path('new/bird.png'))\nexcept Exception as e:\n"
                        "    print(type(e).__name__)\nprint('torch' in sys.modules)"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["UsageError", "False"], (r.stdout, r.stderr)


def test_rerank_decodes_each_png_once_for_its_text_its_score_and_its_sheet(tiny_weights: Path, tmp_path: Path,
                                                                           monkeypatch):
    """`t2i rerank DIR --top K --explain` decoded each PNG two to four times: read_png_text loads it to reach text
    chunks that may follow the pixels, the scoring read it again (load_rgb), and so did the --top sheet and
    --explain. Now the decode that reads its text makes the pictures it is scored and shown from: once each, and
    the same scores, skips and sheet as where none is kept (rerank.KEPT_BYTES 0: each read again, as before)."""
    import io
    import shutil
    import struct
    import zlib
    from collections import Counter

    import numpy as np
    from PIL import ImageFile

    from t2i_cli import rerank as rr
    from t2i_cli.images import encode_png

    pics = tmp_path / "pics"
    (pics / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)

    def noise(h: int, w: int, c: int = 3) -> Image.Image:
        return Image.fromarray(rng.integers(0, 256, (h, w, c), dtype=np.uint8).squeeze())

    for i in range(5):  # PNGs that carry their prompt (as t2i writes them), of two prompts
        (pics / f"p{i}.png").write_bytes(encode_png(noise(24, 32), {"prompt": "a red bird" if i < 3 else "a fish"}))
    for i in range(3):  # a folder of pairs, one of them RGBA and one a palette's
        noise(20, 20, 4 if i == 1 else 3).convert("P" if i == 2 else "RGBA" if i == 1 else "RGB").save(
            pics / "sub" / f"c{i}.png")
        (pics / "sub" / f"c{i}.txt").write_text("a red bird\n")
    raw = io.BytesIO()
    noise(18, 30).save(raw, "PNG")
    end = raw.getvalue().rfind(b"IEND") - 4  # its prompt after the pixels
    text = b"tEXt" + b"prompt\x00a fish"
    (pics / "late.png").write_bytes(raw.getvalue()[:end] + struct.pack(">I", len(text) - 4) + text
                                    + struct.pack(">I", zlib.crc32(text)) + raw.getvalue()[end:])
    noise(30, 20).save(pics / "j.jpg", quality=90)
    (pics / "j.txt").write_text("a fish\n")
    (pics / "broken.png").write_bytes((pics / "p0.png").read_bytes()[:120])  # cut short: skipped, unreadable
    (pics / "broken.txt").write_text("a fish\n")

    decodes: Counter = Counter()
    load = ImageFile.ImageFile.load

    def counted_load(self):
        if self.tile and getattr(self, "filename", None):  # (pixels still to decode: a decode of the file)
            decodes[Path(self.filename).name] += 1
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted_load)
    results = []
    for budget in (None, 0):
        folder = tmp_path / f"ranked-{budget}"
        shutil.copytree(pics, folder)
        if budget is not None:
            monkeypatch.setattr(rr, "KEPT_BYTES", budget)
        decodes.clear()
        r = run("rerank", folder, "--weights", tiny_weights, "--device", "cpu", "--top", "2", "--explain")
        assert r.exit_code == 0, r.stderr
        assert "skipped 1 unreadable picture" in r.stderr, r.stderr
        sheets = sorted(folder.glob("ranking-top-*.png"))
        assert len(sheets) == 1
        results.append((r.stdout.replace(str(folder), "DIR"), r.stderr.replace(str(folder), "DIR"),
                        (folder / "ranking.json").read_bytes(), sheets[0].read_bytes()))
        pngs = [p.name for p in pics.rglob("*.png")]
        if budget is None:  # each PNG decoded once (the JPEG's pictures of two sides are two reduced decodes)
            assert {name: decodes.get(name) for name in pngs} == dict.fromkeys(pngs, 1), decodes
        else:  # (read again where none is kept: the count counts)
            assert max(decodes[name] for name in pngs) >= 3, decodes
    assert results[0] == results[1]  # the same ranking, scores, skips and sheet, bytes for bytes
