"""Data sources: the world, folders of image + .txt pairs, JSONL manifests, skipping bad files, writing."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader

from t2i_cli import data, images, world
from t2i_cli.errors import DataError
from t2i_cli.world import SceneSpec


def make_image(path: Path, colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def make_pair(folder: Path, stem: str, caption: str, **kw) -> Path:
    image = make_image(folder / f"{stem}.png", **kw)
    (folder / f"{stem}.txt").write_text(caption)
    return image


def digest(path: Path) -> str:
    """The sha256 of an image file's bytes, which decides its side of a folder's or manifest's split."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def colour(i: int) -> tuple[int, int, int]:
    """A colour of its own for each i < 2**18, so pictures made with it differ in their bytes."""
    return (i % 64 * 4, i // 64 % 64 * 4, i // 4096 % 64 * 4)


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """Three good pairs (one in a subfolder, one with three captions), three bad ones and a lone caption."""
    folder = tmp_path / "pics"
    make_pair(folder, "a", "a red square\n")
    make_pair(folder / "sub", "b", "a green square", colour=(30, 200, 30))
    make_pair(folder, "c", "first caption\n\n  second caption  \nthird caption\n", colour=(30, 30, 200))
    make_pair(folder, "empty", "  \n\n")  # empty caption
    (folder / "corrupt.png").write_bytes(b"this is not a png at all")
    (folder / "corrupt.txt").write_text("a corrupt image")
    full = make_image(tmp_path / "full.png", size=(64, 64)).read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    (folder / "truncated.txt").write_text("a truncated image")
    (folder / "sub" / "orphan.txt").write_text("a caption whose image is missing")
    (folder / "sub" / "a.txt").write_text("a.png is in the folder above, not beside it")
    (folder / "LONE.TXT").write_text("upper-case suffix, no image")
    return folder


# ----------------------------------------------------------------------------- the world
def test_world_source_renders_scenes_by_index():
    ds = data.open_source("world:val", 32, n_scenes=10)
    assert len(ds) == 10 and ds.skipped == {} and ds.skipped_message() is None
    x, caption = ds[3]
    img, expected_caption, _ = world.scene("val", 3, 32)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert caption == expected_caption
    assert torch.equal(x, torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255)
    assert data.open_source("world", 32, n_scenes=4)[0][1] == world.scene("train", 0, 32)[1]
    with pytest.raises(IndexError):
        ds[10]
    images, captions = next(iter(DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 3, 32, 32) and len(captions) == 4


def test_unknown_world_split_is_a_data_error():
    with pytest.raises(DataError, match="world:val"):
        data.open_source("world:test", 32)


def test_world_captions_need_no_rendering(monkeypatch):
    ds = data.open_source("world:heldout", 32, n_scenes=50)
    monkeypatch.setattr(world, "render", lambda *a, **k: pytest.fail("captions() rendered an image"))
    caps = list(data.captions(ds))
    assert caps == [world.scene_caption("heldout", i)[0] for i in range(50)]
    assert list(data.captions(ds, limit=7)) == caps[:7]


# ----------------------------------------------------------------------------- folders and manifests
def test_a_folders_captions_past_the_tokenizers_limit_are_spread_over_all_of_it(tmp_path):
    """The tokenizer learned from the first captions in path order only: a later sub-folder's words (here
    sub-folder b's, after a's) never reached it, silently. Past the limit, captions are taken evenly."""
    for i in range(30):
        make_pair(tmp_path / "a", f"a{i:02d}", f"a red apple number {i}\nanother line {i}", colour=colour(i))
    for i in range(10):
        make_pair(tmp_path / "b", f"b{i:02d}", f"a giraffe in the zoo {i}", colour=colour(100 + i))
    ds = data.open_source(str(tmp_path), 16)
    every = list(data.captions(ds))
    assert data.caption_count(ds) == len(every) == 70
    some = list(data.captions(ds, limit=14))
    assert len(some) == 14 and len(set(some)) == 14 and set(some) <= set(every)
    assert [every.index(c) for c in some] == list(range(4, 70, 5))  # one in five, in order
    assert sum("giraffe" in c for c in some) == 2  # b's share (10 of 70) of the 14
    assert list(data.captions(ds, limit=70)) == every == list(data.captions(ds, limit=1000))


def test_folder_skips_bad_files_and_reports_them(messy_folder):
    ds = data.open_source(str(messy_folder), 16)
    assert len(ds) == 3
    assert ds.skipped == {"unreadable image": 2, "empty caption": 1, ".txt caption without image": 3}
    message = ds.skipped_message()
    assert "2 unreadable images" in message and "1 empty caption" in message and "\n" not in message
    assert "3 .txt captions without image" in message
    for i in range(len(ds)):
        x, caption = ds[i]
        assert x.shape == (3, 16, 16) and caption
    assert ds[0][1] == "a red square" and ds[0][0][0].mean() > 0.7  # files in sorted order, each its own image
    assert ds[2][1] == "a green square" and ds[2][0][1].mean() > 0.7  # found in the subfolder


def test_multi_line_captions_pick_one_per_epoch(messy_folder):
    ds = data.open_source(str(messy_folder), 16)
    index = next(i for i in range(len(ds)) if len(ds.captions_at(i)) == 3)
    seen = set()
    for epoch in range(3):
        ds.epoch = epoch
        seen.add(ds[index][1])
        assert ds[index][1] == ds[index][1]  # deterministic within an epoch
    assert seen == {"first caption", "second caption", "third caption"}
    assert sorted(data.captions(ds)) == sorted(["a red square", "a green square", "first caption",
                                                "second caption", "third caption"])


def test_images_are_resized_on_the_short_side_and_centre_cropped(tmp_path):
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # a blue middle third: the centre crop of a 3:1 image
    img.save(tmp_path / "wide.png")
    (tmp_path / "wide.txt").write_text("a blue square")
    x, _ = data.open_source(str(tmp_path), 12)[0]
    assert x.shape == (3, 12, 12) and x[2].mean() > 0.9 and x[0].mean() < 0.1


def test_jsonl_manifest_with_relative_paths(tmp_path):
    make_image(tmp_path / "imgs" / "one.png")
    make_image(tmp_path / "imgs" / "two.jpg", colour=(0, 0, 250))
    lines = [json.dumps({"image": "imgs/one.png", "caption": "a red square"}),
             json.dumps({"image": "imgs/two.jpg", "caption": "a blue square"}),
             json.dumps({"image": "imgs/missing.png", "caption": "nothing here"}),
             json.dumps({"image": "imgs/one.png", "caption": ""}),
             "{not json", ""]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("\n".join(lines))
    ds = data.open_source(str(manifest), 8)
    assert [ds[i][1] for i in range(len(ds))] == ["a red square", "a blue square"]
    assert ds.skipped == {"missing image": 1, "empty caption": 1, "manifest line not JSON in UTF-8": 1}
    assert ds[1][0][2].mean() > 0.9


def test_manifest_lines_that_are_not_pairs_are_bad_lines_and_a_bom_is_not_text(tmp_path):
    """Each line stands alone: one that is not UTF-8, nested past Python's recursion limit, too long, or has an
    image or caption of the wrong type is a bad line (a Latin-1 byte refused the whole manifest, deep nesting
    was an internal error, a dict caption became its key); a byte-order mark starts no caption."""
    make_image(tmp_path / "one.png")
    good = json.dumps({"image": "one.png", "caption": "a red square"}).encode()
    bad = [b'{"image": "one.png", "caption": "caf\xe9"}', b"[" * 200_000 + b"]" * 200_000,
           json.dumps({"image": "one.png", "caption": {"a dict": 1}}).encode(),
           json.dumps({"image": None, "caption": "x"}).encode(), json.dumps({"image": 123, "caption": "x"}).encode(),
           json.dumps({"image": "one.png", "caption": "x" * (data.MAX_MANIFEST_LINE + 10)}).encode()]
    manifest = tmp_path / "m.jsonl"
    last = json.dumps({"image": "one.png", "caption": ["a square", "red"]}).encode()
    manifest.write_bytes(b"\xef\xbb\xbf" + b"\n".join([good, *bad, last]) + b"\n")
    ds = data.open_source(str(manifest), 8)
    assert [ds.captions_at(i) for i in range(len(ds))] == [["a red square"], ["a square", "red"]]
    # each kind of bad line named as such (all were "bad manifest line", which told the user nothing to mend)
    not_json, typed = "manifest line not JSON in UTF-8", 'manifest line whose "image" is not a string'
    kinds = {not_json: [2, 3], typed: [4, 5, 6], "manifest line over 1 MiB": [7]}
    assert {k[:len(typed)]: n for k, n in ds.skipped.items()} == {k: len(v) for k, v in kinds.items()}
    # the first bad one of each kind
    assert f"2 manifest lines not JSON in UTF-8, e.g. {manifest} line 2" in ds.skipped_message()
    # each one kept only when `data preview --list-skipped` asks (a million bad lines held 80 MB for one warning)
    assert ds.every == {} and data._scan_manifest(manifest)[1].every == {}  # not even while it is read
    listed = data.open_source(str(manifest), 8, list_skipped=True)
    assert {k[:len(typed)]: v for k, v in listed.every.items()} == {
        k: [f"{manifest} line {n}" for n in v] for k, v in kinds.items()}


def test_a_manifest_line_without_the_two_names_or_naming_a_folder_says_so(tmp_path):
    """A line with "IMAGE" for "image", a JSON list, or an "image" that is a folder: each said as what it is (a bad
    line, a "missing image" for the folder)."""
    make_image(tmp_path / "imgs" / "one.png")
    lines = [{"IMAGE": "imgs/one.png", "caption": "a red square"}, ["imgs/one.png", "a red square"],
             {"image": "imgs", "caption": "a folder"}, {"image": "imgs/one.png", "caption": "a red square"}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(map(json.dumps, lines)))
    ds = data.open_source(str(manifest), 8, val_fraction=0.0)
    assert len(ds) == 1 and ds.skipped == {
        'manifest line without both "image" and "caption" (or "file_name" and "text", "caption" or "prompt"; names are '
        'case-sensitive)': 2,
        "image path naming a folder": 1}
    assert f"{tmp_path / 'imgs'}" in ds.skipped_message()


def test_a_caption_is_cut_into_lines_at_line_breaks_only(tmp_path):
    """str.splitlines also splits at a form feed, U+2028 and file/group separators: one caption became three."""
    make_pair(tmp_path, "a", "")
    (tmp_path / "a.txt").write_text("a red caption with\u2028a line separator and \x0ca form feed\r\nsecond\rthird\n",
                                    encoding="utf-8", newline="")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0)
    assert ds.captions_at(0) == ["a red caption with\u2028a line separator and \x0ca form feed", "second", "third"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_a_utf16_manifest_says_so(tmp_path, encoding):
    """Saved as UTF-16 (Notepad's "Unicode"), it was "found only: 3 bad manifest line"."""
    make_image(tmp_path / "one.png")
    manifest = tmp_path / "m.jsonl"
    bom = {"utf-16-be": b"\xfe\xff", "utf-32-be": b"\x00\x00\xfe\xff"}.get(encoding, b"")
    manifest.write_bytes(bom + '{"image": "one.png", "caption": "a red square"}\n'.encode(encoding))
    with pytest.raises(DataError, match="m.jsonl is saved as UTF-16 or UTF-32; save it as UTF-8"):
        data.open_source(str(manifest), 8)


def test_a_sub_folder_that_cannot_be_listed_is_counted_and_named(tmp_path, monkeypatch):
    """os.walk passed over a folder it could not list (no permission) without a word: its pictures were left
    out of the training set silently."""
    import os

    make_pair(tmp_path / "ok", "a", "a red square")
    make_pair(tmp_path / "ok", "b", "a blue square", colour=(10, 10, 200))
    make_pair(tmp_path / "locked", "c", "a green square", colour=(10, 200, 10))
    real = os.scandir

    def denied(path="."):
        if Path(path).name == "locked":  # as `chmod 000 locked` does to anyone but root
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0)
    assert len(ds) == 2 and ds.skipped == {"folder that cannot be read (permission?)": 1}
    assert f"1 folder that cannot be read (permission?): {tmp_path / 'locked'}" in ds.skipped_message()


def test_a_copy_of_a_pair_is_left_out_so_it_cannot_sit_in_train_and_val(tmp_path):
    """The same picture and caption under two names (a copy in the folder) only adds weight (it once landed in
    both parts of the split, which went by file name, and flattered validation): the second is skipped and
    named; the same picture with another caption stays (several captions of one picture are legitimate), in
    the part of its original."""
    make_pair(tmp_path, "battery", "a battery")
    (tmp_path / "dup32.png").write_bytes((tmp_path / "battery.png").read_bytes())
    (tmp_path / "dup32.txt").write_text("a battery\n")
    (tmp_path / "other.png").write_bytes((tmp_path / "battery.png").read_bytes())
    (tmp_path / "other.txt").write_text("a green battery icon\n")
    ds = data.open_source(str(tmp_path), 8)
    assert sorted(p.name for p, _ in ds.pairs) == ["battery.png", "other.png"]
    assert ds.skipped == {"copy of another pair (same image bytes and captions)": 1}
    assert f": {tmp_path / 'dup32.png'}" in ds.skipped_message()
    # and which picture it copies (the one kept, first by path, may be the user's original)
    assert f"{tmp_path / 'dup32.png'} (the same as {tmp_path / 'battery.png'}, which is used)" in ds.skipped_message()


def test_a_folder_follows_links_to_folders_once_each_without_looping(tmp_path):
    """A folder of links to where the pictures live trains on them; a link back up the tree is no loop, and a
    second link to one folder does not list its pictures again."""
    photos, root = tmp_path / "photos", tmp_path / "data"
    make_pair(photos, "cat", "a cat", colour=(10, 20, 30))
    make_pair(root, "dog", "a dog", colour=(200, 20, 30))
    (root / "linked").symlink_to(photos, target_is_directory=True)
    (root / "again").symlink_to(photos, target_is_directory=True)
    (root / "up").symlink_to(root, target_is_directory=True)
    ds = data.open_source(str(root), 8)
    assert sorted(c for i in range(len(ds)) for c in ds.captions_at(i)) == ["a cat", "a dog"]
    assert ds.skipped == {}


def test_caption_files_lose_their_bom_and_an_oversized_one_is_skipped_unread(tmp_path):
    make_image(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfa caption with a bom\n")
    make_image(tmp_path / "b.png")
    (tmp_path / "b.txt").write_text("a caption\n" * (data.MAX_CAPTION_FILE // 10 + 1))
    ds = data.open_source(str(tmp_path), 8)
    assert [ds.captions_at(i) for i in range(len(ds))] == [["a caption with a bom"]]
    assert ds.skipped == {"caption file over 64 KB": 1}


def test_a_picture_keeps_its_first_64_captions_and_a_manifest_line_its_first_64_kilo_characters(tmp_path):
    """Every caption line is a string of its own: 363 caption files of 20,000 three-byte lines held 413 MB (and
    a training run 4.3 GB for 1,452 of them). A picture keeps its first MAX_CAPTIONS, the rest counted; a
    manifest line whose captions hold more than a caption file may is left out."""
    make_pair(tmp_path / "f", "many", "first")
    (tmp_path / "f" / "many.txt").write_text("".join(f"c{i}\n" for i in range(data.MAX_CAPTIONS + 36)))
    make_pair(tmp_path / "f", "few", "just one")
    ds = data.open_source(str(tmp_path / "f"), 8)
    assert sorted(map(len, (ds.captions_at(i) for i in range(len(ds))))) == [1, data.MAX_CAPTIONS]
    assert [f"c{i}" for i in range(data.MAX_CAPTIONS)] in [ds.captions_at(i) for i in range(len(ds))]
    assert ds.skipped == {data.TOO_MANY_CAPTIONS: 1}
    assert ds.skipped_message() == (f"using {len(ds)}" + (f" ({ds.held_out} more held out for validation)"
                                                          if ds.held_out else "")
                                    + f"; 1 picture has over 64 captions: the first 64 of each are used: "
                                      f"{tmp_path / 'f' / 'many.txt'}")  # no picture is said to be skipped

    make_image(tmp_path / "m" / "one.png")
    rows = [{"image": "one.png", "caption": [f"c{i}" for i in range(70)]},
            {"image": "one.png", "caption": ["x" * 40_000, "y" * 40_000]},
            {"image": "one.png", "caption": "z" * 60_000}]
    (tmp_path / "m" / "m.jsonl").write_text("\n".join(map(json.dumps, rows)))
    ds = data.open_source(str(tmp_path / "m" / "m.jsonl"), 8)
    assert sorted(map(len, (ds.captions_at(i) for i in range(len(ds))))) == [1, data.MAX_CAPTIONS]
    assert ds.skipped == {data.TOO_MANY_CAPTIONS: 1, "manifest line whose captions hold over 65,536 characters": 1}


def test_captions_in_utf16_and_upper_case_names_are_read_and_other_encodings_say_why_not(tmp_path):
    """A new user's folder: Notepad's "Unicode" (UTF-16 with its byte-order mark) and a camera's IMG_0001.PNG +
    IMG_0001.TXT were "unreadable caption" and "image without .txt caption"; a Latin-1 caption is still left out
    (no guessing of code pages), now saying why."""
    make_image(tmp_path / "a.png", colour=(10, 20, 30))
    (tmp_path / "a.txt").write_bytes("a café in the rain\n".encode("utf-16"))
    make_image(tmp_path / "IMG_0001.PNG", colour=(200, 20, 30))
    (tmp_path / "IMG_0001.TXT").write_text("a red square\n")
    make_image(tmp_path / "c.png", colour=(20, 200, 30))
    (tmp_path / "c.txt").write_bytes("a crème brûlée\n".encode("latin-1"))
    make_image(tmp_path / "d.tif", colour=(20, 20, 200))  # TIFF: read by --image, and now by a folder too
    (tmp_path / "d.txt").write_text("a blue square\n")
    make_image(tmp_path / "e.png", colour=(120, 20, 200))
    (tmp_path / "e.txt").write_bytes("a cat\n".encode("utf-32"))  # with its byte-order mark (it was read as UTF-16)
    make_image(tmp_path / "f.png", colour=(20, 120, 200))
    (tmp_path / "f.txt").write_bytes("a dog\n".encode("utf-16-le"))  # no byte-order mark: NULs, not a caption
    make_image(tmp_path / "g.png", colour=(220, 120, 20))
    (tmp_path / "g.Txt").write_text("second by name\n")
    (tmp_path / "g.TXT").write_text("first by name\n")
    ds = data.open_source(str(tmp_path), 8)
    assert sorted(c for i in range(len(ds)) for c in ds.captions_at(i)) == [
        "a blue square", "a café in the rain", "a cat", "a red square", "first by name"]
    assert ds.skipped == {"caption not in UTF-8 or UTF-16 (save it as UTF-8)": 1,  # c.txt, Latin-1
                          "caption holding a NUL character (UTF-16 without its byte-order mark, or not text: save "
                          "it as UTF-8)": 1,  # f.txt
                          "second caption file of one name (read: g.TXT)": 1}
    assert "c.txt" in ds.skipped_message() and "g.Txt" in ds.skipped_message()


def test_a_t2i_run_inside_the_data_folder_is_not_read_as_data(tmp_path):
    """`t2i train --stage all --data . --out runs/mine` read its own samples and loss plots back as pictures (and
    said so twice, with growing counts); a folder holding a run's train_config.json or all.json, as t2i writes
    them, is left out, counted once. A folder of pictures with an all.json of its own is data."""
    make_pair(tmp_path, "cat", "a cat", colour=(10, 20, 30))
    make_pair(tmp_path, "dog", "a dog", colour=(200, 20, 30))
    run = tmp_path / "runs" / "mine"
    make_pair(run / "dvae" / "samples", "step-000010", "not data")
    (run / "all.json").write_text(json.dumps({"data": ".", "preset": "tiny"}))
    (run / "dvae" / "train_config.json").write_text(json.dumps({"stage": "dvae", "data": "."}))
    make_pair(tmp_path / "runs" / "other", "x", "not data either")
    (tmp_path / "runs" / "other" / "train_config.json").write_text(json.dumps({"stage": "clip", "data": "."}))
    make_pair(tmp_path / "photos", "owl", "an owl", colour=(20, 200, 30))
    (tmp_path / "photos" / "all.json").write_text(json.dumps([{"file": "owl.png"}]))  # the user's own index
    (tmp_path / "photos" / "train_config.json").write_text(json.dumps({"stage": "finetune", "data": "x"}))
    ds = data.open_source(str(tmp_path), 8)
    assert sorted(c for i in range(len(ds)) for c in ds.captions_at(i)) == ["a cat", "a dog", "an owl"]
    assert ds.skipped == {"t2i run folder (its samples are not data)": 2}
    from t2i_cli.files import PLAN
    from t2i_cli.train import RUN_CONFIG

    assert data.RUN_MARKERS == (RUN_CONFIG, PLAN)  # the names a stage's and a whole run's folder are known by


@pytest.mark.parametrize("mode, key", [("RGB", (0, 0, 0)), ("L", 0), ("P", 0)])
def test_a_png_with_a_transparent_colour_is_composited_on_white(tmp_path, mode, key):
    """An RGB or grey PNG that marks one colour transparent (tRNS) loaded as that colour (black here): only a
    palette's transparency was composited."""
    im = Image.new(mode, (20, 20), 0)
    im.paste(Image.new(mode, (10, 20), 1 if mode == "P" else (200 if mode == "L" else (200, 30, 30))))
    im.save(tmp_path / "t.png", transparency=key)
    got = np.asarray(images.load_rgb(tmp_path / "t.png", 20))
    assert (got[:, 12:] == 255).all()  # the transparent half: the background, white
    assert (got[:, :8] != 255).any()  # the opaque half keeps its colour


def test_a_float_tiff_of_values_in_0_to_1_loads_as_grey_levels_not_black(tmp_path):
    """Folders read TIFF since 0.9.1; a float TIFF (mode F) holds 0..1, which loaded as all black (0 or 1 of 255)."""
    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (64, 1))
    Image.fromarray(ramp, mode="F").save(tmp_path / "ramp.tif")
    rgb = np.asarray(images.load_rgb(tmp_path / "ramp.tif", 64))
    assert rgb[:, 0].max() <= 2 and rgb[:, -1].min() >= 253 and abs(int(rgb[32, 32, 0]) - 130) <= 3, rgb[32, :, 0]
    Image.fromarray(ramp * 1000, mode="F").save(tmp_path / "wide.tif")  # not 0..1: scaled by its maximum, as before
    assert np.asarray(images.load_rgb(tmp_path / "wide.tif", 64))[:, -1].min() >= 253


def test_a_photo_loads_the_way_its_exif_orientation_shows_it(tmp_path):
    """A phone stores a portrait photo sideways with an orientation tag; it trains (and prompts) upright."""
    from t2i_cli.images import load_rgb

    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show: red on top
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    shown = np.asarray(load_rgb(tmp_path / "photo.jpg", 20)).astype(int)
    assert shown[:5, :, 0].mean() > 200 and shown[-5:, :, 2].mean() > 200, shown[:, :, 0].mean(1)
    from t2i_cli.images import image_size

    assert image_size(tmp_path / "photo.jpg") == (20, 40)  # as shown: a mask drawn over it has this shape


def test_a_long_thin_picture_is_resized_no_larger_than_the_square_it_becomes(tmp_path, monkeypatch):
    """The centre square alone is resampled: a 200,000 x 4 strip (2 KB of PNG, under Pillow's pixel limit) was
    first blown up to 3.2 M x 64 pixels (4 GB); a square picture's pixels are what a plain resize gives."""
    from t2i_cli.images import load_rgb

    Image.new("RGB", (200_000, 4), (200, 10, 10)).save(tmp_path / "strip.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "square.png")
    sizes, resize = [], Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda im, size, *a, **k: sizes.append(size) or resize(im, size, *a,
                                                                                                           **k))
    strip = load_rgb(tmp_path / "strip.png", 64)
    assert strip.size == (64, 64) and sizes == [(64, 64)]
    assert np.asarray(strip).reshape(-1, 3).tolist().count([200, 10, 10]) == 64 * 64
    with Image.open(tmp_path / "square.png") as im:
        want = im.convert("RGB").resize((32, 32), Image.LANCZOS)
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "square.png", 32)), np.asarray(want))


