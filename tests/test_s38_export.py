"""export judges the weights folder it writes as a whole (a dVAE exported alone beside a transformer it does not
fit was written with --force, and the folder drew noise), refuses a run given twice, and refuses a --to that holds
other things than weights (a folder of pictures)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import one_line_failure, run
from t2i_cli.weights import load_tensors, save_tensors


def t2i(*args) -> None:
    r = run(*args)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A transformer run (with its tokenizer and dVAE), an unrelated dVAE run of the same shape, a transformer
    run on that one's codes, a CLIP run, and a decoder fine-tune of the transformer's dVAE (its decoder changed by
    hand: encoder and codebook kept)."""
    root = tmp_path_factory.mktemp("s38")
    torch.set_num_threads(1)
    common = ["--preset", "tiny", "--workers", "0", "-q"]
    t2i("train", "--stage", "tokenizer", "--out", root / "tok", "--preset", "tiny", "-q")
    t2i("train", "--stage", "dvae", "--steps", "3", "--out", root / "dvae", *common)
    t2i("train", "--stage", "transformer", "--steps", "2", "--dvae", root / "dvae", "--tokenizer", root / "tok",
        "--out", root / "tr", *common)
    t2i("train", "--stage", "dvae", "--steps", "2", "--seed", "5", "--out", root / "other", *common)
    t2i("train", "--stage", "transformer", "--steps", "1", "--dvae", root / "other", "--tokenizer", root / "tok",
        "--out", root / "tr-other", *common)  # a transformer on the unrelated dVAE's codes
    t2i("train", "--stage", "clip", "--steps", "1", "--tokenizer", root / "tok", "--out", root / "clip", *common)
    shutil.copytree(root / "dvae", root / "ft")
    tensors, meta = load_tensors(root / "ft" / "dvae.safetensors")
    save_tensors(root / "ft" / "dvae.safetensors",
                 {k: v + 0.25 if k.startswith("decoder.") and v.is_floating_point() else v for k, v in tensors.items()},
                 meta)
    return root


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_dvae_exported_alone_is_held_to_the_transformer_the_folder_keeps(runs: Path, tmp_path: Path):
    w = tmp_path / "w"
    t2i("export", runs / "tr", "--to", w)
    before = contents(w)
    said = (f"error: {runs / 'other'} encodes other codes than {w / 'dvae.safetensors'}, the dVAE of the transformer "
            f"{w} keeps (their encoders or codebooks differ), so the folder would draw noise, even with --force; "
            f"export the transformer run trained on this dVAE together with it, or export it into a new folder")
    # refused with and without --force (without it, the message no longer suggests --force)
    assert one_line_failure(run("export", runs / "other", "--to", w), 2) == said
    assert one_line_failure(run("export", runs / "other", "--to", w, "--force"), 2) == said
    assert contents(w) == before
    # a decoder fine-tune of the transformer's dVAE fits: an existing file still asks for --force, which writes it
    line = one_line_failure(run("export", runs / "ft", "--to", w), 2)
    assert line == (f"error: {w / 'dvae.safetensors'} already exists; pass --force to replace it or export to "
                    f"another folder")
    t2i("export", runs / "ft", "--to", w, "--force")
    assert contents(w) == {**before, "dvae.safetensors": (runs / "ft" / "dvae.safetensors").read_bytes()}
    # so does the transformer run exported with the unrelated dVAE into a new folder: no --force is suggested
    line = one_line_failure(run("export", runs / "tr", runs / "other", "--to", tmp_path / "w2"), 2)
    assert line == (f"error: {runs / 'other'} encodes other codes than the dVAE {runs / 'tr'} was trained on (their "
                    f"encoders or codebooks differ), so the exported folder would draw noise; a dVAE fits beside "
                    f"this transformer only when its decoder alone was fine-tuned from it (`t2i train --stage dvae "
                    f"--finetune-decoder --dvae {runs / 'tr'}`); or train a transformer on this dVAE's codes")
    assert not (tmp_path / "w2").exists()
    # an unrelated dVAE run alone into a new folder is taken (nothing there to fit)
    t2i("export", runs / "other", "--to", tmp_path / "w3")
    assert contents(tmp_path / "w3") == {"dvae.safetensors": (runs / "other" / "dvae.safetensors").read_bytes()}


def test_a_run_given_twice_is_refused(runs: Path, tmp_path: Path):
    (tmp_path / "link").symlink_to(runs / "tr")
    cases = [((runs / "tr", runs / "tr"), f"error: {runs / 'tr'} is given twice; give each run once"),
             ((runs / "tr", f"{runs / 'tr'}/."), f"error: {runs / 'tr'} is given twice; give each run once"),
             ((runs / "tr", runs / "dvae", tmp_path / "link"),
              f"error: {runs / 'tr'} is given twice (as {runs / 'tr'} and {tmp_path / 'link'}); give each run once"),
             ((runs / "dvae", runs / "tok", runs / "dvae"),
              f"error: {runs / 'dvae'} is given twice; give each run once")]
    for given, said in cases:
        assert one_line_failure(run("export", *given, "--to", tmp_path / "w"), 2) == said, given
        assert not (tmp_path / "w").exists()


