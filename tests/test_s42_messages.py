"""Session 42: user-facing messages left over by the day's attacks (links, read-only runs, pictures in sub-folders)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import one_line_failure, run


def test_eval_json_that_is_a_dangling_link_is_named_a_link_to_a_missing_file(tmp_path: Path):
    """`eval --json LINK`, LINK a link to a missing file (or a loop of links), said "exists and is not the JSON of
    a t2i eval": the path does not exist as a file; it is a link whose target is missing."""
    os.symlink("missing.json", tmp_path / "lnk")
    line = one_line_failure(run("eval", "--json", tmp_path / "lnk"), 2)
    assert f"is a link to {tmp_path / 'missing.json'}, which does not exist" in line, line
    assert "exists and is not" not in line
    os.symlink("lp", tmp_path / "lp")
    line = one_line_failure(run("eval", "--json", tmp_path / "lp"), 2)
    assert "is a link to" in line and "links back to itself" in line, line
    assert "--force" in line