def test_an_upright_rgba_picture_is_read_without_extra_full_size_copies(tmp_path, monkeypatch):
    """A picture that is under Pillow's pixel bound but large (88 megapixels of RGBA in a 0.7 MB PNG) took 2.2 GB
    to read: an upright one was copied by exif_transpose, and an RGBA one converted to RGBA. The same pixels come
    out without those copies."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (90, 70, 4), dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        im.load()
        want = images.square(images.to_rgb(ImageOps.exif_transpose(im)), 32)  # the old way
    copies = []
    real_transpose, real_convert = ImageOps.exif_transpose, Image.Image.convert
    monkeypatch.setattr(ImageOps, "exif_transpose", lambda im, **k: copies.append("transpose") or real_transpose(im))
    monkeypatch.setattr(Image.Image, "convert",
                        lambda self, mode=None, *a, **k: copies.append(f"{self.mode}->{mode}") or real_convert(
                            self, mode, *a, **k))
    got = images.load_rgb(tmp_path / "a.png", 32)
    assert got.tobytes() == want.tobytes()
    assert "transpose" not in copies and "RGBA->RGBA" not in copies, copies


def test_a_photo_with_a_broken_exif_block_loads_without_pillows_warnings(tmp_path):
    """A tag whose data runs past the EXIF block made Pillow print a two-line UserWarning per read (once per
    epoch in training); the picture reads, its readable orientation is kept, and nothing is printed."""
    import warnings

    from t2i_cli.images import image_size, load_mask_cells, load_rgb

    exif = Image.Exif()
    exif[0x0112] = 6  # readable: turn a quarter
    exif[0x010E] = "x" * 200  # a description whose bytes the truncation below cuts off
    Image.new("RGB", (40, 20), (255, 255, 255)).save(tmp_path / "photo.jpg", exif=exif.tobytes()[:60])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with Image.open(tmp_path / "photo.jpg") as im:
            im.getexif()
        assert any("Skipping tag 270" in str(w.message) for w in seen), [str(w.message) for w in seen]
        seen.clear()
        assert load_rgb(tmp_path / "photo.jpg", 20).size == (20, 20)
        assert image_size(tmp_path / "photo.jpg") == (20, 40)
        assert load_mask_cells(tmp_path / "photo.jpg", 4).all()
    assert [str(w.message) for w in seen] == []


@pytest.mark.parametrize("args, says", [(["--n", "16", "--side", "4096"], "268 M pixels; a preview holds at most 34 M"),
                                        (["--n", "2", "--out", "sheet.jpg"], "a preview is a PNG")])
def test_data_preview_refuses_a_sheet_beyond_its_pixel_bound_or_not_a_png(tmp_path, args, says):
    from conftest import one_line_failure, run

    extra = [] if "--out" in args else ["--out", tmp_path / "sheet.png"]
    r = run("data", "preview", "world", *[tmp_path / a if a.endswith(".jpg") else a for a in args], *extra)
    assert says in one_line_failure(r, 2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["empty folder", "only bad files", "missing path", "not a source"])
def test_sources_with_nothing_usable_raise_data_error(tmp_path, make):
    if make == "empty folder":
        source, pattern = tmp_path, "no usable image-caption pairs"
    elif make == "only bad files":
        make_pair(tmp_path, "x", "")
        source, pattern = tmp_path, "1 empty caption"
    elif make == "missing path":
        source, pattern = tmp_path / "nope", "does not exist"
    else:
        (tmp_path / "notes.ods").write_text("a,b")  # (a .csv is a manifest since 0.13.2)
        source, pattern = tmp_path / "notes.ods", "cannot use"
    with pytest.raises(DataError, match=pattern) as info:
        data.open_source(str(source), 16)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- writing
def test_write_world_writes_three_files_per_scene_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "world"
    ticks: list[int] = []
    assert data.write_world("heldout", 3, 32, out, progress=ticks.append) == 3
    assert ticks == [1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"heldout-{i:06d}{ext}" for i in range(3) for ext in (".png", ".txt", ".json"))
    for i in range(3):
        img, caption, spec = world.scene("heldout", i, 32)
        stem = out / f"heldout-{i:06d}"
        assert (stem.with_suffix(".txt")).read_text().strip() == caption
        meta = json.loads(stem.with_suffix(".json").read_text())
        assert SceneSpec.from_dict(meta) == spec and meta["caption"] == caption
        assert Image.open(stem.with_suffix(".png")).tobytes() == img.tobytes()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(DataError, match="already exists"):  # (at 32 px: the same world again goes on from it)
        data.write_world("heldout", 5, 48, out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing written or replaced
    ds = data.open_source(str(out), 32)  # the written folder is itself a data source
    assert len(ds) == 3 and ds[0][1] == world.scene("heldout", 0, 32)[1]


def test_preview_writes_one_contact_sheet(tmp_path, messy_folder):
    path = data.preview("world", tmp_path / "sheet.png", n=6, side=32)
    assert path == tmp_path / "sheet.png" and Image.open(path).size[0] > 3 * 32
    path = data.preview(str(messy_folder), tmp_path, n=16, side=32)
    assert path == tmp_path / "preview.png" and path.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_data_preview_lists_every_file_left_out_on_request(tmp_path, messy_folder):
    """The warning names the first file of each kind; someone with 40 bad files had to find them one at a time.
    `--list-skipped` prints each one (the orphan captions all, not just the first)."""
    from conftest import run

    r = run("data", "preview", messy_folder, "--out", tmp_path, "--n", "4", "--side", "16", "--list-skipped")
    assert r.exit_code == 0, r.stderr
    listed = r.stdout.splitlines()[1:]
    assert sorted(listed) == sorted([
        f".txt caption without image: {messy_folder / 'LONE.TXT'}",
        f".txt caption without image: {messy_folder / 'sub' / 'a.txt'}",
        f".txt caption without image: {messy_folder / 'sub' / 'orphan.txt'}",
        f"empty caption: {messy_folder / 'empty.png'}",
        f"unreadable image: {messy_folder / 'corrupt.png'}",
        f"unreadable image: {messy_folder / 'truncated.png'}"]), r.stdout
    assert len(run("data", "preview", messy_folder, "--out", tmp_path / "p.png").stdout.splitlines()) == 1
    assert data.open_source(str(messy_folder), 8).every == {}  # kept only when asked (a training run only warns)
    # a sheet of fewer pictures than --n asks for says so (it drew what there was, unsaid; a skip warning says
    # "using N" already)
    r = run("data", "preview", messy_folder, "--out", tmp_path / "q.png", "--n", "20", "--side", "16")
    assert "using 3" in r.stderr and "fewer than --n" not in r.stderr, r.stderr
    for i in range(3):
        make_pair(tmp_path / "clean", f"p{i}", f"picture {i}")
    r = run("data", "preview", tmp_path / "clean", "--out", tmp_path / "r.png", "--n", "5", "--side", "16")
    assert r.stderr == f"warning: {tmp_path / 'clean'} has 3 usable pictures, fewer than --n 5: the sheet shows " \
                       "them all\n", r.stderr
    r = run("data", "preview", tmp_path / "clean", "--out", tmp_path / "s.png", "--n", "3", "--side", "16")
    assert r.stderr == "", r.stderr
    r = run("data", "preview", tmp_path / "clean", "--out", tmp_path / "t.png", "--n", "5", "--side", "16", "-q")
    assert "fewer than --n 5" in r.stderr, r.stderr  # -q is "no progress bar", as for the skip warning


def test_data_world_command_takes_the_side_in_pixels_and_still_reads_the_old_flag(tmp_path):
    from typer.testing import CliRunner

    from t2i_cli.cli import app

    runner = CliRunner()
    new = runner.invoke(app, ["data", "world", "--split", "val", "--n", "2", "--side", "24", "--out",
                              str(tmp_path / "new"), "--quiet"])
    old = runner.invoke(app, ["data", "world", "--split", "val", "--n", "2", "--size", "24", "--out",
                              str(tmp_path / "old"), "--quiet"])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    for name in ("val-000000.png", "val-000001.png"):
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "old" / name).read_bytes()
        with Image.open(tmp_path / "new" / name) as im:
            assert im.size == (24, 24)
    expected = world.scene("val", 1, 24)[0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "new" / "val-000001.png").convert("RGB")),
                          np.asarray(expected))
    bad = runner.invoke(app, ["data", "world", "--n", "1", "--side", "8", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--side" in bad.output


@pytest.mark.parametrize("args", [("world", "--n", "1000000000000"), ("world", "--n", "1", "--side", "100000"),
                                  ("preview", "world", "--n", "1", "--side", "100000"),
                                  ("preview", "world", "--n", "1", "--side", "0"),
                                  ("preview", "world", "--n", "257")])
def test_data_refuses_counts_and_sides_it_cannot_render_within_a_bound(tmp_path, args):
    from typer.testing import CliRunner

    from t2i_cli.cli import app

    r = CliRunner().invoke(app, ["data", *args, "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "--n must be between 1 and" in r.output and "--side between 16 and 4096" in r.output
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_data_preview_replaces_an_existing_file_only_with_force(tmp_path):
    from typer.testing import CliRunner

    from t2i_cli.cli import app

    runner = CliRunner()
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's own file")
    r = runner.invoke(app, ["data", "preview", "world:val", "--n", "2", "--side", "16", "--out", str(mine)])
    assert r.exit_code == 2 and "already exists; pass --force" in r.output
    assert mine.read_bytes() == b"the user's own file"
    (tmp_path / "preview.png").write_bytes(b"also mine")  # a folder --out writes FOLDER/preview.png: same rule
    r = runner.invoke(app, ["data", "preview", "world:val", "--n", "2", "--side", "16", "--out", str(tmp_path)])
    assert r.exit_code == 2 and (tmp_path / "preview.png").read_bytes() == b"also mine"
    r = runner.invoke(app, ["data", "preview", "world:val", "--n", "2", "--side", "16", "--out", str(mine), "--force"])
    assert r.exit_code == 0, r.output
    with Image.open(mine) as im:
        assert im.format == "PNG"
    # A mistyped source is named as such before the existing --out is (it said "already exists; pass --force")
    for source, says in ((str(tmp_path / "pics-typo"), "does not exist"), ("world:bogus", "unknown world split")):
        r = runner.invoke(app, ["data", "preview", source, "--n", "2", "--side", "16", "--out", str(mine)])
        assert r.exit_code == 1 and says in r.output and "already exists" not in r.output, r.output


def test_val_split_is_a_stable_hash_of_image_contents_and_survives_new_files(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(60):
        make_pair(folder, f"img{i:03d}", f"caption {i}", colour=colour(i))
    val = {p.name for p, _ in data.open_source(str(folder), 8, part="val").pairs}
    train = {p.name for p, _ in data.open_source(str(folder), 8, part="train").pairs}
    assert val and not val & train and len(val | train) == 60
    hashed = {p.name for p in folder.glob("*.png") if data.is_val(digest(p), data.VAL_FRACTION)}
    assert val == (hashed or {min(folder.glob("*.png"), key=digest).name})  # the fallback only with none hashed
    for i in range(60, 120):  # the folder grows: no old file changes side
        make_pair(folder, f"img{i:03d}", f"caption {i}", colour=colour(i))
    val2 = {p.name for p, _ in data.open_source(str(folder), 8, part="val").pairs}
    train2 = {p.name for p, _ in data.open_source(str(folder), 8, part="train").pairs}
    if hashed:  # (the held-out image of the fallback may go back to train: split_pairs says when)
        assert val <= val2 and train <= train2 and len(val2) >= len(val)
    assert 0.01 <= len(val2) / 120 <= 0.12  # about 5%


def test_files_that_do_not_load_are_left_out_before_the_split_and_counted_in_every_part(tmp_path):
    """Three good pairs, a fake PNG and a truncated one, each with a caption: every part counts both unreadable
    files, as `data preview` (part all) does, and val holds a good image (the split used to be made first, by
    file name: val held only the fake, whose name hashed into it, so it was empty, and train counted one file)."""
    folder = tmp_path / "pics"
    for i in (1, 2, 3):
        make_pair(folder, f"good{i}", f"picture {i}", colour=colour(i))
    good = sorted(folder.glob("good*.png"), key=digest)
    assert not any(data.is_val(digest(p), 1e-6) for p in good)
    (folder / "fake.png").write_bytes(b"not a png")
    (folder / "fake.txt").write_text("a fake one")
    full = make_image(tmp_path / "full.png", size=(64, 64)).read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    (folder / "truncated.txt").write_text("a truncated one")
    # A tiny fraction hashes no image into val: the good image of smallest digest is held out.
    parts = {part: data.open_source(str(folder), 8, part=part, val_fraction=1e-6) for part in data.PARTS}
    assert {part: ds.skipped for part, ds in parts.items()} == {part: {"unreadable image": 2} for part in data.PARTS}
    assert [p for p, _ in parts["val"].pairs] == good[:1]
    assert sorted(p for p, _ in parts["train"].pairs) == sorted(good[1:])
    named = f"2 unreadable images, e.g. {folder / 'fake.png'}"  # the first, so the user can find them
    assert parts["all"].skipped_message() == f"skipped 2 items ({named}); using 3"
    assert parts["train"].skipped_message() == (f"skipped 2 items ({named}); using 2 "
                                                "(1 more held out for validation)")
    # A manifest naming a missing image: the same, counted as missing.
    (folder / "fake.png").unlink()
    manifest = folder / "pictures.jsonl"
    manifest.write_text("".join(json.dumps({"image": f"{n}.png", "caption": n}) + "\n"
                                for n in ("good1", "good2", "good3", "fake")))
    parts = {part: data.open_source(str(manifest), 8, part=part, val_fraction=1e-6) for part in data.PARTS}
    assert {part: ds.skipped for part, ds in parts.items()} == {part: {"missing image": 1} for part in data.PARTS}
    assert [p for p, _ in parts["val"].pairs] == good[:1]


def test_val_split_of_a_small_folder_holds_at_least_one_image(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    make_pair(folder, "a", "one")
    make_pair(folder, "b", "two", colour=(30, 200, 30))
    val = data.open_source(str(folder), 8, part="val")
    train = data.open_source(str(folder), 8, part="train")
    assert len(val) == 1 and len(train) == 1 and val.pairs[0][0] != train.pairs[0][0]
    # Two pairs of one picture (the same bytes, two captions) are one image: nothing can be held out.
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())
    assert len(data.open_source(str(folder), 8, part="val")) == 0
    assert len(data.open_source(str(folder), 8, part="train")) == 2
    assert data.open_source("world:train", 8, part="val", n_scenes=3)[0][1] == world.scene("val", 0, 8)[1]


def parts_of(source: Path, fraction: float) -> tuple[list[tuple[Path, list[str]]], list[tuple[Path, list[str]]]]:
    """(the train pairs, the val pairs) of a folder or manifest."""
    train, val = (data.open_source(str(source), 8, part=part, val_fraction=fraction).pairs for part in ("train", "val"))
    return train, val


@pytest.mark.parametrize("fraction", [1e-6, 0.3])  # the fallback (no image hashes into val), and a hashed split
def test_every_manifest_line_of_one_image_goes_to_the_same_part(tmp_path, fraction):
    """A COCO-style manifest has one line per caption of an image: the split is per image, so all of an image's
    lines sit in one part (the fallback that holds out an image when none hashes into val held out one LINE, and
    that image's other lines trained)."""
    for i in range(8):
        make_image(tmp_path / f"im{i}.png", colour=colour(i))
    manifest = tmp_path / "captions.jsonl"
    manifest.write_text("".join(json.dumps({"image": f"im{i}.png", "caption": f"picture {i}, {word}"}) + "\n"
                                for i in range(8) for word in ("a square", "a tile", "an icon")))
    train, val = parts_of(manifest, fraction)
    in_train, in_val = Counter(p.name for p, _ in train), Counter(p.name for p, _ in val)
    assert in_val and in_train and not in_val.keys() & in_train.keys()
    assert in_val + in_train == {f"im{i}.png": 3 for i in range(8)}
    if fraction < 0.01:
        assert set(in_val) == {min(tmp_path.glob("*.png"), key=digest).name}


@pytest.mark.parametrize("fraction", [1e-6, 0.3])
def test_a_byte_identical_copy_with_another_caption_lands_in_the_part_of_its_original(tmp_path, fraction):
    """The same picture under another name with another caption (a re-download, a second caption file) is kept,
    and the split is by the image's bytes, so the copy sits in the part of its original: were it in the other,
    validation would score a picture the model trained on."""
    for i in range(30):
        original = make_pair(tmp_path, f"img{i:03d}", f"picture {i}", colour=colour(i))
        (tmp_path / f"copy{i:03d}.png").write_bytes(original.read_bytes())
        (tmp_path / f"copy{i:03d}.txt").write_text(f"another caption of picture {i}")
    train, val = parts_of(tmp_path, fraction)
    in_train, in_val = {p.name for p, _ in train}, {p.name for p, _ in val}
    assert in_val and in_train and not in_val & in_train and len(in_val | in_train) == 60
    assert {n.replace("copy", "img") for n in in_val} == {n for n in in_val if n.startswith("img")}
    assert {digest(p) for p, _ in val}.isdisjoint(digest(p) for p, _ in train)


def png_bytes(i: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour(i)).save(out, format="PNG")
    return out.getvalue()


def test_the_held_out_images_stay_put_when_an_image_hashing_into_train_is_added(tmp_path):
    """A small folder with no image hashed into val holds out its image of smallest digest; pictures added
    later that hash into train, above that digest, never move it (it held out the file of smallest NAME hash,
    so a new name could take its place). The one documented exception: an image of smaller digest is held out
    instead."""
    candidates = [(i, b) for i in range(400) for b in [png_bytes(i)]
                  if not data.is_val(hashlib.sha256(b).hexdigest(), data.VAL_FRACTION)]
    for n, (i, b) in enumerate(candidates[:4]):
        (tmp_path / f"base{n}.png").write_bytes(b)
        (tmp_path / f"base{n}.txt").write_text(f"picture {i}")
    floor = min(digest(p) for p in tmp_path.glob("*.png"))  # the image the fallback holds out
    held = [p.name for p, _ in parts_of(tmp_path, data.VAL_FRACTION)[1]]
    above = [(i, b) for i, b in candidates[4:] if hashlib.sha256(b).hexdigest() > floor]
    assert len(held) == 1 and len(above) >= 20
    for n, (i, b) in enumerate(above[:20]):
        (tmp_path / f"new{n:02d}.png").write_bytes(b)
        (tmp_path / f"new{n:02d}.txt").write_text(f"picture {i}")
        train, val = parts_of(tmp_path, data.VAL_FRACTION)
        assert [p.name for p, _ in val] == held, f"adding new{n:02d}.png moved the held-out image"
        assert len(train) == 4 + n
    assert digest(tmp_path / held[0]) == floor
    below = next(b for b in map(png_bytes, range(400, 4000)) if hashlib.sha256(b).hexdigest() < floor)
    (tmp_path / "smaller.png").write_bytes(below)
    (tmp_path / "smaller.txt").write_text("a picture of smaller digest")
    assert [p.name for p, _ in parts_of(tmp_path, data.VAL_FRACTION)[1]] == ["smaller.png"]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "L", "CMYK"])