def test_a_to_holding_other_files_than_weights_is_refused(runs: Path, tmp_path: Path):
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("a.png", "b.jpg", "c.PNG", "a.txt", ".DS_Store"):
        (pics / name).write_bytes(b"mine")
    line = one_line_failure(run("export", runs / "tr", "--to", pics), 2)
    assert line == (f"error: --to {pics} is not a weights folder: it holds no t2i weights but 4 other files "
                    f"(pictures?); give a new or empty folder to export into, e.g. --to pics-weights")
    assert sorted(p.name for p in pics.iterdir()) == [".DS_Store", "a.png", "a.txt", "b.jpg", "c.PNG"]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.md").write_text("mine")
    line = one_line_failure(run("export", runs / "tr", "--to", notes, "--force"), 2)
    assert line == (f"error: --to {notes} is not a weights folder: it holds no t2i weights but 1 other file "
                    f"(e.g. todo.md); give a new or empty folder to export into, e.g. --to notes-weights")
    assert [p.name for p in notes.iterdir()] == ["todo.md"]
    # an empty folder is taken, and so is a weights folder (with a file of the user's beside the weights)
    empty = tmp_path / "empty"
    empty.mkdir()
    t2i("export", runs / "tr", "--to", empty)
    assert sorted(p.name for p in empty.iterdir()) == ["dvae.safetensors", "tokenizer.json",
                                                       "transformer.safetensors"]
    (empty / "README.md").write_text("my model")
    t2i("export", runs / "tr", "--to", empty)
    t2i("export", runs / "ft", "--to", empty, "--force")
    assert (empty / "dvae.safetensors").read_bytes() == (runs / "ft" / "dvae.safetensors").read_bytes()


def test_two_runs_whose_files_differ_need_force_and_force_takes_the_later(runs: Path, tmp_path: Path):
    """A transformer run and a decoder fine-tune of its dVAE, exported together: their dVAE files differ, so
    without --force nothing is written and the line says --force; with it the later run's dVAE is written."""
    line = one_line_failure(run("export", runs / "tr", runs / "ft", "--to", tmp_path / "w"), 2)
    assert line.startswith(f"error: {runs / 'tr' / 'dvae.safetensors'} and {runs / 'ft' / 'dvae.safetensors'} "
                           f"differ; pass --force to export the later run's"), line
    assert not (tmp_path / "w").exists()
    t2i("export", runs / "tr", runs / "ft", "--to", tmp_path / "w", "--force")
    assert (tmp_path / "w" / "dvae.safetensors").read_bytes() == (runs / "ft" / "dvae.safetensors").read_bytes()
    assert (tmp_path / "w" / "transformer.safetensors").is_file()


def test_a_transformer_run_with_its_own_dvae_replaces_the_pair_a_folder_keeps(runs: Path, tmp_path: Path):
    """The kept dVAE is held against a dVAE exported alone; a transformer run brings the dVAE it was trained on,
    so --force replaces the folder's pair with its own (the kept dVAE's other codes do not refuse it)."""
    w = tmp_path / "w"
    t2i("export", runs / "tr", "--to", w)
    t2i("export", runs / "tr-other", "--to", w, "--force")
    assert (w / "dvae.safetensors").read_bytes() == (runs / "tr-other" / "dvae.safetensors").read_bytes()
    assert (w / "transformer.safetensors").read_bytes() == \
        (runs / "tr-other" / "transformer.safetensors").read_bytes()


def test_a_clip_run_given_twice_says_a_second_reranker_is_another_run(runs: Path, tmp_path: Path):
    line = one_line_failure(run("export", runs / "clip", runs / "clip", "--to", tmp_path / "w"), 2)
    assert line == (f"error: {runs / 'clip'} is given twice; a second reranker is another CLIP run (the same command "
                    f"with another --seed)"), line
    assert not (tmp_path / "w").exists()


def test_a_to_holding_as_many_pictures_as_other_files_is_said_to_hold_pictures(runs: Path, tmp_path: Path):
    half = tmp_path / "half"
    half.mkdir()
    (half / "a.png").write_bytes(b"mine")
    (half / "b.txt").write_text("mine")
    line = one_line_failure(run("export", runs / "tr", "--to", half), 2)
    assert line == (f"error: --to {half} is not a weights folder: it holds no t2i weights but 2 other files "
                    f"(pictures?); give a new or empty folder to export into, e.g. --to half-weights"), line
