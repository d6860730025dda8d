"""The whole run (`t2i train --stage all`) attacked as a user, session 43 (hM): the defects met, each pinned."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def _pictures(folder: Path, n: int = 4) -> Path:
    """n small captioned pictures, each of one colour."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(folder / f"pic{i}.png")
        (folder / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    return folder


def _whole_run(tmp_path: Path) -> tuple[Path, Path]:
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return pics, out


def test_a_finished_tokenizer_stage_resumed_is_not_learned_again(tmp_path):
    """`t2i train --resume RUN/tokenizer` of a whole run's finished tokenizer stage (or of any tokenizer run)
    learned the tokenizer again from the data as it was now and wrote it over: with captions edited since, the
    run's tokenizer.json became another vocabulary than the one its transformer and CLIP read, unasked (and the
    finish line said "tokenizer stage finished" as if it were new). The README says a finished run's --resume has
    nothing to train; a learned tokenizer is now left as it is, and the resume says so."""
    pics, out = _whole_run(tmp_path)
    tok = out / "tokenizer" / "tokenizer.json"
    before = tok.read_bytes()
    for i in range(4):
        (pics / f"pic{i}.txt").write_text(f"zebra quokka platypus narwhal axolotl {i}\n")
    r = run("train", "--resume", out / "tokenizer", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert tok.read_bytes() == before
    assert f"tokenizer stage: already learned ({tok}); nothing to learn" in " ".join(r.stdout.split()), r.stdout
    assert "tokenizer stage finished" not in r.stdout, r.stdout
