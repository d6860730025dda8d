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
