"""Session 46 (lead): mends of the closing reads and of the merge. Each test fails without its mend."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def test_a_windows_path_in_a_line_above_that_is_not_json_refuses_data_caption(tmp_path: Path):
    """A line above the folder that is not JSON is read as JSON's strings after its escapes: a Windows path typed
    with one backslash, "train\\new.png", read as an escape ("\\n", a newline) was no "train\\" any more, so the line
    was not found and the picture it captions was captioned by its name, unsaid (a "train\\cat.png" refused)."""
    (tmp_path / "ds" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "other").mkdir()
    Image.new("RGB", (32, 32), (200, 0, 0)).save(tmp_path / "ds" / "train" / "new.png")
    Image.new("RGB", (32, 32), (0, 0, 200)).save(tmp_path / "ds" / "other" / "b.png")
    (tmp_path / "ds" / "captions.jsonl").write_text('{"file_name": "other/b.png", "text": "b"}\n'
                                                    '{"file_name": "train\\new.png", "text": "a boat",}\n')
    r = run("data", "caption", tmp_path / "ds" / "train", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "line 2" in r.stderr and "would write no caption file" in r.stdout, (r.stdout, r.stderr)
    r = run("data", "caption", tmp_path / "ds" / "train")
    assert r.exit_code != 0 and not (tmp_path / "ds" / "train" / "new.txt").exists(), (r.stdout, r.stderr)


def test_keep_1_alone_with_prompts_asks_for_the_clip_before_the_pipe_is_read_unless_the_top_p_is_greedy(
        tmp_path: Path):
    """generate --prompts checks the weights' files before its file is read. --keep 1 alone beside any --top-p
    skipped the CLIP's check there (a greedy one draws one image, no CLIP needed, known then only once the weights
    loaded): `--prompts - --top-p 0.9 --keep 1` at weights without a CLIP waited for the pipe to close before its
    refusal. The codebook's size is read from the transformer file's header without torch: a --top-p above
    1/codebook is refused before the pipe is read, a greedy one draws its one image without a CLIP."""
    from conftest import build_tiny_folder, refused_with_the_pipe_open

    weights = build_tiny_folder(tmp_path / "w", with_clip=False)
    code, err = refused_with_the_pipe_open(tmp_path, ["--top-p", "0.9", "--keep", "1"], weights=weights)
    assert code == 1 and "has no clip.safetensors" in err, err
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red bird\n")
    r = run("generate", "--prompts", prompts, "--top-p", "1e-9", "--keep", "1", "--weights", weights, "--threads",
            "1", "--out", tmp_path / "o")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert len(list((tmp_path / "o").glob("*.png"))) == 1


def test_a_train_configs_array_setting_is_refused_without_being_copied_into_python_lists():
    """TrainConfig makes numpy and torch values plain (train.plain): an array given by mistake for a number
    (np.arange(10**7) as steps) was turned into a list of Python ints, item by item, before its refusal. An array
    larger than any setting holds is refused as it is."""
    import tracemalloc

    import numpy as np
    import pytest

    from t2i_cli.train import TrainConfig

    sweep = np.arange(10**7)
    tracemalloc.start()
    try:
        with pytest.raises((TypeError, ValueError)):
            TrainConfig(stage="dvae", data="world", steps=sweep).check()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # (the list of ten million ints: hundreds of MB)
    assert TrainConfig(stage="dvae", data="world", steps=np.array(5)).steps == 5  # a 0-d array is still its number
