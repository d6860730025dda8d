"""Session 44, hP: small leftovers (train commands t2i suggests run as pasted, ...)."""

from __future__ import annotations

import io
import json
import os
import shlex
import struct
from pathlib import Path

import pytest
from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run


def _pictures(folder: Path, names=("red-bird.png", "blue_fish.png", "green-cat.png")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (20, 20), (80 * i, 200 - 60 * i, 90)).save(folder / name)
    return folder


def _trains_as_pasted(said: str, run_name: str, tmp_path: Path) -> None:
    words = shlex.split(said)
    assert words[:4] == ["t2i", "train", "--stage", "all"] and "--out" in words, said
    r = run(*words[1:], "--preset", "tiny", "--steps", "1", "--sample-every", "0")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / run_name / "weights" / "transformer.safetensors").is_file()


def test_a_manifest_beside_uncaptioned_pictures_names_a_train_command_that_runs(tmp_path, monkeypatch):
    """`t2i data caption` of a folder whose captions.csv holds its captions said "training reads with: t2i train
    --data FOLDER/captions.csv", which train refuses ("give --stage and --out for a new run")."""
    monkeypatch.chdir(tmp_path)
    pics = _pictures(tmp_path / "pics")
    (pics / "captions.csv").write_text("file_name,text\nred-bird.png,a red bird\nblue_fish.png,a blue fish\n"
                                       "green-cat.png,a green cat\n")
    line = one_line_failure(run("data", "caption", "pics"), 1)
    said = line.split("training reads with: ", 1)[1].split(";", 1)[0]
    assert said == "t2i train --stage all --data pics/captions.csv --out runs/captions", line
    _trains_as_pasted(said, "captions", tmp_path)


def test_data_caption_of_a_manifest_names_a_train_command_that_runs(tmp_path, monkeypatch):
    """`t2i data caption MANIFEST.csv` said "train on it with t2i train --data MANIFEST.csv" (refused as pasted); a
    Hugging Face metadata.csv names its run after its folder, not runs/metadata."""
    monkeypatch.chdir(tmp_path)
    _pictures(tmp_path / "birds")
    (tmp_path / "birds" / "metadata.csv").write_text("file_name,text\nred-bird.png,a red bird\n"
                                                    "blue_fish.png,a blue fish\ngreen-cat.png,a green cat\n")
    line = one_line_failure(run("data", "caption", "birds/metadata.csv"), 1)
    said = line.split("train on it with ", 1)[1]
    assert said == "t2i train --stage all --data birds/metadata.csv --out runs/birds", line
    _trains_as_pasted(said, "birds", tmp_path)


def test_resuming_a_whole_runs_dvae_names_the_run_as_typed(tmp_path, monkeypatch):
    """`t2i train --resume runs/x/dvae --steps N` warned "/home/.../runs/x's transformer stage learned this dVAE's
    codes ..., so /home/.../runs/x/weights keeps that dVAE": the run named by an absolute path the user never
    typed, where the rest of the line (and of the run's messages) says runs/x/dvae."""
    monkeypatch.chdir(tmp_path)
    _pictures(tmp_path / "pics")
    for name, caption in (("red-bird", "a red bird"), ("blue_fish", "a blue fish"), ("green-cat", "a green cat")):
        (tmp_path / "pics" / f"{name}.txt").write_text(caption + "\n")
    r = run("train", "--stage", "all", "--data", "pics", "--out", "runs/x", "--preset", "tiny", "--steps", "1",
            "--sample-every", "0", "-q")
    assert r.exit_code == 0, r.output
    r = run("train", "--resume", "runs/x/dvae", "--steps", "2", "-q")
    assert r.exit_code == 0, r.output
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("warning: runs/x's transformer stage learned this dVAE's codes"), first
    assert "so runs/x/weights keeps that dVAE" in first and str(tmp_path) not in r.stderr, r.stderr


