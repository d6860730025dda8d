"""Session 46, hN: review of hC's changes (lines of a manifest above a folder read as JSON's strings, its folder's
name in Latin-1, 0.18.0's temporaries, make_folder's probes)."""

from __future__ import annotations

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
