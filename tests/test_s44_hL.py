"""Session 44 (hL): leftovers of this session's first workers, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def _pictures(folder: Path, *stems: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        Image.new("RGB", (16, 16), (30 * i % 256, 90, 200)).save(folder / f"{stem}.png")
    return folder


def _truncated(path: Path) -> Path:
    Image.effect_noise((64, 64), 80).convert("RGB").save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_data_caption_leaves_a_picture_t2i_cannot_open_without_a_caption_and_says_so(tmp_path):
    # a truncated PNG was captioned "cut cat", then left out of training as an "unreadable image"
    folder = _pictures(tmp_path / "pics", "red_bird")
    _truncated(folder / "cut_cat.png")
    r = run("data", "caption", folder)
    assert r.exit_code == 0, r.output
    assert not (folder / "cut_cat.txt").exists()
    assert (folder / "red_bird.txt").read_text(encoding="utf-8") == "red bird\n"
    assert "1 picture that t2i cannot open left without a caption" in r.stderr
    assert str(folder / "cut_cat.png") in r.stderr and "unreadable image" in r.stderr
    # ... and alone, it is refused in one line naming it (it was captioned)
    alone = tmp_path / "alone"
    alone.mkdir()
    _truncated(alone / "cut_cat.png")
    r = run("data", "caption", alone)
    assert r.exit_code == 1 and not (alone / "cut_cat.txt").exists()
    assert "no caption to write" in r.stderr and str(alone / "cut_cat.png") in r.stderr
    assert "Traceback" not in r.output
