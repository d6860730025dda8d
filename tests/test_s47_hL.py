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
