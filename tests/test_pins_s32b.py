"""Pins from the s32b mutation audit of the day's data, picture, record, export and rerank changes: each test fails
under a mutant the rest of the suite let through."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2i_cli import data, files, images


@pytest.mark.parametrize("suffix,kind", [(".svg", "SVG"), (".JXL", "JPEG XL"), (".heif", "HEIC"),
                                         (".nef", "camera raw")])
def test_each_unread_format_is_named_as_itself(suffix, kind):
    """The reason a picture is left out names its own format (an SVG said to be HEIC sends the user to convert
    the wrong thing)."""
    assert images.unread_picture(suffix) == f"{kind} picture (t2i cannot read {kind}: convert to JPEG or PNG)"


@pytest.mark.parametrize("band", [1 << 20, 64])  # the whole picture at once, and a band of rows at a time
def test_a_float_picture_of_one_value_keeps_its_level(tmp_path, monkeypatch, band):
    """A float picture whose values are all 100 (over 2: a 0..255 picture) is grey 100, as the whole-picture way
    read it: its one finite value is both extremes (not 'no finite values', which scaled it to white)."""
    monkeypatch.setattr(images, "BAND_PIXELS", band)
    path = tmp_path / "flat.tif"
    Image.fromarray(np.full((24, 40), 100.0, dtype=np.float32), "F").save(path)
    got = np.asarray(images.load_rgb(path, 8))
    assert (got == 100).all(), np.unique(got)


def test_a_wide_picture_made_rgb_in_bands_crops_its_centre_at_half_pixels_too(monkeypatch):
    """A picture wider than tall by an odd number of pixels has a centre square that starts half-way into a
    pixel: made RGB a band at a time it gives the bytes of the whole picture made RGB at once."""
    rng = np.random.default_rng(5)
    im = Image.fromarray(rng.integers(0, 256, (40, 97, 4), dtype=np.uint8), "RGBA")  # 97 - 40 = 57, odd
    monkeypatch.setattr(images, "BAND_PIXELS", 97 * 6)
    whole = images.square(images.to_rgb(im), 12)
    assert images.square_rgb(im, 12).tobytes() == whole.tobytes()


def test_a_preview_that_opens_its_source_itself_reads_each_shown_picture_once(tmp_path, monkeypatch):
    """data.preview without a dataset opens the source keeping the check's decode of the pictures it shows (each
    was decoded twice)."""
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
        (tmp_path / f"p{i}.txt").write_text(f"picture {i}")
    opened, real = [], images.opened
    monkeypatch.setattr(images, "opened", lambda path: opened.append(Path(path).name) or real(path))
    data._digest_if_decodes.cache_clear()
    out = data.preview(str(tmp_path), tmp_path / "sheet.png", n=3, side=16)
    assert out.is_file()
    assert sorted(opened) == ["p0.png", "p1.png", "p2.png"], opened


def test_a_data_record_names_files_relative_to_the_folder(tmp_path):
    """The record's "names" hash the files' names within the folder: the same folder moved elsewhere records the
    same names (a moved folder whose pictures changed was said to hold other files rather than edited ones)."""
    pairs = [(Path("pics/a.png"), ["a red bird"]), (Path("pics/sub/b.png"), ["a blue cat"])]
    digests = ["0" * 64, "1" * 64]
    here = data.source_record([(tmp_path / "one" / p, c) for p, c in pairs], digests, tmp_path / "one")
    there = data.source_record([(tmp_path / "two" / p, c) for p, c in pairs], digests, tmp_path / "two")
    assert here == there and data.is_record(here)
    renamed = [(Path("pics/c.png"), ["a red bird"]), pairs[1]]
    other = data.source_record([(tmp_path / "one" / p, c) for p, c in renamed], digests, tmp_path / "one")
    assert other["names"] != here["names"] and other["pictures"] == here["pictures"]


def test_a_json_file_of_exactly_the_bound_is_read(tmp_path):
    """read_own_json reads a file of exactly `limit` bytes and refuses one byte more."""
    path = tmp_path / "r.json"
    body = json.dumps({"k": "x" * 90})
    path.write_text(body)
    assert files.read_own_json(path, len(body.encode())) == {"k": "x" * 90}
    with pytest.raises(ValueError, match="more than"):
        files.read_own_json(path, len(body.encode()) - 1)


def _save(path: Path, tensors: dict, meta: dict | None = None) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=meta)
    return path


def test_export_says_a_folder_holds_the_other_precision_only_of_the_same_models(tmp_path):
    """export's 'already exists' note: a target holding these models in fp16 is named as --half's; with --half, one
    holding them in full precision as such. A target of other values, or of full-precision floats that only equal
    the fp16 values, is neither (the note would send the user to the wrong flag)."""
    import torch

    from t2i_cli.train import _other_precision

    g = torch.Generator().manual_seed(0)
    mine = {"w": torch.randn(4, 4, generator=g), "steps": torch.tensor([3, 4])}
    src = _save(tmp_path / "src.safetensors", mine)
    half = _save(tmp_path / "half.safetensors", {"w": mine["w"].half(), "steps": mine["steps"]})
    other = _save(tmp_path / "other.safetensors", {"w": torch.randn(4, 4, generator=g), "steps": mine["steps"]})
    # full precision holding the fp16 values: not what --half writes (its dtype differs)
    rounded = _save(tmp_path / "rounded.safetensors", {"w": mine["w"].half().float(), "steps": mine["steps"]})
    assert "stored in fp16 by half=True" in _other_precision(half, src, False)  # (from Python: export_runs' argument)
    from t2i_cli.errors import SPEAKING

    SPEAKING["cli"] = True  # (as t2i export says it)
    try:
        assert "stored in fp16 by --half" in _other_precision(half, src, False)
    finally:
        SPEAKING["cli"] = False
    assert "in full precision" in _other_precision(src, src, True)
    assert _other_precision(other, src, True) == ""
    assert _other_precision(other, src, False) == ""
    assert _other_precision(rounded, src, False) == ""


def test_explain_tells_apart_variants_the_clip_reads_alike_but_whose_objects_differ():
    """explain scores each reading once: the CLIP's tokens and the objects its crop scores read. Removing a word
    past the CLIP's text length leaves its tokens as they were but can change the two objects the crops score
    ('a red circle left of a square'): such a variant is scored on its own, so the word's contribution is what
    scoring it gives, not 0."""
    from types import SimpleNamespace

    import torch

    from t2i_cli import rerank as rr
    from t2i_cli.world.captions import object_prompts

    text_len = 4

    def encode(text, n):
        return SimpleNamespace(ids=[sum(map(ord, w)) for w in text.lower().split()[:n]])

    def score(images, text, objects=None):  # the tokens the CLIP reads, plus the objects the crops score
        ids = encode(text, text_len).ids
        objects = (object_prompts(text) if objects is None else objects) or []
        return torch.tensor([sum(ids) / 1000 + sum(len(t) for t, _ in objects) / 10])

    pipe = SimpleNamespace(bundle=SimpleNamespace(tokenizer=SimpleNamespace(encode=encode),
                                                  clip=SimpleNamespace(cfg=SimpleNamespace(text_len=text_len))),
                           score=score)
    prompt = "a red circle left of a small blue square"
    words = prompt.split()
    got = rr.explain(pipe, torch.zeros(3, 8, 8), prompt)
    held = object_prompts(prompt)  # (since 0.13.1: a variant that parses to no two objects keeps the prompt's)

    def crops(variant):
        mine = object_prompts(variant)
        return mine if mine is not None and len(mine) == len(held) else held

    naive = [float(score(None, prompt)[0] - score(None, v := " ".join(words[:i] + words[i + 1:]), crops(v))[0])
             for i in range(len(words))]
    assert [w for w, _ in got] == words
    assert [d for _, d in got] == pytest.approx(naive, abs=1e-6)
    assert any(d != 0 for _, d in got[text_len:])  # words past the CLIP's tokens still move the crop scores


def test_sheet_labels_keep_a_zero_score_and_the_top_sheet_uses_them(tmp_path, monkeypatch):
    """A score of exactly 0 is still shown ('#1 (0.000)'), and rerank's --top sheet labels its tiles as --grid
    does: rank and score apart ('#1 (0.900)'; '#1 0.900' read as one number in the built-in font)."""
    from t2i_cli import rerank as rr
    from t2i_cli.outputs import sheet_label

    assert sheet_label(1, 0.0) == "#1 (0.000)"
    path = tmp_path / "red.png"
    Image.new("RGB", (16, 16), (230, 20, 20)).save(path)
    said = []
    real = rr.contact_sheet
    monkeypatch.setattr(rr, "contact_sheet", lambda tiles, labels, **kw: said.append(labels) or real(tiles, labels,
                                                                                                     **kw))
    rr.write_top_sheet(tmp_path, [rr.Ranked(path, "a red bird", 0.9, 1)], 1, 16)
    assert said == [["#1 (0.900)"]]


def test_rerank_names_each_unread_format_it_skips(tmp_path):
    """rerank counts an SVG or a camera raw file under its own format, not as HEIC."""
    from t2i_cli import rerank as rr

    Image.new("RGB", (16, 16), (230, 20, 20)).save(tmp_path / "red.png")
    (tmp_path / "logo.svg").write_text("<svg/>")
    (tmp_path / "shot.NEF").write_bytes(b"II*\x00raw")
    items, skipped = rr.collect(tmp_path, "a red bird")
    assert [p.name for p, _ in items] == ["red.png"]
    assert skipped == {images.unread_picture(".svg"): 1, images.unread_picture(".nef"): 1}
    assert "SVG" in images.unread_picture(".svg") and "camera raw" in images.unread_picture(".nef")


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask") or not hasattr(os, "fork"), reason="POSIX signal masks")
def test_a_worker_started_with_stops_blocked_drops_a_pending_sigterm_and_unblocks_stops():
    """The loader's workers start with SIGINT and SIGTERM blocked (train._stops_blocked): a SIGTERM sent to the
    group meanwhile waits in the worker. _ignore_stop_signals drops it (the worker lives on: a SIGTERM killed it,
    'worker killed by signal') and unblocks both, so the loader's own terminate() still ends the worker."""
    from t2i_cli.train import STOP_SIGNALS, _ignore_stop_signals

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # as a worker forked while the main process blocked stops
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            os.kill(os.getpid(), signal.SIGTERM)  # pending while blocked
            _ignore_stop_signals(0)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            os.write(write, repr((signal.SIGTERM in blocked, signal.SIGINT in blocked)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        got = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status  # not killed by the pending SIGTERM
    assert got == "(False, False)", got


def test_the_commands_suggested_for_a_run_under_a_folder_with_a_space_are_quoted(tmp_path):
    """Every command t2i suggests names a path as one shell word: a whole run not finished (resume it, or export
    what it has), a stage's run folder given as weights, a diverged run, an interrupted whole run."""
    import shlex
    from types import SimpleNamespace

    from t2i_cli.recipe import _interrupted
    from t2i_cli.train import diverged_message
    from t2i_cli.weights import _missing_advice

    run = tmp_path / "my runs" / "all"
    (run / "transformer").mkdir(parents=True)
    (run / "all.json").write_text("{}")
    (run / "transformer" / "transformer.safetensors").write_bytes(b"")
    said = _missing_advice(run, "transformer.safetensors")
    resume = said.split("`t2i train --resume ", 1)[1].split("`", 1)[0]
    export = said.split("`t2i export ", 1)[1].split("`", 1)[0]
    assert shlex.split(resume) == [str(run)], said
    assert shlex.split(export)[0] == str(run / "transformer"), said
    stage = tmp_path / "my runs" / "tf"
    stage.mkdir()
    (stage / "train_config.json").write_text("{}")
    (stage / "transformer.safetensors").write_bytes(b"")
    said = _missing_advice(stage, "tokenizer.json")
    assert shlex.split(said.split("`t2i export ", 1)[1].split(" [CLIP_RUN]", 1)[0]) == [str(stage)], said
    from t2i_cli.errors import SPEAKING

    speaking, SPEAKING["cli"] = SPEAKING["cli"], True  # (the command `t2i train` suggests; Python's names run_stage)
    try:
        said = diverged_message(stage, SimpleNamespace(lr=1e-3, ckpt_every=10), 7, "loss NaN", 5)
    finally:
        SPEAKING["cli"] = speaking
    assert shlex.split(said.split("t2i train --resume ", 1)[1]) == [str(stage), "--lr", "0.0001"], said
    said = str(_interrupted(run, None))
    assert shlex.split(said.split("t2i train --resume ", 1)[1].split(" (or", 1)[0]) == [str(run)], said
    import torch

    from t2i_cli.train import CHECKPOINT, _unfinished

    _save(stage / CHECKPOINT, {"x": torch.zeros(1)}, {"step": "3"})
    said = _unfinished(stage, SimpleNamespace(stage="transformer", steps=10))
    assert said is not None and "stopped at step 3 of 10" in said, said
    assert shlex.split(said.split("`t2i train --resume ", 1)[1].split("`", 1)[0]) == [str(stage)], said


def test_an_interrupted_run_under_a_folder_with_a_space_says_a_resume_command_that_pastes(tmp_path, monkeypatch):
    """Ctrl-C in the step loop: 'Resume with: t2i train --resume PATH' names the run as one shell word."""
    import shlex

    import torch

    from conftest import run

    real, calls = torch.optim.AdamW.step, []

    def step(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    out = tmp_path / "my runs" / "dvae"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "3", "--workers", "0", "--device", "cpu",
            "-q", "--out", out)
    assert r.exit_code == 130, r.stderr
    assert shlex.split(r.stderr.split("Resume with: t2i train --resume ", 1)[1])[0] == str(out), r.stderr


def test_each_stages_next_step_names_its_run_folder_as_one_shell_word(tmp_path):
    """The line a finished stage prints (--tokenizer PATH, --dvae PATH, t2i export PATH) pastes as one word when
    the run's folder holds a space."""
    import shlex
    from types import SimpleNamespace

    from t2i_cli.cli import next_step

    run_dir = tmp_path / "my runs" / "stage"
    for stage, before in (("tokenizer", "--tokenizer "), ("dvae", "--dvae "), ("transformer", "t2i export "),
                          ("clip", "TRANSFORMER_RUN ")):
        said = next_step(SimpleNamespace(finetune_decoder=False, stage=stage), run_dir)
        assert shlex.split(said.split(before, 1)[1])[0] == str(run_dir), said
    said = next_step(SimpleNamespace(finetune_decoder=True, stage="dvae"), run_dir)
    assert shlex.split(said.split("TRANSFORMER_RUN ", 1)[1])[0] == str(run_dir), said


def test_redraw_of_an_image_prompts_picture_without_its_source_names_it_as_one_shell_word(tiny_weights, tmp_path):
    """`generate --from PNG` of a picture drawn from an image prompt needs its source: the command it suggests
    names PNG as one word when its folder holds a space."""
    import shlex

    from conftest import run

    src = tmp_path / "src.png"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(src)
    out = tmp_path / "my pictures"
    r = run("generate", "a red bird", "--image", src, "--keep-top", "0.25", "--weights", tiny_weights, "--out", out,
            "-q")
    assert r.exit_code == 0, r.stderr
    made = r.stdout.split("\n")[0].strip()
    r = run("generate", "--from", made, "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 2, r.stderr
    assert shlex.split(r.stderr.split("redraw it with --from ", 1)[1])[:2] == [made, "--image"], r.stderr


def test_a_record_of_another_format_or_one_removed_while_read_is_not_compared(tmp_path, monkeypatch):
    """A data record of a format this t2i does not write is said as unknown, not compared as if it were one; a
    record removed between the look and the read is as no record (no warning, no error)."""
    now = data.source_record([(tmp_path / "a.png", ["a red bird"])], ["0" * 64], tmp_path)
    path = tmp_path / data.DATA_RECORD
    path.write_text(json.dumps({**now, "format": data.RECORD_FORMAT + 1}))
    said = data.data_change(path, now)
    assert said is not None and "cannot tell whether the data changed" in said and "not a record" in said, said
    path.write_text(json.dumps(now))
    assert data.data_change(path, now) is None

    def gone(*a, **k):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(data, "read_own_json", gone)
    assert data.data_change(path, now) is None