def test_a_stale_export_journal_says_how_to_use_the_folder_when_its_run_is_gone(tmp_path):
    """A weights folder holding an export journal was refused with "run that export again" alone: where the run it
    came from is gone, no export can, and the user was stuck. The line now names the journal to remove."""
    from t2i_cli.weights import EXPORT_JOURNAL

    weights = build_tiny_folder(tmp_path / "my weights", seed=0)
    journal = weights / EXPORT_JOURNAL
    journal.write_text(json.dumps({"renames": [[".dvae.safetensors.t2i-1.tmp", "dvae.safetensors"]]}))
    line = one_line_failure(run("info", weights))
    assert line.endswith(f"or, where its run is gone, remove {shlex.quote(str(journal))} to use the folder as it is "
                         f"(perhaps mixed)"), line
    os.remove(shlex.split(line.split(", remove ", 1)[1])[0])  # the path as the line names it
    assert run("info", weights).exit_code == 0


@pytest.mark.parametrize("fails_at", [1, 2])
def test_an_error_at_an_export_rename_leaves_the_state_its_journal_says(tmp_path, monkeypatch, fails_at):
    """An OSError at one of atomic_write_set's renames (a full disk) removed every temporary not yet renamed but
    left the journal: at the first rename, a whole folder was refused as cut by a kill; after it, the journal
    named temporaries that were gone, so nothing could finish the set. Now: at the first, the old files and no
    journal; after it, the journal and its temporaries, which finish_set renames, the set then whole and new."""
    from t2i_cli import files

    a, b, journal = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / ".journal.json"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    real, calls = os.replace, []

    def failing(src, dst):  # (the journal's own write renames too: only the set's renames are counted)
        calls.extend([dst] if Path(dst) in (a, b) else [])
        if Path(dst) in (a, b) and len(calls) == fails_at:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(OSError):
        files.atomic_write_set([(a, b"new a"), (b, b"new b")], journal)
    monkeypatch.setattr(files.os, "replace", real)
    if fails_at == 1:
        assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]  # no journal, no temporary
        return
    assert journal.is_file() and (a.read_bytes(), b.read_bytes()) == (b"new a", b"old b")
    assert files.finish_set(journal, ("a.bin", "b.bin")) == [b]
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]


def _png_with_exif(path: Path, size: tuple[int, int], orientation: int, after_pixels: bool) -> Path:
    """A PNG whose eXIf chunk holds orientation, before its pixels (as Pillow writes it) or after them (moved
    there, its CRC still whole: it covers the chunk's type and data)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG", exif=exif.tobytes())
    data, at, chunks = buf.getvalue(), 8, []
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        chunks.append((data[at + 4:at + 8], data[at:at + 12 + n]))
        at += 12 + n
    if after_pixels:
        moved = [c for kind, c in chunks if kind == b"eXIf"]
        chunks = [(k, c) for k, c in chunks if k != b"eXIf"]
        chunks.insert(len(chunks) - 1, (b"eXIf", moved[0]))  # (before IEND)
    path.write_bytes(data[:8] + b"".join(c for _, c in chunks))
    return path


@pytest.mark.parametrize("after_pixels", [False, True])
def test_image_size_of_a_png_reads_its_orientation_without_decoding_it(tmp_path, monkeypatch, after_pixels):
    """images.image_size called Pillow's getexif, which for a PNG decodes the whole picture (to find an eXIf chunk
    after the pixels): 196 ms a 12-megapixel PNG, and image_prompt decoded it again. Its chunks are now stepped
    over, none decoded, and the orientation found is the one load_rgb turns the picture by, wherever the eXIf
    chunk is."""
    from PIL import Image, PngImagePlugin

    from t2i_cli import images

    png = _png_with_exif(tmp_path / "turned.png", (40, 20), 6, after_pixels)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (40, 20)).save(plain)
    shown = images.load_rgb(png, 20)  # (decodes: before the decode is forbidden)
    with Image.open(png) as im:
        im.load()
        assert im.getexif().get(0x0112) == 6  # (what load_rgb turns by)
    assert shown.size == (20, 20)

    def no_decode(self):
        raise AssertionError("image_size decoded the picture")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    assert images.image_size(png) == (20, 40)  # turned a quarter, as load_rgb shows it
    assert images.image_size(plain) == (40, 20)
