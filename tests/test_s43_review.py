"""Session 43 review of the day's diff: defects found in the new code (a pipe named like a manifest above a folder,
...), each test failing without its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import SRC


def _uncaptioned(folder: Path, names: tuple[str, ...] = ("red bird", "blue fish")) -> None:
    folder.mkdir(parents=True)
    for name in names:
        Image.new("RGB", (16, 16), (200, 0, 0)).save(folder / f"{name}.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_named_like_a_csv_manifest_above_the_folder_is_not_waited_for(tmp_path: Path):
    """_manifest_above looks for a manifest of another name above the folder (ds/captions.csv) and read the header
    of each .csv there before asking whether it is a file: a named pipe ds/other.csv (a process's output) kept
    `data caption ds/train` (and `data preview`, and `train`) waiting for its first line, forever. It is no
    manifest, as a pipe named .jsonl is none."""
    _uncaptioned(tmp_path / "ds" / "train")
    os.mkfifo(tmp_path / "ds" / "other.csv")
    env = dict(os.environ, PYTHONPATH=SRC)
    try:
        r = subprocess.run([sys.executable, "-m", "t2i_cli", "data", "caption", str(tmp_path / "ds" / "train"),
                            "--dry-run"], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("data caption waited for a pipe named other.csv in the folder above")
    assert r.returncode == 0, r.stderr
    assert "red bird.txt: red bird" in r.stdout and "blue fish.txt: blue fish" in r.stdout


def test_a_rocm_machine_is_left_to_torch_by_the_cuda_probe(monkeypatch, tmp_path: Path):
    """cuda_surely_absent took a Linux machine without libcuda.so.1 for one without CUDA, and generate refused
    `--device cuda` there before torch loaded (with or without --prompts): a ROCm build of torch runs "cuda" on an
    AMD GPU, with no libcuda, and had drawn there. Where AMD's ROCm driver is present it cannot tell: torch decides
    (devices.resolve_device). Without that driver, no libcuda is still no CUDA."""
    import ctypes

    import t2i_cli.cli as cli

    def no_libcuda(name, *a, **k):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", no_libcuda)
    kfd = tmp_path / "kfd"
    kfd.touch()
    monkeypatch.setattr(cli, "ROCM_DEVICE", str(kfd), raising=False)
    assert cli.cuda_surely_absent() is False
    kfd.unlink()
    assert cli.cuda_surely_absent() is True


def test_a_series_is_looked_for_in_one_pass_over_its_numbers(monkeypatch):
    """series_captions asked of each number whether the next is among them by making the set of them again for
    each: a folder of thousands of numbered names none of them in a row ("shot 10", "shot 12", ...) took seconds
    (5,000 names, 10 s) for what one set answers. Counted here by the numbers read (int), not timed: once each
    (the same captions: no two in a row, so each keeps its number; with two in a row, a series)."""
    from t2i_cli import name_captions
    from t2i_cli.name_captions import CaptionPlan, series_captions

    read = [0]

    def counted_int(*args):
        read[0] += 1
        return int(*args)

    monkeypatch.setattr(name_captions, "int", counted_int, raising=False)
    plan = CaptionPlan(Path("/pictures"), "name")
    numbers = range(10, 610, 2)
    for i in numbers:
        plan.writes[Path(f"/pictures/shot {i}.txt")] = (f"shot {i}", [Path(f"/pictures/shot {i}.png")])
    series_captions(plan)
    assert [c for c, _ in plan.writes.values()] == [f"shot {i}" for i in numbers]
    assert read[0] <= 2 * len(numbers), read[0]
    plan.writes[Path("/pictures/shot 11.txt")] = ("shot 11", [Path("/pictures/shot 11.png")])
    series_captions(plan)
    assert {c for c, _ in plan.writes.values()} == {"shot"}


def test_a_year_after_uni_is_no_glyph_name():
    """caption_of read a font's glyph name uniXXXX as its character (8f691e8), and so a university's year too:
    "my uni2018 photos" was "my ‘ photos" (U+2018, a quotation mark), "uni2022_graduation" "• graduation" and
    "uni1999" a letter of New Tai Lue. Four decimal digits that read as a year (1900..2039) are the name's words, as
    before; a glyph's name is still its character."""
    from t2i_cli.name_captions import caption_of

    assert caption_of("my uni2018 photos") == "my uni 2018 photos"
    assert caption_of("uni2022_graduation") == "uni 2022 graduation"
    assert caption_of("uni1999 reunion") == "uni 1999 reunion"
    assert caption_of("uni00E9") == "é"
    assert caption_of("glyph_uni2605") == "glyph black star"
    assert caption_of("uniFACE") == "uni face"
