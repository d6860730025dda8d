"""Session 41 review of the day's diff: each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run
from t2i_cli.images import read_png_text


def _pictures(folder: Path, *stems: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        Image.new("RGB", (16, 16), (30 * i % 256, 90, 200)).save(folder / f"{stem}.png")
    return folder


def test_copies_of_one_named_number_are_no_series(tmp_path: Path):
    """`data caption` of "route 66", "route 66 copy" and "route 66 copy 2" captioned all three "route": three names
    of one caption "route 66" were taken for a counter's series ("beach 1" .. "beach 3"), which needs three steps
    of a counter. Copies keep the name's number; a real series still loses it."""
    pics = _pictures(tmp_path / "pics", "route 66", "route 66 copy", "route 66 copy 2", "beach 1", "beach 2",
                     "beach 3")
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    got = {p.stem: p.read_text(encoding="utf-8").strip() for p in pics.glob("*.txt")}
    assert got == {"route 66": "route 66", "route 66 copy": "route 66", "route 66 copy 2": "route 66",
                   "beach 1": "beach", "beach 2": "beach", "beach 3": "beach"}


def test_a_downloads_copy_of_a_named_number_keeps_the_number():
    """A browser's second download of "route 66.jpg" is "route 66 (1).jpg": it was captioned "route" (the "(1)"
    hid the named number), its original "route 66". A counter in parentheses alone still goes."""
    from t2i_cli.name_captions import caption_of

    assert caption_of("route 66 (1)") == caption_of("route 66") == "route 66"
    assert caption_of("apollo 11 (2)") == "apollo 11"
    assert caption_of("bird (12)") == "bird" and caption_of("bird 2 (3)") == "bird 2"  # (s42: a digit kept)


def test_an_escape_of_a_byte_windows_leaves_unused_writes_no_control_character(tmp_path: Path):
    """"song%81.png" was captioned "song\\x81": the byte 81, which code page 1252 leaves unused, was read as
    Latin-1's C1 control character and written into song%81.txt. Such a run is no Windows text: it stays as
    written, as a run that is neither UTF-8 nor capitals does; "caf%E9" still reads as café."""
    from t2i_cli.name_captions import caption_of

    for name in ("song%81", "song%8D%E9", "x %9D"):
        caption = caption_of(name)
        assert caption is None or not any(0x80 <= ord(ch) <= 0x9F for ch in caption), (name, caption)
    assert caption_of("song%81") == "song%81"
    pics = _pictures(tmp_path / "pics", "blue song%90", "caf%E9")
    assert run("data", "caption", pics, "-q").exit_code == 0
    assert (pics / "blue song%90.txt").read_text(encoding="utf-8").strip() == "blue song%90"
    assert (pics / "caf%E9.txt").read_text(encoding="utf-8").strip() == "café"


def test_vary_top_k_1_at_a_strength_that_redraws_every_cell_draws_one(tmp_path: Path):
    """`vary --top-k 1 --strength 0.97` on a dVAE of 16 cells redraws round(0.97 x 16) = 16, every cell, as
    --strength 1 does: its default 4 variations (and --n 3) were copies of one image (the same codes), which
    --strength 1 refuses. It draws one, and refuses --n above 1; a strength that keeps a cell keeps its --n."""
    weights = build_tiny_folder(tmp_path / "w")  # (16 px, downsample 4: 16 cells)
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    vary = ["vary", src, "--weights", weights, "--device", "cpu", "-q", "--top-k", "1"]
    line = one_line_failure(run(*vary, "--strength", "0.97", "--n", "3", "--out", tmp_path / "a"), 2)
    assert "--n 3 with --top-k 1 and --strength 0.97, which redraws every cell of 16," in line, line
    assert not (tmp_path / "a").exists()
    r = run(*vary, "--strength", "0.97", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "b").glob("*.png"))) == 1
    r = run(*vary, "--strength", "0.9", "--n", "2", "--out", tmp_path / "c")  # 14 of 16 cells: each its own
    assert r.exit_code == 0, r.stderr
    codes = {read_png_text(p)["t2i_codes"] for p in (tmp_path / "c").glob("*.png")}
    assert len(codes) == 2


def test_generate_prompts_refuses_a_bad_threads_before_reading_the_pipe(tmp_path: Path, monkeypatch):
    """`generate --prompts - --threads 0` read standard input to its end (a pipe from a slow writer: until the writer
    was done) before refusing --threads 0, which it refused at once before the prompts were read ahead of the
    inference lock; so did a torchrun start of it. Both are refused before anything is read."""
    from typer.testing import CliRunner

    import t2i_cli.cli as cli

    read = []
    monkeypatch.setattr(cli, "read_prompts", lambda *a, **k: read.append(a) or cli.Prompts((), ()))
    (tmp_path / "p.txt").write_text("a red bird\n")
    r = CliRunner().invoke(cli.app, ["generate", "--prompts", str(tmp_path / "p.txt"), "--threads", "0", "--out",
                                     str(tmp_path / "out")])
    assert r.exit_code == 2 and "--threads must be between 1 and" in r.output, r.output
    monkeypatch.setenv("WORLD_SIZE", "2")
    r = CliRunner().invoke(cli.app, ["generate", "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "runs in one process" in r.output, r.output
    assert read == []


def test_a_txt_line_and_a_row_of_exactly_64_captions_are_trimmed_and_counted(tmp_path: Path):
    """A picture with one .txt line and a metadata.jsonl row of exactly 64 captions has 65: the last was cut
    unsaid (the summary said "all of its captions are used"), since a row of 64 was taken for one its reader had
    already trimmed and counted. It is counted once among those with too many; a row of 70 alone still is, and a
    row of 63 beside the .txt line is not."""
    import json

    from t2i_cli import data

    for k, too_many in ((64, 1), (63, 0)):
        ds = _pictures(tmp_path / f"ds{k}", "a")
        (ds / "a.txt").write_text("a red square\n")
        (ds / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "text": [f"r{i}" for i in range(k)]})
                                           + "\n")
        got = data.open_source(str(ds), 16, val_fraction=0.0)
        assert got.captions_at(0) == ["a red square", *(f"r{i}" for i in range(min(k, 63)))]
        assert got.skipped.get(data.TOO_MANY_CAPTIONS, 0) == too_many, (k, got.skipped)
    ds = _pictures(tmp_path / "alone", "a")
    (ds / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "text": [f"r{i}" for i in range(70)]}) + "\n")
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert len(got.captions_at(0)) == 64 and got.skipped[data.TOO_MANY_CAPTIONS] == 1


def test_keep_above_the_default_candidates_with_top_k_1_is_refused_as_greedy(tmp_path: Path):
    """`generate --top-k 1 --keep 9` said "give --keep 1..4, or --candidates N with N >= --keep", both of which
    --top-k 1 refuses (--keep 2 and --candidates 9 draw copies of one image); it is refused as --keep 2 is, saying
    to leave --keep out."""
    weights = build_tiny_folder(tmp_path / "w")
    for keep in ("9", "2"):
        line = one_line_failure(run("generate", "--weights", weights, "--out", tmp_path / "o", "--device", "cpu",
                                    "--top-k", "1", "--keep", keep, "a red bird"), 2)
        assert f"--keep {keep} with --top-k 1" in line and "leave --keep out" in line, line
        assert "give --keep 1.." not in line
    assert not (tmp_path / "o").exists()
