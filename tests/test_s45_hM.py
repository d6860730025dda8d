"""Session 45 (hM): a review of the session's data-side changes, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from test_s42_caption import _captions, _pictures


def test_a_colour_beside_its_copies_is_a_counters_series_beside_another_colours_copies(tmp_path: Path):
    """macOS' copies of colour swatches, "red" and "red 2" beside "blue" and "blue 2", are copies: each is "red",
    "blue", as before the Hanabi rule (a colour's numbers beside another colour's same ones are its cards' values),
    which read them as cards "red 2", "blue 2". A card always has its number: Hanabi's cards stay each its value."""
    copies = _pictures(tmp_path / "copies", "red", "red 2", "blue", "blue 2")
    cards = _pictures(tmp_path / "cards", *(f"{c}_{i}" for c in ("blue", "red") for i in range(1, 4)))
    for folder in (copies, cards):
        r = run("data", "caption", folder, "-q")
        assert r.exit_code == 0, r.stderr
    assert _captions(copies) == {"red": "red", "red 2": "red", "blue": "blue", "blue 2": "blue"}
    assert _captions(cards) == {f"{c}_{i}": f"{c} {i}" for c in ("blue", "red") for i in range(1, 4)}


def test_a_csv_manifest_above_makes_paths_only_of_its_short_rows_cells(tmp_path: Path, monkeypatch):
    """A metadata.csv above a folder is read for the folder's pictures without a caption: each cell of each of its
    rows was made a path (_above_key) to tell whether a short row may name one, before the row was found whole,
    4.4 times the CPU of reading it (bench/rows_above_csv.py). Now only a short row's are; what is found is the
    same: a short row naming a picture here is a line left out, a whole one of another folder's is nothing."""
    from t2i_cli import data

    _pictures(tmp_path / "ds" / "train", "a", "b")
    rows = [f"val/p{i}.png,a red bird {i}" for i in range(200)]
    (tmp_path / "ds" / "metadata.csv").write_text("file_name,text\n" + "\n".join([*rows, "train/b.png"]) + "\n",
                                                  encoding="utf-8")
    made = []
    real = data._above_key
    monkeypatch.setattr(data, "_above_key", lambda manifest, path: made.append(path) or real(manifest, path))
    folder = tmp_path / "ds" / "train"
    found, more, left = data._rows_above(tmp_path / "ds" / "metadata.csv",
                                         {data._key(folder / "a.png"), data._key(folder / "b.png")},
                                         data._row_needles(folder))
    assert (found, more) == (set(), False)
    assert left == {data.CSV_SHORT_ROW: (1, f"{tmp_path / 'ds' / 'metadata.csv'} line 202")}
    assert made == ["train/b.png"]


def test_data_caption_leaves_a_users_file_named_like_a_captions_temporary(tmp_path: Path):
    """data caption removes a killed run's caption temporaries in every folder of its pictures, one where every
    caption is written too: there a user's .bird.txt.mine.tmp, a minute old, was removed as one (and the run said
    "nothing to write"). A temporary is mkstemp's .NAME.XXXXXXXX.tmp: that one is removed, the user's file stays."""
    import os
    import time

    folder = _pictures(tmp_path / "pics", "bird", "cat")
    for stem in ("bird", "cat"):
        (folder / f"{stem}.txt").write_text(f"a {stem}\n", encoding="utf-8")
    mine, killed = folder / ".bird.txt.mine.tmp", folder / ".cat.txt.k3j_9x0a.tmp"
    for p in (mine, killed):
        p.write_text("half", encoding="utf-8")
        os.utime(p, (time.time() - 120, time.time() - 120))
    r = run("data", "caption", folder, "-q")
    assert r.exit_code == 0, r.stderr
    assert mine.read_text(encoding="utf-8") == "half"
    assert not killed.exists()


def test_a_manifest_line_above_naming_a_picture_after_a_colon_may_caption_it(tmp_path: Path):
    """A line of ds/metadata.jsonl that is not JSON, {"file_name":train/red-bird.png,...} (its name typed unquoted),
    may caption ds/train's red-bird.png: 0.18.0 said so and data caption refused, but the folder's name was taken
    for a path's part only after a quote, a space, a comma, ; / or \\, so it went unsaid and the picture was captioned
    by its name. A name's part is one after no letter, digit, _, . or - ("mytrain/" is another folder's)."""
    ds = tmp_path / "ds"
    _pictures(ds / "train", "red-bird")
    for line, refused in [(b'{"file_name":train/red-bird.png,"text":"a red bird"}\n', True),
                          (b'{"file_name":mytrain/red-bird.png,"text":"a red bird"}\n', False),
                          (b'{"file_name":my.train/red-bird.png,"text":"a red bird"}\n', False)]:
        (ds / "metadata.jsonl").write_bytes(line)
        r = run("data", "caption", ds / "train", "--dry-run")
        assert r.exit_code == 0, r.stderr
        assert ("has lines left out that may caption pictures here" in " ".join(r.stderr.split())) == refused, \
            (line, r.stderr)
