"""Session 46, hC: manifest and crash-safety leftovers (a dry run beside manifest lines left out, such lines of a
manifest above the folder, a killed write's 0.18.0 temporary of a long name, make_folder's probe)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PIL import Image

from conftest import run


def _aged(path: Path, seconds: float = 120.0) -> Path:
    """path made `seconds` old (a killed run's file, found by a run started later)."""
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def _picture(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------ 1. a dry run that is refused
def test_a_dry_run_beside_manifest_lines_left_out_says_it_would_write_nothing(tmp_path: Path):
    """ds/metadata.jsonl with a line that is not JSON, naming red-bird.png: `data caption ds` refuses, writing
    nothing, but its --dry-run warned and then listed red-bird.txt and blue-fish.txt, "would write 2 caption files":
    the picture the line names among them. Now it says it would write none, as the run does."""
    ds = tmp_path / "ds"
    _picture(ds / "red-bird.png")
    _picture(ds / "blue-fish.png")
    (ds / "metadata.jsonl").write_bytes(b'{"file_name": "red-bird.png", "text": "a red bird"\n')
    real = run("data", "caption", ds, "-q")
    assert real.exit_code == 1 and "lines left out" in real.stderr, real.stderr
    dry = run("data", "caption", ds, "--dry-run", "-q")
    assert dry.exit_code == 0 and "lines left out" in dry.stderr, dry.stderr
    assert "red-bird.txt" not in dry.stdout and "would write 2" not in dry.stdout, dry.stdout
    assert "would write no caption file" in dry.stdout and "nothing written (--dry-run)" in dry.stdout, dry.stdout
    assert _names(ds) == ["blue-fish.png", "metadata.jsonl", "red-bird.png"]
    # ... and where nothing refuses (the line fixed), the dry run lists what the run writes
    (ds / "metadata.jsonl").write_text(json.dumps({"file_name": "red-bird.png", "text": "a red bird"}) + "\n")
    dry = run("data", "caption", ds, "--dry-run", "-q")
    assert dry.exit_code == 0 and "blue-fish.txt: blue fish" in dry.stdout and "would write 1 caption file" in \
        dry.stdout and "red-bird.txt" not in dry.stdout, dry.stdout


# ------------------------------------------------------------------------------------ 5. make_folder's probe
def test_a_probe_a_kill_left_in_an_output_folder_is_removed_by_the_next_run_once_a_minute_old(tmp_path: Path):
    """make_folder probes an existing folder with .t2i-probe-XXXXXXXX, removed at once; a kill between its making
    and its removal left it for good (no cleanup knew it). The next make_folder there removes it once a minute old
    (a newer one may be another t2i's probe now); a file of yours of another shape, or not empty, stays."""
    from t2i_cli.files import make_folder

    out = tmp_path / "out"
    out.mkdir()
    killed = out / ".t2i-probe-a1b_2c3d"
    killed.touch()
    _aged(killed)
    fresh = out / ".t2i-probe-zzzz9999"
    fresh.touch()
    mine = [out / ".t2i-probe-notes.txt", out / ".t2i-probe-abcdefgh.bak", out / ".t2i-probe-ABCDEFGH",
            out / ".t2i-probe-full1234"]
    for p in mine:
        p.write_bytes(b"" if p.name != ".t2i-probe-full1234" else b"mine")
        _aged(p)
    make_folder(out)
    assert not killed.exists()
    assert fresh.exists() and all(p.exists() for p in mine), _names(out)
    assert len(list(out.iterdir())) == 1 + len(mine)  # (and the probe of this run is gone too)


# ------------------------------------------------------------------------------------ 2, 3. lines of a manifest above
def _above(tmp_path: Path, folder: str = "train") -> Path:
    """ds/FOLDER with red-bird.png (captioned by red-bird.txt) and blue-fish.png (no caption); returns ds."""
    ds = tmp_path / "ds"
    _picture(ds / folder / "red-bird.png")
    _picture(ds / folder / "blue-fish.png")
    (ds / folder / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    return ds


def _refused(folder: Path) -> bool:
    """Whether `data caption FOLDER` refuses for lines of a manifest above that may caption its pictures (the dry
    run, which writes nothing, warns it)."""
    r = run("data", "caption", folder, "--dry-run", "-q")
    assert r.exit_code == 0, r.stderr
    said = "above the folder, has lines left out that may caption pictures here" in " ".join(r.stderr.split())
    assert said == ("would write no caption file" in r.stdout), (r.stdout, r.stderr)
    return said


def test_a_line_above_that_is_not_json_naming_a_captioned_picture_does_not_refuse(tmp_path: Path):
    """ds/metadata.jsonl's line that is not JSON (its closing brace missing) naming train/red-bird.png, which has
    its red-bird.txt: `data caption ds/train` refused to caption blue-fish.png by its name, though the line, fixed,
    captions red-bird.png, which it does not write. Now a string of such a line that is whole and names an existing
    file that is no picture to caption is passed over; any other mention of the folder as a path still refuses."""
    ds = _above(tmp_path)
    manifest = ds / "metadata.jsonl"
    manifest.write_bytes(b'{"file_name": "train/red-bird.png", "text": "a red bird"\n')
    assert not _refused(ds / "train")
    r = run("data", "caption", ds / "train", "-q")
    assert r.exit_code == 0 and (ds / "train" / "blue-fish.txt").read_text() == "blue fish\n", r.stderr
    (ds / "train" / "blue-fish.txt").unlink()
    # ... written absolute, with Windows' escaped separators, or with \/: the same picture
    for line in [b'{"file_name": "' + str(ds / "train" / "red-bird.png").encode() + b'", "text": "x"\n',
                 b'{"file_name": "train\\\\red-bird.png", "text": "x"\n',
                 b'{"file_name": "train\\/red-bird.png", "text": "a red bird",\n']:
        manifest.write_bytes(line)
        assert not _refused(ds / "train"), line
    # ... but one naming the picture without a caption, a missing one, a string cut (no closing quote), a name
    # outside a string, or a caption's string naming it as a path, still refuses
    for line in [b'{"file_name": "train/blue-fish.png", "text": "a blue fish"\n',
                 b'{"file_name": "train/BLUE-FISH.png", "text": "a blue fish"\n',
                 b'{"file_name": "train/blue-fish.jpg", "text": "a blue fish"\n',
                 b'{"file_name": "train/red-bird.png\n',
                 b'{"file_name": train/red-bird.png, "text": "x"}\n',
                 b'{"file_name": "train/red-bird.png", "text": "as train/blue-fish.png"\n',
                 b'{"file_name": "train/red-bird.png", "text": "x", "x": "train/blue-fish.png"\n']:
        manifest.write_bytes(line)
        assert _refused(ds / "train"), line


def test_a_line_above_that_is_not_json_naming_the_folder_in_json_escapes_refuses(tmp_path: Path):
    """ds/metadata.jsonl's line that is not JSON naming ds/été/blue-fish.png as JSON writes it escaped
    ("\\u00e9t\\u00e9/", Python's json.dumps writes any accent so) was not found by the bytes of "été/": `data
    caption ds/été` captioned blue-fish.png by its name unsaid. Now the line's escapes are read first, in either
    letter case, composed or decomposed, a pair of escapes of one character too."""
    ds = _above(tmp_path, "\u00e9t\u00e9")
    manifest = ds / "metadata.jsonl"
    for name in [b"\\u00e9t\\u00e9", b"\\u00E9t\\u00E9", b"e\\u0301te\\u0301", b"\\u00e9t\xc3\xa9"]:
        manifest.write_bytes(b'{"file_name": "' + name + b'/blue-fish.png", "text": "a blue fish"\n')
        assert _refused(ds / "\u00e9t\u00e9"), name
        assert not (ds / "\u00e9t\u00e9" / "blue-fish.txt").exists()
    # ... escaped, naming the picture that has its caption: passed over, as unescaped
    manifest.write_bytes(b'{"file_name": "\\u00e9t\\u00e9/red-bird.png", "text": "a red bird"\n')
    assert not _refused(ds / "\u00e9t\u00e9")
    # ... an emoji's folder, written as JSON's two escapes of it
    ds = _above(tmp_path / "emoji", "\U0001f426")
    (ds / "metadata.jsonl").write_bytes(b'{"file_name": "\\ud83d\\udc26/blue-fish.png", "text": "a blue fish"\n')
    assert _refused(ds / "\U0001f426")
    # ... and a line that holds the name only as a caption's word, escaped, still does not refuse
    (ds / "metadata.jsonl").write_bytes(b'{"file_name": "other/x.png", "text": "a \\ud83d\\udc26 bird"\n')
    assert not _refused(ds / "\U0001f426")


# ------------------------------------------------------------------------------------ 4. t2i 0.18.0's temporaries
def _temporary_018(folder: Path, name: str, random_part: str = "k3x_9q2a") -> Path:
    """The temporary t2i 0.18.0 left of a file `name` in folder when killed: .FIRST-64-BYTES.XXXXXXXX.tmp (its
    _finished_temporary's prefix was cut_to_bytes(name, 64)), aged."""
    from t2i_cli.files import cut_to_bytes

    tmp = folder / f".{cut_to_bytes(name, 64)}.{random_part}.tmp"
    tmp.write_bytes(b"half a caption")
    return _aged(tmp)


def test_a_killed_data_captions_temporary_of_a_long_name_left_by_0_18_0_is_removed(tmp_path: Path):
    """t2i 0.18.0 recorded a long caption name's temporary as its first 64 bytes alone, which 0.19.0's cleanup (which
    knows its own .HEAD…LAST20.XXXXXXXX.tmp) did not know for one: a killed 0.18.0 data caption's temporary beside
    a picture of a long name stayed for good. Now it is removed, once a minute old, where its record is exactly the
    first 64 bytes of a picture's NAME.txt there; a file of another shape, a fresh one, or the head of no picture's
    caption name stays."""
    pics = tmp_path / "pics"
    long_ascii = "a-small-red-bird-sitting-on-a-branch-of-an-old-oak-tree-in-the-early-morning-light"
    long_wide = "一只红色的小鸟站在一棵老橡树的树枝上看着清晨的阳光慢慢照亮整个森林"  # (cut at 63 bytes)
    for stem in (long_ascii, long_wide):
        _picture(pics / f"{stem}.png")
    killed = [_temporary_018(pics, f"{long_ascii}.txt"), _temporary_018(pics, f"{long_wide}.txt")]
    assert len(killed[1].name.encode()) - len(".k3x_9q2a.tmp") - 1 == 63  # (a head cut at a character's boundary)
    kept = [_temporary_018(pics, f"{long_ascii}.txt", "mine.bak"),  # not mkstemp's part
            _temporary_018(pics, "a-big-blue-whale-swimming-slowly-through-the-deep-cold-ocean-at-night.txt"),
            _temporary_018(pics, f"{long_ascii[:40]}-and-then-the-words-of-another-picture.txt")]
    fresh = pics / killed[0].name.replace("k3x_9q2a", "fresh123")
    fresh.write_bytes(b"another run writing now")
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    assert not any(p.exists() for p in killed), _names(pics)
    assert all(p.exists() for p in kept) and fresh.exists(), _names(pics)
    assert (pics / f"{long_wide}.txt").is_file() and (pics / f"{long_ascii}.txt").is_file()


def test_rerank_removes_0_18_0s_temporaries_of_long_map_and_copy_names(tmp_path: Path):
    """The same for rerank: 0.18.0's temporaries of an --explain map (explain-NAME-NNN.png) and of a --link-best
    copy (best/NAME-NNN.png) of a picture of a long name, removed where rerank removes its killed temporaries (its
    ranking's write, its best/), once a minute old; one of a name no picture ranked has stays."""
    from t2i_cli.files import recorded_by_018
    from t2i_cli.rerank import Ranked, link_best, write_ranking

    folder = tmp_path / "imgs"
    stem = "a-small-red-bird-sitting-on-a-branch-of-an-old-oak-tree-in-the-early-morning-light-000"
    ranked = [Ranked(_picture(folder / f"{stem}.png"), "a red bird", 0.5, rank=1)]
    killed_map = _temporary_018(folder, f"explain-{stem}-NNN.png")
    other = _temporary_018(folder, "explain-a-big-blue-whale-swimming-slowly-through-the-deep-cold-sea-NNN.png")
    write_ranking(folder, ranked)
    assert not killed_map.exists() and other.exists(), _names(folder)
    (folder / "best").mkdir()
    killed_copy = _temporary_018(folder / "best", f"{stem}-NNN.png")
    link_best(folder, ranked, 1)
    assert not killed_copy.exists(), _names(folder / "best")
    assert recorded_by_018(killed_copy.name[1:-len(".k3x_9q2a.tmp")], [f"{stem}-NNN.png"])
    assert not recorded_by_018(f"{stem}-NNN.png", [f"{stem}-NNN.png"])  # (a name that fits is recorded whole)


def test_a_latin_1_line_above_in_a_utf_8_manifest_naming_the_folder_refuses(tmp_path: Path):
    """ds/metadata.jsonl in UTF-8 whose first line names ds/été/green-cat.png and whose second, saved by a Windows
    tool in Latin-1, names "\\xe9t\\xe9/blue-fish.png": the manifest is read as Latin-1 only where no line names a
    picture here, so the second line's folder name, not in UTF-8's bytes, was not found, and `data caption ds/été`
    captioned blue-fish.png by its name unsaid. Now the folder's name is also looked for in Latin-1's bytes."""
    ds = tmp_path / "ds"
    _picture(ds / "\u00e9t\u00e9" / "green-cat.png")
    _picture(ds / "\u00e9t\u00e9" / "blue-fish.png")
    (ds / "metadata.jsonl").write_bytes('{"file_name": "\u00e9t\u00e9/green-cat.png", "text": "a green cat"}\n'
                                        .encode() + b'{"file_name": "\xe9t\xe9/blue-fish.png", "text": "a fish"}\n')
    assert _refused(ds / "\u00e9t\u00e9")
    r = run("data", "caption", ds / "\u00e9t\u00e9", "-q")
    assert r.exit_code == 1 and f"{ds / 'metadata.jsonl'} line 2" in " ".join(r.stderr.split()), r.stderr
    assert not (ds / "\u00e9t\u00e9" / "blue-fish.txt").exists()
