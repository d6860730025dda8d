"""Session 46 (lead): mends of the closing reads and of the merge. Each test fails without its mend."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def test_a_windows_path_in_a_line_above_that_is_not_json_refuses_data_caption(tmp_path: Path):
    """A line above the folder that is not JSON is read as JSON's strings after its escapes: a Windows path typed
    with one backslash, "train\\new.png", read as an escape ("\\n", a newline) was no "train\\" any more, so the line
    was not found and the picture it captions was captioned by its name, unsaid (a "train\\cat.png" refused)."""
    (tmp_path / "ds" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "other").mkdir()
    Image.new("RGB", (32, 32), (200, 0, 0)).save(tmp_path / "ds" / "train" / "new.png")
    Image.new("RGB", (32, 32), (0, 0, 200)).save(tmp_path / "ds" / "other" / "b.png")
    (tmp_path / "ds" / "captions.jsonl").write_text('{"file_name": "other/b.png", "text": "b"}\n'
                                                    '{"file_name": "train\\new.png", "text": "a boat",}\n')
    r = run("data", "caption", tmp_path / "ds" / "train", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "line 2" in r.stderr and "would write no caption file" in r.stdout, (r.stdout, r.stderr)
    r = run("data", "caption", tmp_path / "ds" / "train")
    assert r.exit_code != 0 and not (tmp_path / "ds" / "train" / "new.txt").exists(), (r.stdout, r.stderr)