def test_any_image_mode_loads_as_rgb_with_transparency_on_white(tmp_path, mode):
    from t2i_cli.images import load_rgb

    if mode == "RGBA":  # a red disc on a fully transparent background stored as black
        im = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
        im.paste((220, 20, 20, 255), (4, 4, 12, 12))
    elif mode == "LA":
        im = Image.new("LA", (16, 16), (0, 0))
    elif mode == "P":
        im = Image.new("P", (16, 16), 0)
        im.putpalette([0, 0, 0] * 256)
        im.info["transparency"] = 0
    elif mode == "I;16":
        im = Image.new("I;16", (16, 16), 65535 // 2)
    else:
        im = Image.new(mode, (16, 16))
    im.save(tmp_path / "x.png" if mode != "CMYK" else tmp_path / "x.jpg")
    rgb = np.asarray(load_rgb(next(tmp_path.glob("x.*")), 16))
    assert rgb.shape == (16, 16, 3)
    if mode in ("RGBA", "LA", "P"):
        assert (rgb[0, 0] == 255).all()  # transparent -> white, not the black stored under alpha 0
    if mode == "RGBA":
        assert tuple(rgb[8, 8]) == (220, 20, 20)
    if mode == "I;16":
        assert 120 <= rgb[0, 0, 0] <= 135  # scaled from 16 bits, not clipped to white


def test_a_world_source_names_a_real_split_and_eval_data_scores_the_split_named():
    from t2i_cli.data_eval import _val
    from t2i_cli.errors import DataError

    for part in ("all", "train", "val"):
        with pytest.raises(DataError, match="unknown world split 'bogus'"):
            data.open_source("world:bogus", 16, part=part)
    assert data.open_source("world:train", 16, part="val").split == "val"  # training's validation: world:val
    assert _val("world:heldout", 16).split == "heldout"  # t2i eval --data world:heldout: what it says
    assert _val("world:val", 16).split == "val" and _val("world", 16).split == "val"
    from t2i_cli.errors import UsageError

    with pytest.raises(UsageError, match="world:train would score scenes the models trained on"):
        _val("world:train", 16)  # labelled validation, it scored the first scenes every stage trained on
    with pytest.raises(DataError, match=r"unknown world split 'bogus'; use world, world:val or world:heldout$"):
        _val("world:bogus", 16)  # eval's list of splits leaves out the one it refuses


def test_eval_refuses_a_json_path_it_cannot_write_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from t2i_cli.cli import app

    runner = CliRunner()
    for bad, needle in ((tmp_path, "is a folder; give a file name"),
                        (tmp_path / "missing" / "r.json", "is not a folder; create it")):
        r = runner.invoke(app, ["eval", "--weights", str(tmp_path / "no-weights"), "--json", str(bad)])
        assert r.exit_code == 2 and needle in r.output, r.output  # refused before the weights are even looked at


@pytest.mark.parametrize("own", ["my notes\n", '{"overall": 0.9}\n', "[]\n", '{"tasks": {}}\n'])
def test_eval_json_is_refused_on_a_file_that_is_not_an_eval_result_unless_forced(tmp_path, own):
    from conftest import run

    notes = tmp_path / "notes.json"
    notes.write_text(own)
    r = run("eval", "--weights", tmp_path / "no-weights", "--json", notes)
    assert r.exit_code == 2, (r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.json exists and is not the JSON of a t2i eval" in lines[0], r.stderr
    assert "--force" in lines[0] and notes.read_text() == own  # refused before the weights are even looked at
    r = run("eval", "--weights", tmp_path / "no-weights", "--force")
    assert r.exit_code == 2 and "--force replaces the --json file" in r.stderr, r.stderr


def test_eval_json_replaces_an_earlier_eval_result_or_any_file_with_force(tiny_weights, tmp_path):
    from conftest import run

    path = tmp_path / "eval.json"
    path.write_text("my notes\n")
    common = ["eval", "--weights", tiny_weights, "--n", "1", "--candidates", "1", "-q", "--json", path]
    r = run(*common, "--force")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert json.loads(path.read_text())["seed"] == 0
    r = run(*common, "--seed", "1")  # weights/eval.json is refreshed this way: no --force needed
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert json.loads(path.read_text())["seed"] == 1
    data_json = tmp_path / "data.json"
    for seed in ("0", "1"):  # --data's results are an eval's JSON too
        r = run("eval", "--data", "world", "--weights", tiny_weights, "--n", "2", "--seed", seed, "-q",
                "--json", data_json)
        assert r.exit_code == 0, (r.stderr, r.exception)
        assert json.loads(data_json.read_text())["seed"] == int(seed)


def test_eval_data_says_what_of_the_folder_it_could_not_use(tiny_weights, tmp_path):
    """Training warns about the files a folder's pictures left out; eval --data said nothing of them."""
    from conftest import run

    for i in range(40):
        make_pair(tmp_path / "d", f"p{i:02d}", "a red bird", colour=colour(i))
    (tmp_path / "d" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "d" / "broken.txt").write_text("a broken bird")
    (tmp_path / "d" / "alone.png").write_bytes((tmp_path / "d" / "p00.png").read_bytes())
    r = run("eval", "--data", tmp_path / "d", "--weights", tiny_weights, "--n", "1", "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    assert f"warning: {tmp_path / 'd'}: skipped 2 items" in r.stderr, r.stderr
    assert json.loads((tmp_path / "e.json").read_text())["skipped"].startswith("skipped 2 items")
    quiet = run("eval", "--data", tmp_path / "d", "--weights", tiny_weights, "--n", "1", "-q")
    assert quiet.exit_code == 0 and "skipped" not in quiet.stderr
    assert "did not learn whole" not in r.stderr  # every word of "a red bird" is the tiny tokenizer's


def test_eval_data_says_when_the_captions_hold_words_the_tokenizer_does_not_know(tiny_weights, tmp_path):
    """The shipped world model scored on a user's photos: CLIP score and Frechet distance came out with no word
    that the model reads almost nothing of such captions (generate warns of unknown words; eval --data did not)."""
    from conftest import run

    for i in range(40):
        make_pair(tmp_path / "d", f"p{i:02d}", "a red zeppelin over quixotic bird", colour=colour(i))
    r = run("eval", "--data", tmp_path / "d", "--weights", tiny_weights, "--n", "2", "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "did not learn whole" in ln]
    assert len(said) == 1 and "e.g. zeppelin, over, quixotic" in said[0], r.stderr
    got = json.loads((tmp_path / "e.json").read_text())
    assert got["unknown_words"] == {"words": 3 * got["n"], "examples": ["zeppelin", "over", "quixotic"]}
    quiet = run("eval", "--data", tmp_path / "d", "--weights", tiny_weights, "--n", "2", "-q")
    assert quiet.exit_code == 0 and "did not learn whole" not in quiet.stderr


def test_the_val_split_reads_the_first_8_bytes_of_the_images_sha256():
    """val_score is the digest's first 16 hex digits as a fraction of 2**64 (the split of every folder already
    trained on depends on it: another slice would move images between train and val)."""
    d = hashlib.sha256(b"x").hexdigest()
    assert data.val_score(d) == int(d[:16], 16) / 2**64
    blobs = [f"image {i}".encode() for i in range(20)]
    held = [i for i, b in enumerate(blobs) if data.is_val(hashlib.sha256(b).hexdigest(), 0.25)]
    assert held == [2, 6, 10, 11, 12, 15, 16, 18, 19]  # computed once, with val_score as it is


def test_a_float_image_with_overshoot_infinities_or_nan_still_shows_its_levels(tmp_path):
    """A float image just over 1 (0..1.02) loaded all black, and one infinite pixel made the whole image black."""
    ramp = np.tile(np.linspace(0.0, 1.02, 64, dtype=np.float32), (64, 1))
    ramp[0, 0], ramp[0, 1] = np.inf, np.nan
    Image.fromarray(ramp, mode="F").save(tmp_path / "hdr.tif")
    rgb = np.asarray(images.load_rgb(tmp_path / "hdr.tif", 64))
    assert rgb[1:, 0].max() <= 2 and rgb[:, -1].min() >= 250 and 120 <= int(rgb[32, 32, 0]) <= 135, rgb[32, :, 0]


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_that_keeps_its_picture_and_finds_truncation(tmp_path,
                                                                                                   monkeypatch):
    """A 12-megapixel photo was decoded whole for a 64-pixel picture, for every sample of every epoch; libjpeg
    now decodes it at 1/2..1/8 scale, never below DRAFT_MARGIN x side, so the resize still makes the picture."""
    from PIL import ImageDraw

    big = Image.new("RGB", (2048, 1536), (240, 240, 230))
    draw = ImageDraw.Draw(big)
    for i in range(0, 2048, 37):  # fine detail: lines that alias if the reduced decode were too small
        draw.line([(i, 0), (2048 - i, 1536)], fill=(20, 40 + i % 200, 90), width=3)
    path = tmp_path / "photo.jpg"
    big.save(path, quality=92)
    sizes, real_square = [], images.square
    monkeypatch.setattr(images, "square", lambda img, side, size=None: (sizes.append(img.size),
                                                                         real_square(img, side, size))[1])
    small = images.load_rgb(path, 64)
    monkeypatch.undo()
    assert sizes == [(512, 384)]  # a quarter: an eighth (256 x 192) is under 4 x 64 = 256 on its short side
    with Image.open(path) as im:
        im.load()
        whole = images.square(im.convert("RGB"), 64)
    mse = ((np.asarray(small, dtype=np.float64) - np.asarray(whole, dtype=np.float64)) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / mse) > 35  # the same picture
    data_bytes = path.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data_bytes[:len(data_bytes) // 2])
    with pytest.raises(DataError, match="cut.jpg"):
        images.load_rgb(tmp_path / "cut.jpg", 64)
    assert images.load_rgb(path, 1000).size == (1000, 1000)  # no reduction below the side


def test_checking_a_folder_reports_its_progress_to_the_cli_and_to_a_training_run(tmp_path):
    """Opening a folder decodes every picture once (a thousand phone photos took most of a minute with nothing on
    screen); open_source reports checking(done, total), and a training run passes it through."""
    from rich.console import Console
    from rich.progress import Progress

    from t2i_cli.cli import checking_bar
    from t2i_cli.stages import run_stage
    from t2i_cli.train import TrainConfig

    for i in range(40):
        make_pair(tmp_path / "f", f"p{i:02d}", f"picture number {i}", colour=(i * 6, 100, 200 - i * 4))
    seen = []
    ds = data.open_source(str(tmp_path / "f"), 8, checking=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 40), (16, 40), (32, 40), (40, 40)] and len(ds) + ds.held_out == 40
    seen.clear()
    data.open_source("world:train", 8, n_scenes=4, checking=lambda done, total: seen.append((done, total)))
    assert seen == []  # the world is drawn, not checked

    with Progress(console=Console(file=io.StringIO(), force_terminal=True, width=100)) as bar:
        train = bar.add_task("train tokenizer", total=10)
        checking = checking_bar(bar)
        checking(0, 40)
        assert [t.description for t in bar.tasks] == ["train tokenizer", "checking pictures"]
        checking(40, 40)
        assert [t.id for t in bar.tasks] == [train]  # gone once the pictures are checked
        checking(0, 40)  # a later stage of a whole run checks again (from the cache): the line comes back
        checking(40, 40)
        assert [t.id for t in bar.tasks] == [train]

    seen.clear()
    cfg = TrainConfig(stage="tokenizer", data=str(tmp_path / "f"), steps=1, vocab_size=300)
    run_stage(cfg, tmp_path / "run", device="cpu", checking=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 40) and seen[-1] == (40, 40)


def test_a_training_run_keeps_decoded_pictures_up_to_its_budget_and_draws_the_same_pixels(tmp_path, monkeypatch):
    """Every sample of every epoch decoded its file again; with cache_bytes a picture is decoded once, until the
    budget is held, and the tensors are the ones a decode gives."""
    for i in range(6):
        make_pair(tmp_path, f"p{i}", f"picture {i}", colour=(i * 40, 90, 250 - i * 40))
    ds = data.open_source(str(tmp_path), 8)
    plain = [ds[i][0] for i in range(len(ds))]
    decoded = []
    real = images.load_rgb
    monkeypatch.setattr(images, "load_rgb", lambda path, side: (decoded.append(path.name), real(path, side))[1])
    ds.cache_bytes = 4 * 8 * 8 * 3  # four pictures' RGB bytes
    for _ in range(3):  # three epochs
        again = [ds[i][0] for i in range(len(ds))]
        assert all(torch.equal(a, b) for a, b in zip(plain, again, strict=True))
    first_four = [p.name for p, _ in ds.pairs[:4]]
    assert [decoded.count(n) for n in first_four] == [1, 1, 1, 1]  # kept after their first decode
    assert [decoded.count(p.name) for p, _ in ds.pairs[4:]] == [3, 3]  # past the budget: decoded each epoch
    assert ds._cached == ds.cache_bytes


def test_a_training_run_gives_each_reading_process_a_share_of_the_cache(tmp_path, monkeypatch):
    from t2i_cli.stages import VAL_N, run_stage
    from t2i_cli.train import TrainConfig

    for i in range(4):
        make_pair(tmp_path / "f", f"p{i}", f"picture {i}", colour=(i * 60, 90, 200))
    seen, real = {}, data.open_source

    def spy(*args, **kw):
        seen[kw.get("part")] = ds = real(*args, **kw)
        return ds

    monkeypatch.setattr(data, "open_source", spy)
    cfg = TrainConfig(stage="tokenizer", data=str(tmp_path / "f"), steps=1, vocab_size=300, num_workers=3)
    run_stage(cfg, tmp_path / "run", device="cpu")
    # each of the 3 workers meets every picture, so each keeps a third; validation reads its first VAL_N alone
    assert seen["train"].cache_bytes == data.TRAINING_CACHE_BYTES // 3
    assert seen["val"].cache_bytes == VAL_N * cfg.image_side ** 2 * 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # a stray variable does not divide a one-process run
    run_stage(cfg, tmp_path / "run2", device="cpu")
    assert seen["train"].cache_bytes == data.TRAINING_CACHE_BYTES // 3
    from types import SimpleNamespace

    from t2i_cli.stages import _ranks_on_this_machine

    for env, procs, ranks in (("2", 4, 2), ("9", 4, 4), ("0", 4, 1), ("abc", 4, 4), ("2", 1, 1)):
        monkeypatch.setenv("LOCAL_WORLD_SIZE", env)  # under torchrun: this machine's ranks, within 1..all of them
        assert _ranks_on_this_machine(SimpleNamespace(n_procs=procs)) == ranks, (env, procs)


@pytest.mark.parametrize("orientation", [1, 6, 3, 8])
def test_a_reduced_jpeg_of_a_size_the_scale_does_not_divide_is_cropped_from_its_own_picture(tmp_path, orientation):
    """libjpeg rounds a reduced size up (2049 / 4 -> 513 pixels, the picture 512.25 of them) with padding past the
    picture: the centre crop of the padded size was off by a fraction of a pixel, far from the full
    decode (a helper's audit); a rotated photo got the padding on another side."""
    rng = np.random.default_rng(orientation)
    y, x = np.mgrid[0:1539, 0:2049]
    pixels = np.stack([127 + 100 * np.sin(x / 37.0 + c) * np.cos(y / 23.0 - c) for c in range(3)], axis=-1)
    picture = Image.fromarray((pixels + rng.normal(0, 4, pixels.shape)).clip(0, 255).astype(np.uint8))
    exif = picture.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "odd.jpg"
    picture.save(path, quality=92, exif=exif.tobytes())
    with Image.open(path) as im:
        im.load()
        whole = images.square(images.to_rgb(ImageOps.exif_transpose(im)), 64)
    small = images.load_rgb(path, 64)
    mse = ((np.asarray(small, dtype=np.float64) - np.asarray(whole, dtype=np.float64)) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / mse) > 45


def test_avif_pictures_are_read_and_heic_ones_are_said_to_be_unreadable(tmp_path):
    """An iPhone's HEIC pictures were ignored in silence and their captions counted as captions without an image;
    AVIF, which this Pillow reads, was not looked for."""
    from PIL import features

    make_pair(tmp_path, "png", "a png picture")
    (tmp_path / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (tmp_path / "phone.txt").write_text("a photo from a phone\n")
    if features.check("avif"):
        Image.new("RGB", (16, 16), (10, 200, 30)).save(tmp_path / "web.avif")
        (tmp_path / "web.txt").write_text("an avif picture\n")
    ds = data.open_source(str(tmp_path), 8)
    captions = sorted(c for i in range(len(ds)) for c in ds.captions_at(i))
    expected = ["a png picture", *(["an avif picture"] if features.check("avif") else [])]
    assert captions == expected
    assert ds.skipped == {images.UNREAD_PICTURE: 1}  # not also ".txt caption without image"
    assert f"1 {images.UNREAD_PICTURE}: {tmp_path / 'phone.heic'}" in ds.skipped_message()


def test_a_manifest_that_is_a_pipe_or_a_device_is_refused_not_read_forever(tmp_path):
    """A .jsonl manifest that is a link to /dev/zero was read for over ten minutes; a FIFO waited forever."""
    import os

    from t2i_cli.data import open_source

    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.jsonl")
    for name in ("zero.jsonl", "fifo.jsonl"):
        with pytest.raises(DataError, match="is not a regular file \\(a device, pipe or socket\\); save the"):
            open_source(str(tmp_path / name), 16)


def test_a_sheet_label_never_runs_past_its_tile(tmp_path):
    """`data preview --side 32`: a caption word wider than the tile was drawn whole, over the next tile's
    picture ("accessoriesaccessories"); each label line is cut to its tile, ending in "...", and a third line
    is marked on the second."""
    from PIL import ImageDraw, ImageFont

    from t2i_cli.images import _fit, contact_sheet

    draw, font = ImageDraw.Draw(Image.new("RGB", (10, 10))), ImageFont.load_default()
    assert _fit(draw, font, "a cat", 200) == "a cat"
    cut = _fit(draw, font, "accessoriesaccessories", 32)
    assert cut.endswith("...") and draw.textlength(cut, font=font) <= 32 and len(cut) > 3
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    sheet = contact_sheet([white, white], ["accessoriesaccessories " * 3, "x"], columns=2)
    gutter = np.asarray(sheet)[36:60, 4 + 32:4 + 32 + 4]  # between the two tiles, beside the labels
    assert (gutter > 250).all()  # no label runs into it


def test_a_sheet_label_draws_accented_letters_without_their_marks():
    """Pillow's built-in font draws ASCII alone: "café" on a `data preview` sheet was "caf" and a box. A letter
    with a mark is drawn as its base letter; a character with no ASCII form stays (a box, not dropped)."""
    from t2i_cli.images import contact_sheet, drawable

    assert drawable("un café naïve à Straße, Łódź, Ørsted") == "un cafe naive a Strasse, Lodz, Orsted"
    assert drawable("a red bird") == "a red bird" and drawable("猫 ж") == "猫 ж"
    white = Image.new("RGB", (64, 64), (255, 255, 255))

    def sheet(label):
        return np.asarray(contact_sheet([white], [label]))

    assert (sheet("café") == sheet("cafe")).all()
    assert not (sheet("café") == sheet("caf")).all()  # the e is drawn, not dropped


def test_a_caption_of_one_huge_word_is_measured_a_bounded_number_of_times(monkeypatch):
    """`data preview` of a caption that is one 16,000-letter word ran for minutes (a label was cut a letter at a
    time, each cut measured again; training's sample sheets label with captions too). The label is cut as before
    (it ends in "..." and fits its tile) after a bounded number of measurements over a bounded number of letters."""
    from PIL import ImageDraw

    from t2i_cli.images import contact_sheet

    measured = []
    real = ImageDraw.ImageDraw.textlength
    monkeypatch.setattr(ImageDraw.ImageDraw, "textlength",
                        lambda self, text, *a, **k: measured.append(len(text)) or real(self, text, *a, **k))
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    sheet = np.asarray(contact_sheet([white, white], ["a" * 65536 + " and more", "x"], columns=2))
    assert len(measured) < 40 and max(measured) < 200, (len(measured), max(measured))
    assert (sheet[:, 4 + 64:4 + 64 + 4] > 250).all()  # nothing drawn past its tile
    assert (sheet[4 + 64:, 4:4 + 64] < 128).any()  # the label is drawn


def test_a_label_cut_by_bisection_is_the_one_cut_a_letter_at_a_time():
    """_fit finds the longest prefix that fits with "..." by bisection; it gives what cutting a letter at a time
    (how it cut before, in time quadratic in the label's length) gave, on labels of random widths."""
    import random

    from PIL import ImageDraw, ImageFont

    from t2i_cli.images import _fit

    draw, font = ImageDraw.Draw(Image.new("RGB", (10, 10))), ImageFont.load_default()

    def letter_at_a_time(text: str, width: int) -> str:
        if draw.textlength(text, font=font) <= width:
            return text
        while text and draw.textlength(text + "...", font=font) > width:
            text = text[:-1]
        return text.rstrip() + "..." if text else ""

    rng = random.Random(0)
    for _ in range(300):
        text = "".join(rng.choice("abcdefghij klmWMi.,") for _ in range(rng.randint(0, 60)))
        width = rng.randint(5, 200)
        assert _fit(draw, font, text, width) == letter_at_a_time(text, width), (text, width)


def test_a_picture_that_is_not_a_regular_file_is_said_as_such_and_never_read(tmp_path):
    """A picture that is a link to a missing file, a pipe or a link to a device was dropped unsaid, and its caption
    blamed (".txt caption without image"); it is now named as what it is, and never opened (a pipe waits
    forever)."""
    import os

    make_pair(tmp_path, "good", "a red square")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "gone.txt").write_text("a picture that was moved")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "pipe.txt").write_text("a pipe")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "zero.txt").write_text("a device")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0, list_skipped=True)
    why = "non-regular file (a link to a missing file, a pipe or a device)"
    assert len(ds) == 1 and ds.skipped == {why: 3}
    assert ds.every == {why: [str(tmp_path / n) for n in ("gone.png", "pipe.png", "zero.jpg")]}


def test_jfif_pictures_are_used_and_unread_formats_are_named(tmp_path):
    """.jfif (what Windows' browsers save) and .jpe are JPEGs, and were left out as if missing (their captions were
    "without image"); SVG, JPEG XL and camera raw files are named as formats t2i cannot read."""
    make_image(tmp_path / "a.jfif")
    make_image(tmp_path / "b.jpe", colour=(0, 0, 250))
    for stem in ("a", "b", "c", "d", "e"):
        (tmp_path / f"{stem}.txt").write_text(f"picture {stem}")
    (tmp_path / "c.svg").write_text("<svg/>")
    (tmp_path / "d.CR2").write_bytes(b"II*\x00raw")
    (tmp_path / "e.dng").write_bytes(b"II*\x00raw")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0)
    assert sorted(ds.captions_at(i)[0] for i in range(len(ds))) == ["picture a", "picture b"]
    assert ds.skipped == {images.unread_picture(".svg"): 1, images.unread_picture(".dng"): 2}
    assert "2 camera raw pictures (t2i cannot read camera raw" in ds.skipped_message()


