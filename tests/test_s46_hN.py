"""Session 46, hN: review of hC's changes (lines of a manifest above a folder read as JSON's strings, its folder's
name in Latin-1, 0.18.0's temporaries, make_folder's probes)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from conftest import run


def _picture(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def _refused(folder: Path) -> bool:
    """Whether `data caption FOLDER` refuses for lines of a manifest above that may caption its pictures (its dry
    run warns it and says it would write no caption file)."""
    r = run("data", "caption", folder, "--dry-run", "-q")
    assert r.exit_code == 0, r.stderr
    said = "above the folder, has lines left out that may caption pictures here" in " ".join(r.stderr.split())
    assert said == ("would write no caption file" in r.stdout), (r.stdout, r.stderr)
    return said


# ------------------------------------------------------------------ 1. a Latin-1 line above holding a backslash
def test_a_latin_1_line_above_holding_a_backslash_naming_the_folder_refuses(tmp_path: Path):
    """ds/metadata.jsonl in UTF-8 naming ds/été/green-cat.png, and a line a Windows tool wrote in Latin-1 naming
    "\\xe9t\\xe9\\\\blue-fish.png" (a Windows path, its backslash escaped), or "\\xe9t\\xe9/blue-fish.png" beside a
    caption holding \\": the folder's name was looked for in Latin-1's bytes only in a line without a backslash (one
    with any went to the reading of its escapes, which knew the name in UTF-8 alone), so `data caption ds/été`
    captioned blue-fish.png by its name, unsaid. Now such a line refuses, as one without a backslash did."""
    ds = tmp_path / "ds"
    ete = ds / "\u00e9t\u00e9"
    _picture(ete / "green-cat.png")
    _picture(ete / "blue-fish.png")
    first = '{"file_name": "\u00e9t\u00e9/green-cat.png", "text": "a green cat"}\n'.encode()
    for line in [b'{"file_name": "\xe9t\xe9\\\\blue-fish.png", "text": "a fish"}\n',
                 b'{"file_name": "\xe9t\xe9/blue-fish.png", "text": "a \\"blue\\" fish"}\n']:
        (ds / "metadata.jsonl").write_bytes(first + line)
        assert _refused(ete), line
        r = run("data", "caption", ete, "-q")
        assert r.exit_code == 1 and f"{ds / 'metadata.jsonl'} line 2" in " ".join(r.stderr.split()), r.stderr
        assert not (ete / "blue-fish.txt").exists()
    # ... a Latin-1 caption's word (not a path's part) still does not refuse
    (ds / "metadata.jsonl").write_bytes(first + b'{"file_name": "x.png", "text": "un \xe9t\xe9 \\"chaud\\""}\n')
    assert not _refused(ete)


# ------------------------------------------------------------------ 2. a line of many mentions of the folder
class _CountedBytes(bytes):
    """bytes that add up how many bytes count() scans (what the quotes before each mention cost)."""

    scanned = 0

    def count(self, sub, start=0, end=None):  # type: ignore[override]
        end = len(self) if end is None else end
        type(self).scanned += max(0, end - start)
        return super().count(sub, start, end)


def test_the_quotes_before_each_mention_of_the_folder_are_counted_once(tmp_path: Path):
    """A line above that is not JSON, of many strings naming train/red-bird.png (which has its caption), had the
    quotes before each mention counted from the line's start: a 1 MiB line, 50,000 mentions, was 6 s of CPU, 16 of
    them over a minute and a half of `data caption` (bench/lines_left_above_cost.py --kind many). Now they are
    counted on from the mention before: each byte once; and what each mention is (in a whole string, outside one,
    in one cut) is told as before."""
    from t2i_cli.data import _strings_mentioning

    in_path = re.compile(rb"(?<![\w.\x80-\xff-])train[/\\]")
    line = _CountedBytes(b'{"x": [' + b'"train/red-bird.png", ' * 2000 + b'"end"\n')
    _CountedBytes.scanned = 0
    found = list(_strings_mentioning(line, in_path))
    assert found == [b"train/red-bird.png"] * 2000
    assert _CountedBytes.scanned <= len(line), _CountedBytes.scanned  # (was ~2000 * len(line) / 2)
    tail = list(_strings_mentioning(b'["train/a.png", train/b.png, "x train/c.png", "train/d.png', in_path))
    assert tail == [b"train/a.png", None, b"x train/c.png", None]

    ds = tmp_path / "ds"
    _picture(ds / "train" / "red-bird.png")
    _picture(ds / "train" / "blue-fish.png")
    (ds / "train" / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    many = b'{"x": [' + b'"train/red-bird.png", ' * 2000
    for end, refused in [(b'"x"\n', False), (b'"train/blue-fish.png"\n', True), (b"train/blue-fish.png\n", True),
                         (b'"a", "train/red-bird.png\n', True)]:
        (ds / "metadata.jsonl").write_bytes(many + end)
        assert _refused(ds / "train") == refused, end


# ------------------------------------------------------------------ 3. a long string of a line that is not JSON
def test_a_long_string_of_a_line_above_that_is_not_json_is_read_in_bounded_memory(tmp_path: Path):
    """A line above that is not JSON holding a backslash is read as JSON's strings: they were found by a regular
    expression whose repeat held its place for each character or escape, 103 MiB traced for one string of
    900 kB ("train/a\\/a\\/..."; a line is read up to 1 MiB, each of the manifest's 16 MiB in turn). Now by find,
    in the memory of the line (the 16 MiB read of the manifest is most of what is measured); the strings found
    are those JSON reads (a quote after an odd run of backslashes is escaped) and the line still refuses."""
    import tracemalloc

    from t2i_cli.data import _json_strings, _key, _rows_above

    text = r'{"a": "x\"y", "b": "c\\", "d": "e\\\"f\\\\", g "h'
    assert [(text[a:b], closed) for a, b, closed in _json_strings(text)] == [
        ("a", True), (r"x\"y", True), ("b", True), ("c\\\\", True), ("d", True), (r"e\\\"f\\\\", True),
        ("h", False)]

    ds = tmp_path / "ds"
    _picture(ds / "train" / "blue-fish.png")
    (ds / "metadata.jsonl").write_bytes(b'{"x": "train/' + b"a\\/" * 300_000 + b"\n")
    tracemalloc.start()
    try:
        _, _, left = _rows_above(ds / "metadata.jsonl", {_key(ds / "train" / "blue-fish.png")}, ("train",))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(left) == ["manifest line not JSON in UTF-8"], left
    assert peak < 40 << 20, peak >> 20  # (was 103 MiB)


# ------------------------------------------------------------------ 4. data caption's look for 0.18.0's temporaries
def test_a_temporary_of_a_64_byte_record_costs_no_stat_of_each_picture(tmp_path: Path, monkeypatch):
    """Since t2i 0.18.0's temporaries are recognised (recorded_by_018), a temporary's record of 61 to 64 bytes (any
    name: .xxxx...xxxx.k3x_9q2a.tmp) had data caption look at every picture of the folder as a file (a stat each)
    before it asked whether the picture's caption has that record. Now the file is looked at only where it has:
    none for a record that is no picture's; the picture's own where it is (and that temporary is still its)."""
    from t2i_cli.files import cut_to_bytes
    from t2i_cli.name_captions import _caption_name

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(50):
        (pics / f"picture-{i:02d}.png").write_bytes(b"")
    long = "a-small-red-bird-sitting-on-a-branch-of-an-old-oak-tree-in-the-early-morning-light"
    (pics / f"{long}.png").write_bytes(b"")
    looked: list[Path] = []
    is_file = Path.is_file

    def counted(self: Path) -> bool:
        looked.append(self)
        return is_file(self)

    monkeypatch.setattr(Path, "is_file", counted)
    assert not _caption_name(pics, "x" * 64)
    assert looked == [], len(looked)  # (was 51, one for each picture)
    assert _caption_name(pics, cut_to_bytes(f"{long}.txt", 64))
    assert looked == [pics / f"{long}.png"], looked


# ------------------------------------------------------------------ 5. a Latin-1 line naming a captioned picture
def test_a_latin_1_line_above_naming_a_captioned_picture_is_passed_over_as_in_utf_8(tmp_path: Path):
    """A line that is not JSON naming a picture that has its caption (ds/été/red-bird.png beside red-bird.txt) is
    passed over (acd2bf6), in UTF-8 and in a manifest all in Latin-1 (read as such); but one a Windows tool wrote in
    Latin-1 ("\\xe9t\\xe9/red-bird.png") in a manifest whose other lines are UTF-8 and name pictures here refused
    `data caption ds/été`: its name, of bytes that are not UTF-8, named no file. Now such a name of no file is read
    as Latin-1 too, as the whole manifest would be; a line naming the picture without a caption still refuses."""
    ds = tmp_path / "ds"
    ete = ds / "\u00e9t\u00e9"
    for name in ("green-cat.png", "blue-fish.png", "red-bird.png"):
        _picture(ete / name)
    (ete / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    first = '{"file_name": "\u00e9t\u00e9/green-cat.png", "text": "a green cat"}\n'.encode()
    for line in [b'{"file_name": "\xe9t\xe9/red-bird.png", "text": "a bird"\n',
                 b'{"file_name": "\xe9t\xe9\\\\red-bird.png", "text": "a bird"\n']:
        for head in (b"", first):
            (ds / "metadata.jsonl").write_bytes(head + line)
            assert not _refused(ete), (head, line)
    (ds / "metadata.jsonl").write_bytes(first + b'{"file_name": "\xe9t\xe9/blue-fish.png", "text": "a fish"\n')
    assert _refused(ete)
    (ds / "metadata.jsonl").write_bytes(first + b'{"file_name": "\xe9t\xe9/red-bird.png", "text": "a bird"\n')
    r = run("data", "caption", ete, "-q")
    assert r.exit_code == 0 and (ete / "blue-fish.txt").read_text(encoding="utf-8") == "blue fish\n", r.stderr
