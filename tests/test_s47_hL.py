"""Session 47, hL: the review of hA's greedy --top-p checks and hH's stop lines; each mend's test fails without it."""

from __future__ import annotations

import pytest

from conftest import run


def _stopped_once_finished(monkeypatch):
    """files._finished_temporary as a stop (Ctrl-C) reaches it just after it returns its finished temporary, before
    the caller has recorded the answer (the window between its return and atomic_write_set's temps.append)."""
    from t2i_cli import files

    real = files._finished_temporary

    def finished_then_stopped(*a, **k):
        real(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "_finished_temporary", finished_then_stopped)


def test_a_stop_of_export_just_after_a_temporary_is_finished_leaves_no_temporary(tmp_path, monkeypatch):
    """`t2i export` stopped just as a model's temporary was finished, before atomic_write_set recorded it, said
    "interrupted: nothing was written" and left that hidden temporary (.tokenizer.json.XXXX.tmp) in --to, unnamed
    (only the next export into the folder removed it); the temporary is now removed as a stop before the renames
    removes the others."""
    assert run("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", tmp_path / "tok").exit_code == 0
    w = tmp_path / "w"
    w.mkdir()
    _stopped_once_finished(monkeypatch)
    r = run("export", tmp_path / "tok", "--to", w)
    assert r.exit_code == 130 and r.stderr.strip().splitlines()[-1] == "interrupted: nothing was written", r.stderr
    assert sorted(p.name for p in w.iterdir()) == []


@pytest.mark.parametrize("how", ["atomic_write_bytes", "write_new", "atomic_write_set"])
def test_a_stop_just_after_a_temporary_is_finished_leaves_no_temporary(how, tmp_path, monkeypatch):
    """The same window in each writer of files.py: a stop between _finished_temporary's return and the caller's
    hold of its answer (atomic_write's try, write_new's) left the hidden temporary beside the file (generate's
    pictures, a JSON record, a weights folder's set), for a later run to remove, where it could."""
    from t2i_cli import files

    _stopped_once_finished(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        if how == "atomic_write_bytes":
            files.atomic_write_bytes(tmp_path / "a.json", b"{}")
        elif how == "write_new":
            files.write_new(tmp_path, "a-red-bird", ".png", lambda tmp: tmp.write_bytes(b"png"))
        else:
            files.atomic_write_set([(tmp_path / "a.json", b"{}"), (tmp_path / "b.json", b"{}")])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_stop_of_rerank_link_best_as_it_removes_earlier_copies_says_so_and_its_record_agrees(tmp_path, tiny_weights,
                                                                                               monkeypatch):
    """`rerank --link-best` stopped as it removed its earlier copies no longer among the best from best/ said "the
    copies made in best/ before the stop, which best/t2i-copies.json names": none was made, the copy removed went
    unsaid, and the record still named it (a stop between the removal and the record's update). The removal and the
    record's update are now one step, and the line says how many earlier copies went."""
    import json
    import os
    import signal

    from t2i_cli import rerank as rr

    pics = tmp_path / "pics"
    assert run("generate", "a red bird", "--weights", tiny_weights, "--n", "3", "--out", pics).exit_code == 0
    assert run("rerank", pics, "--weights", tiny_weights, "--top", "2", "--link-best").exit_code == 0
    best, record = pics / "best", pics / "best" / "t2i-copies.json"
    assert len(json.loads(record.read_text())) == 2
    real = rr.atomic_write_json

    def stopped_at_the_record(path, *a, **k):  # Ctrl-C as the record is rewritten, the spare removed
        if path == record:
            os.kill(os.getpid(), signal.SIGINT)
        return real(path, *a, **k)

    monkeypatch.setattr(rr, "atomic_write_json", stopped_at_the_record)
    r = run("rerank", pics, "--weights", tiny_weights, "--top", "1", "--link-best")
    assert r.exit_code == 130, (r.exit_code, r.stderr)
    assert r.stderr.strip() == (f"interrupted: 2 finished files kept, named on stdout, and the copies made in {best} "
                                f"before the stop, which {record} names (1 earlier copy there no longer among the best "
                                f"removed); nothing partial was written"), r.stderr
    copies = sorted(p.name for p in best.iterdir() if p.suffix == ".png")
    assert sorted(json.loads(record.read_text())) == copies and len(copies) == 1


def test_a_stop_of_data_world_once_its_last_scene_is_written_says_all_are_there(tmp_path, monkeypatch):
    """(a pin of the review) `data world` stopped just as its last scene is written says every scene is there, not
    "the same command writes the rest" of nothing left to write (README's data world row says it since 3ce4b73)."""
    import os
    import signal

    from t2i_cli import data

    real, writes = data.atomic_write_bytes, []

    def stop_after_the_last(path, payload):
        written = real(path, payload)
        writes.append(written)
        if len(writes) == 6:  # (the second and last scene's spec: in place)
            os.kill(os.getpid(), signal.SIGINT)
        return written

    monkeypatch.setattr(data, "atomic_write_bytes", stop_after_the_last)
    out = tmp_path / "w"
    r = run("data", "world", "--split", "val", "--n", "2", "--side", "16", "-q", "--out", out)
    assert r.exit_code == 130 and r.stderr.strip() == (
        f"interrupted: 2 scenes written to {out}, each whole (picture, caption and spec); all 2 are there; nothing "
        f"partial was written"), r.stderr
    assert len(list(out.iterdir())) == 6


def test_a_stop_of_export_after_it_finished_a_cut_export_says_so(tmp_path, monkeypatch):
    """`t2i export` into a folder an earlier export's kill -9 cut between its renames first finishes that one
    (finish_set renames its temporaries into place); stopped after that, it said "interrupted: nothing was written",
    though the folder's files had changed. It now says which files it renamed into place, and why."""
    import json

    from t2i_cli import train

    assert run("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", tmp_path / "tok").exit_code == 0
    w = tmp_path / "w"
    assert run("export", tmp_path / "tok", "--to", w).exit_code == 0
    cut = w / ".tokenizer.json.abcdefgh.tmp"  # (the cut export's temporary, and its journal naming it)
    cut.write_text((w / "tokenizer.json").read_text().replace("{", "{ ", 1))
    (w / ".t2i-export.json").write_text(json.dumps({"renames": [[cut.name, "tokenizer.json"]]}))
    finished = cut.read_bytes()

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_export_runs", stop)
    r = run("export", tmp_path / "tok", "--to", w)
    assert r.exit_code == 130 and r.stderr.strip().splitlines()[-1] == (
        f"interrupted: nothing of this export was written; it first finished the export a kill had cut in {w} "
        f"(tokenizer.json renamed into place)"), r.stderr
    assert (w / "tokenizer.json").read_bytes() == finished and sorted(p.name for p in w.iterdir()) == ["tokenizer.json"]