def test_a_caption_holding_a_nul_is_named_as_such(tmp_path):
    """A UTF-8 caption with a NUL was "not in UTF-8 or UTF-16", which saving it as UTF-8 again does not mend."""
    make_pair(tmp_path, "good", "a red square")
    make_pair(tmp_path, "nul", "")
    (tmp_path / "nul.txt").write_bytes(b"a red\x00 square")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0)
    assert len(ds) == 1 and list(ds.skipped) == [
        "caption holding a NUL character (UTF-16 without its byte-order mark, or not text: save it as UTF-8)"]


def test_with_nothing_usable_each_reason_names_a_file_and_list_skipped_lists_them(tmp_path):
    """When nothing was usable the error counted reasons without one file to look at, and `data preview
    --list-skipped`, asked for exactly then, printed nothing."""
    from conftest import run

    for stem in ("a", "b"):
        (tmp_path / f"{stem}.png").write_bytes(b"not a picture")
        (tmp_path / f"{stem}.txt").write_text("a caption")
    (tmp_path / "c.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(DataError) as e:
        data.open_source(str(tmp_path), 8)
    assert f"2 unreadable images, e.g. {tmp_path / 'a.png'}" in str(e.value)
    assert f"1 {images.UNREAD_PICTURE}: {tmp_path / 'c.heic'}" in str(e.value)
    r = run("data", "preview", tmp_path, "--out", tmp_path / "p.png", "--list-skipped")
    assert r.exit_code == 1 and "no usable image-caption pairs" in r.stderr, r.stderr
    assert f"unreadable image: {tmp_path / 'b.png'}" in r.stdout.splitlines(), r.stdout
    assert not (tmp_path / "p.png").exists()


def test_a_caption_named_in_other_letter_case_is_its_pictures_when_it_is_the_one_match(tmp_path):
    """IMG_0001.JPG beside img_0001.txt were left apart ("image without .txt caption" and "caption without image"),
    though macOS' and Windows' file systems call them one name. Such a caption is the picture's when no picture has
    its exact name and no other caption matches the same way."""
    make_image(tmp_path / "IMG_0001.JPG")
    (tmp_path / "img_0001.txt").write_text("a red square")
    make_image(tmp_path / "Two.png", colour=(0, 0, 250))  # two captions that differ in case alone: neither is taken
    (tmp_path / "TWO.txt").write_text("one")
    (tmp_path / "two.txt").write_text("other")
    make_image(tmp_path / "B.png", colour=(0, 250, 0))  # an exact name wins; the other-case caption is its own
    (tmp_path / "B.txt").write_text("a green square")
    make_image(tmp_path / "b.jpg", colour=(0, 240, 0))
    make_image(tmp_path / "PIC.png", colour=(0, 0, 10))  # two pictures that differ in case alone: neither takes it
    make_image(tmp_path / "pic.jpg", colour=(0, 0, 20))
    (tmp_path / "Pic.txt").write_text("which one?")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0, list_skipped=True)
    assert sorted((p.name, c) for p, c in ds.pairs) == [("B.png", ["a green square"]),
                                                       ("IMG_0001.JPG", ["a red square"])]
    assert ds.every == {"image without .txt caption": [str(tmp_path / n) for n in ("PIC.png", "Two.png", "b.jpg",
                                                                                   "pic.jpg")],
                        ".txt caption without image": [str(tmp_path / n) for n in ("Pic.txt", "TWO.txt", "two.txt")]}


