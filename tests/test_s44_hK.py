"""Session 44, hK: this session's new behaviour attacked as a user would (each test fails without its fix)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import build_tiny_folder, one_line_failure, run


@pytest.mark.parametrize("given", ["folder", "file"])
def test_train_refuses_a_tokenizer_and_dvae_from_a_weights_folder_an_export_was_killed_in(tmp_path: Path, given):
    """generate, info, rerank and eval refuse a weights folder whose export journal says a kill -9 cut it between two
    renames (it may hold one export's tokenizer beside another's dVAE); `train --stage transformer --tokenizer W
    --dvae W` read the same two files and trained a transformer on them, unsaid. Now it is refused in the same one
    line, before the run folder is made."""
    from t2i_cli.weights import EXPORT_JOURNAL

    weights = build_tiny_folder(tmp_path / "w", seed=0)
    (weights / EXPORT_JOURNAL).write_text(json.dumps({"renames": [[".dvae.safetensors.t2i-1.tmp",
                                                                   "dvae.safetensors"]]}))
    src = weights if given == "folder" else weights / "dvae.safetensors"
    r = run("train", "--stage", "transformer", "--tokenizer", weights / "tokenizer.json", "--dvae", src,
            "--steps", 1, "--preset", "tiny", "--workers", 0, "-q", "--out", tmp_path / "run")
    line = one_line_failure(r)
    assert "an export into it was killed while it renamed its files" in line, line
    assert not (tmp_path / "run").exists()
