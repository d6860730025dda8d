"""A new user's journey on their own pictures (session 42): the defects met on the way, each pinned."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run


def _pictures(folder: Path, n: int = 3) -> Path:
    """n small captioned pictures, each of one colour."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(folder / f"pic{i}.png")
        (folder / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    return folder


def test_rerank_of_a_read_only_folder_is_refused_before_scoring(tmp_path, tiny_weights, monkeypatch):
    """rerank writes ranking.json into the folder it ranks. On a read-only folder (a mounted camera card, a
    shared disk) it scored every picture, then failed on the write with "choose a writable folder", which no
    option of rerank can do: the work was lost and the line said nothing that helps. Now it refuses at once,
    saying to copy the pictures somewhere writable, before any picture is scored."""
    from t2i_cli import rerank as rr

    pics = _pictures(tmp_path / "card")
    real_access = os.access

    def read_only(path, mode, *a, **k):  # the folder as a read-only mount shows it (root ignores chmod)
        if Path(path) == pics and mode & os.W_OK:
            return False
        return real_access(path, mode, *a, **k)

    scored = []
    real_rank = rr.rank_folder
    monkeypatch.setattr(os, "access", read_only)
    monkeypatch.setattr(rr, "rank_folder", lambda *a, **k: scored.append(1) or real_rank(*a, **k))
    line = one_line_failure(run("rerank", pics, "--weights", tiny_weights), 1)
    assert str(pics) in line and "ranking.json" in line and "copy the pictures" in line, line
    assert not scored  # refused before the model scored anything
    assert sorted(p.name for p in pics.iterdir()) == [f"pic{i}{s}" for i in range(3) for s in (".png", ".txt")]