def test_an_empty_picture_file_is_named_as_empty(tmp_path):
    """A zero-byte picture (a copy that failed, a placeholder) was "unreadable image" in a folder and "cannot
    identify image file" as --image: it is said to be empty."""
    make_pair(tmp_path, "good", "a red square")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "empty.txt").write_text("nothing")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0)
    assert len(ds) == 1 and ds.skipped == {"empty file (0 bytes)": 1}
    with pytest.raises(DataError, match=r"--image .*empty\.png is an empty file \(0 bytes\); give a complete"):
        images.image_size(tmp_path / "empty.png", "--image")


def test_pictures_of_one_name_that_share_a_caption_are_used_and_said(tmp_path):
    """pic.webp and pic.tif beside one pic.txt both took its captions without a word: a copy in another format
    trains twice and may land on the other side of the split, validating on itself. Both are used, and said."""
    make_pair(tmp_path, "one", "a red square")
    make_image(tmp_path / "pic.webp", colour=(0, 0, 200))
    make_image(tmp_path / "pic.tif", colour=(0, 0, 190))
    make_image(tmp_path / "pic.png", colour=(0, 0, 180))
    (tmp_path / "pic.txt").write_text("a blue square")
    ds = data.open_source(str(tmp_path), 8, val_fraction=0.0, list_skipped=True)
    assert sorted(p.name for p, _ in ds.pairs) == ["one.png", "pic.png", "pic.tif", "pic.webp"]
    assert ds.skipped == {data.SHARED_CAPTION: 2}
    message = ds.skipped_message()
    assert message.startswith("using 4; 2 pictures share the caption file of another picture of their name"), message
    assert f"e.g. {tmp_path / 'pic.tif'} (pic.png too reads pic.txt)" in message and "skipped" not in message
    assert ds.every == {}  # used, so not listed among what --list-skipped says was left out
    alone = tmp_path / "alone"
    make_pair(alone, "a", "a red square")
    make_pair(alone, "b", "a blue square", colour=(0, 0, 200))
    assert data.open_source(str(alone), 8, val_fraction=0.0).skipped_message() is None


def test_a_preview_written_into_the_folder_it_shows_is_said(tmp_path, monkeypatch):
    """`cd pics && t2i data preview .` wrote preview.png among the pictures, and the next run on the folder named
    it "image without .txt caption" with no word of where it came from: the preview says so when it writes it."""
    from conftest import run

    pics = tmp_path / "pics"
    for i in range(3):
        make_pair(pics, f"p{i}", f"a red square {i}", colour=colour(i))
    monkeypatch.chdir(pics)
    r = run("data", "preview", ".", "--n", "2", "--side", "16", "--out", "sheet.png")
    assert r.exit_code == 0 and (pics / "sheet.png").is_file(), r.stderr
    assert "sheet.png is inside ., which training reads: it will be counted there as an image without .txt " \
           "caption" in r.stderr, r.stderr
    # (named as a sheet t2i wrote, to move out, since session 44: `t2i data caption`, suggested before, declines it)
    assert data.open_source(str(pics), 8, val_fraction=0.0).skipped == {"image without .txt caption": 1,
                                                                       data.SHEET_AMONG: 1}
    # (since 0.13.2 the default name, preview.png, is marked and known: a contact sheet t2i wrote, nothing to say,
    # and `t2i data caption` does not caption it "preview")
    r = run("data", "preview", ".", "--n", "2", "--side", "16")
    assert r.exit_code == 0 and (pics / "preview.png").is_file() and "inside" not in r.stderr, r.stderr
    ds = data.open_source(str(pics), 8, val_fraction=0.0)
    assert ds.skipped == {"image without .txt caption": 1, "contact sheet t2i wrote": 1, data.SHEET_AMONG: 1}
    plan = data.plan_captions(pics)  # (a sheet marked as t2i's, of any name, is not captioned since affdc5c)
    assert list(plan.writes) == [] and plan.sheets == [pics / "sheet.png"]
    r = run("data", "preview", str(pics), "--n", "2", "--side", "16", "--out", tmp_path / "out.png")
    assert r.exit_code == 0 and "inside" not in r.stderr, r.stderr  # written elsewhere: nothing to say
