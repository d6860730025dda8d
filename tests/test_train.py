"""Training: every stage runs and exports, resume is bitwise exact, torchrun works, crashes lose nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import SRC, exit_codes, one_line_failure, run, signal_after_step, torch_tmp, torchrun_t2i
from t2i_cli.cli import app
from t2i_cli.pipeline import TextToImage
from t2i_cli.train import BEST, CHECKPOINT, TrainConfig, export_run, exported_model
from t2i_cli.weights import load_tensors, read_metadata, save_tensors

runner = CliRunner()


def t2i(*args: str) -> None:
    """Run a t2i command in-process and fail with its output if it fails."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + (result.stderr if hasattr(result, "stderr") else "")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> Path:
    """Tokenizer, dVAE, transformer and CLIP run folders from the tiny preset (a few steps each)."""
    root = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    common = ["--preset", "tiny", "--workers", "0", "-q", "--log-every", "2"]
    t2i("train", "--stage", "tokenizer", "--out", root / "tok", "--preset", "tiny", "-q")
    t2i("train", "--stage", "dvae", "--steps", "6", "--ckpt-every", "3", "--out", root / "dvae", *common)
    t2i("train", "--stage", "transformer", "--steps", "6", "--dvae", root / "dvae", "--tokenizer", root / "tok",
        "--out", root / "tr", *common)
    t2i("train", "--stage", "clip", "--steps", "4", "--tokenizer", root / "tok", "--out", root / "clip", *common)
    return root


def test_every_stage_writes_its_run_folder(tiny_runs: Path):
    assert (tiny_runs / "tok" / "tokenizer.json").is_file()
    val_keys = {"dvae": {"val_psnr", "val_perplexity", "val_codes_used"}, "tr": {"val_bits_per_code"},
                "clip": {"val_top1"}}
    for stage in ("dvae", "tr", "clip"):
        run = tiny_runs / stage
        assert (run / CHECKPOINT).is_file() and (run / "loss.png").is_file()
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        steps = TrainConfig(**json.loads((run / "train_config.json").read_text())).steps
        train = [x for x in lines if "loss" in x]
        assert train[-1]["step"] == steps
        assert all(x["loss"] == x["loss"] for x in train)  # no NaN
        # validation on world:val at the end of the run (the world keeps its own val split)
        (last_val,) = [x for x in lines if "val_loss" in x and x["step"] == steps]
        assert val_keys[stage] <= set(last_val) and last_val["val_loss"] == last_val["val_loss"]
    assert list((tiny_runs / "dvae" / "samples").glob("step-*.png"))
    dvae_lines = [json.loads(x) for x in (tiny_runs / "dvae" / "metrics.jsonl").read_text().splitlines()]
    assert any("perplexity" in x and x["perplexity"] >= 1 for x in dvae_lines)


def test_export_writes_a_folder_that_generates(tiny_runs: Path, tmp_path: Path):
    weights = tmp_path / "w"
    t2i("export", tiny_runs / "tr", tiny_runs / "clip", "--to", weights, "--half")
    assert sorted(p.name for p in weights.iterdir()) == ["clip.safetensors", "dvae.safetensors", "tokenizer.json",
                                                        "transformer.safetensors"]
    tensors, _ = load_tensors(weights / "transformer.safetensors")
    assert all(v.dtype == torch.float16 for v in tensors.values() if v.is_floating_point())
    pipe = TextToImage.from_folder(weights, "cpu", need_clip=True)
    images = pipe("a red bird", n=2, seed=0)
    assert images[0].image.shape == (3, 16, 16)
    # the same export again writes nothing and succeeds (it was refused with --half); another version of a file
    # (here fp32 instead of fp16) is refused unless forced
    again = runner.invoke(app, ["export", str(tiny_runs / "tr"), str(tiny_runs / "clip"), "--to", str(weights),
                                "--half"])
    assert again.exit_code == 0 and again.stdout == "", again.output
    result = runner.invoke(app, ["export", str(tiny_runs / "tr"), "--to", str(weights)])
    assert result.exit_code == 2 and "already exists" in result.output + getattr(result, "stderr", "")


def test_export_of_two_clip_runs_writes_the_second_reranker(tiny_runs: Path, tmp_path: Path):
    """The shipped folder's second reranker comes from a second CLIP run (another seed): export writes it as
    clip-2.safetensors, which loading averages with the first; a third CLIP run, or one that reads prompts at
    another length, is refused before anything is written."""
    from conftest import one_line_failure, run

    common = ["--preset", "tiny", "--workers", "0", "-q", "--steps", "4", "--tokenizer", tiny_runs / "tok"]
    t2i("train", "--stage", "clip", "--seed", "1", "--out", tmp_path / "clip-s1", *common)
    weights = tmp_path / "w"
    t2i("export", tiny_runs / "tr", tiny_runs / "clip", tmp_path / "clip-s1", "--to", weights)
    assert (weights / "clip.safetensors").read_bytes() == (tiny_runs / "clip" / "clip.safetensors").read_bytes()
    assert (weights / "clip-2.safetensors").read_bytes() == (tmp_path / "clip-s1" / "clip.safetensors").read_bytes()
    pipe = TextToImage.from_folder(weights, "cpu", need_clip=True)
    first, second = pipe.bundle.clips
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)

    t2i("train", "--stage", "clip", "--text-len", "10", "--out", tmp_path / "clip-short", *common)
    line = one_line_failure(run("export", tiny_runs / "clip", tmp_path / "clip-s1", tmp_path / "clip-short",
                                "--to", tmp_path / "three"), 2)
    assert "3 CLIP runs given" in line and "two rerankers at most" in line, line
    line = one_line_failure(run("export", tiny_runs / "clip", tiny_runs / "clip", "--to", tmp_path / "three"), 2)
    assert "is given twice" in line, line
    line = one_line_failure(run("export", tiny_runs / "clip", tmp_path / "clip-short", "--to", tmp_path / "short"), 2)
    assert "read 12 and 10 prompt tokens" in line, line
    assert not (tmp_path / "three").exists() and not (tmp_path / "short").exists()
    # a second run's model file without its config: a KeyError (an internal error) before, refused in one line now
    bare = tmp_path / "clip-bare"
    shutil.copytree(tmp_path / "clip-s1", bare)
    tensors, meta = load_tensors(bare / "clip.safetensors")
    save_tensors(bare / "clip.safetensors", tensors, {k: v for k, v in meta.items() if k != "config"})
    line = one_line_failure(run("export", tiny_runs / "clip", bare, "--to", tmp_path / "bare"), 1)
    assert f"{bare / 'clip.safetensors'} carries no clip config" in line and not (tmp_path / "bare").exists(), line

    # one CLIP exported over a folder with a second reranker: it stays, and export says so, but only for an export
    # that happens (refused, it said the second reranker "is kept and will be averaged" before the refusal)
    r = run("export", tmp_path / "clip-s1", "--to", weights)
    assert r.exit_code == 2 and "clip.safetensors already exists" in r.stderr, r.stderr
    assert "is kept" not in r.stderr, r.stderr
    r = run("export", tmp_path / "clip-s1", "--to", weights, "--force")
    assert r.exit_code == 0, r.stderr
    assert "clip-2.safetensors is kept" in r.stderr
    assert (weights / "clip.safetensors").read_bytes() == (tmp_path / "clip-s1" / "clip.safetensors").read_bytes()


def test_export_checks_every_conflict_before_writing_a_file(tiny_runs: Path, tmp_path: Path):
    t2i("train", "--stage", "tokenizer", "--preset", "tiny", "--vocab-size", "60", "-q", "--out", tmp_path / "tok2")
    other = tmp_path / "w"
    result = runner.invoke(app, ["export", str(tmp_path / "tok2"), str(tiny_runs / "dvae"), str(tiny_runs / "tr"),
                                 "--to", str(other)])
    said = result.output + getattr(result, "stderr", "")
    # tokenizers that differ: --force, once suggested here, wrote a folder that does not load
    assert result.exit_code == 2 and "trained on different tokenizers" in said and "--force" not in said, said
    assert not other.exists() or list(other.iterdir()) == []  # nothing written, not even the dVAE
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "transformer.safetensors").write_bytes(b"my own file")
    result = runner.invoke(app, ["export", str(tiny_runs / "tr"), "--to", str(mine)])
    assert result.exit_code == 2 and sorted(p.name for p in mine.iterdir()) == ["transformer.safetensors"]
    (tmp_path / "afile").write_text("mine")
    result = runner.invoke(app, ["export", str(tiny_runs / "tr"), "--to", str(tmp_path / "afile")])
    assert result.exit_code == 2 and result.stderr.strip() == (f"error: --to {tmp_path / 'afile'} is a file; give the "
                                                               "weights folder to write (a new or existing folder)")
    assert (tmp_path / "afile").read_text() == "mine"
    result = runner.invoke(app, ["export", str(tiny_runs / "tr"), "--to", str(tmp_path / "afile" / "w")])
    assert result.exit_code == 2 and result.stderr.strip() == (  # named as the option that chose it
        f"error: --to {tmp_path / 'afile' / 'w'} is inside {tmp_path / 'afile'}, which is a file; choose another "
        "with --to")
    t2i("export", tmp_path / "tok2", tiny_runs / "tr", "--to", other, "--force")  # the later run's files
    assert (other / "tokenizer.json").read_bytes() == (tiny_runs / "tr" / "tokenizer.json").read_bytes()
    assert TextToImage.from_folder(other, "cpu")("a red bird", n=1, seed=0)[0].image.shape == (3, 16, 16)
    # a CLIP trained on the other tokenizer, with --force, in either order or into that folder: it wrote a folder
    # that said "parts do not fit together" at every load
    t2i("train", "--stage", "clip", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q",
        "--tokenizer", tmp_path / "tok2", "--out", tmp_path / "clip2")
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    for runs, to in (([tiny_runs / "tr", tmp_path / "clip2"], tmp_path / "w5"),
                     ([tmp_path / "clip2", tiny_runs / "tr"], tmp_path / "w8"), ([tmp_path / "clip2"], other)):
        result = runner.invoke(app, ["export", *map(str, runs), "--to", str(to), "--force"])
        assert result.exit_code == 2 and "would not load" in result.stderr and result.stderr.count("\n") == 1, (
            result.stderr)
    assert "beside what it keeps (dvae.safetensors, transformer.safetensors: remove or replace it)" in result.stderr
    assert not (tmp_path / "w5").exists() and not (tmp_path / "w8").exists()
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    # a tokenizer of the same size but other tokens (two swapped): the counts fit, and --force wrote a folder that
    # read the transformer's prompts with the CLIP's tokenizer
    swapped = tmp_path / "clip-swapped"
    shutil.copytree(tiny_runs / "clip", swapped)
    spec = json.loads((swapped / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    a, b = sorted(vocab, key=vocab.get)[5:7]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (swapped / "tokenizer.json").write_text(json.dumps(spec))
    result = runner.invoke(app, ["export", str(tiny_runs / "tr"), str(swapped), "--to", str(tmp_path / "w9"),
                                 "--force"])
    assert result.exit_code == 2 and f"{tiny_runs / 'tr'} was trained with another tokenizer" in result.stderr, (
        result.stderr)
    assert "beside what it keeps" not in result.stderr  # the two runs disagree: nothing kept is in the way
    assert not (tmp_path / "w9").exists()
    # the same CLIP alone into the folder of the transformer: its tokenizer would replace the transformer's
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    result = runner.invoke(app, ["export", str(swapped), "--to", str(other), "--force"])
    assert result.exit_code == 2 and "replaces the tokenizer transformer.safetensors was trained with" in (
        result.stderr) and "beside what it keeps (transformer.safetensors: remove or replace it)" in result.stderr, (
        result.stderr)
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    t2i("export", tiny_runs / "clip", "--to", other)  # its own tokenizer's CLIP is welcome


def test_export_prints_the_files_it_wrote_with_terminal_escapes_escaped(tiny_runs: Path, tmp_path: Path):
    r = runner.invoke(app, ["export", str(tiny_runs / "tr"), "--to", str(tmp_path / "w\x1b[7mx")])
    assert r.exit_code == 0 and "\x1b" not in r.stdout and "w\\x1b[7mx" in r.stdout, r.stdout


def test_export_of_a_folder_that_is_no_run_names_exports_own_argument(tiny_runs: Path, tmp_path: Path):
    """It said "check the --resume path", an option export does not have."""
    from conftest import run

    empty, whole = tmp_path / "empty", tmp_path / "whole"
    empty.mkdir()
    whole.mkdir()
    (whole / "all.json").write_text("{}")
    (whole / "weights").mkdir()  # a finished whole run's (one that has not finished is told to finish it)
    for runs, says in (([tmp_path / "nope"], "nope does not exist; give export the folders of `t2i train` runs"),
                       ([tiny_runs / "dvae", empty], "empty is not a t2i run folder (no train_config.json); give "
                                                     "export the folders of `t2i train` runs"),
                       ([whole], f"is a --stage all run, whose models are already exported to {whole / 'weights'}; "
                                 f"export its stage folders instead")):
        r = run("export", *runs, "--to", tmp_path / "w")
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and says in lines[0], r.stderr
        assert "--resume" not in lines[0] and not (tmp_path / "w").exists()


def test_same_config_gives_bitwise_identical_parameters(tmp_path: Path):
    """Two runs of one config agree bit for bit: randomness comes only from (seed, step, rank)."""
    common = ["--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--steps", "5"]
    t2i("train", *common, "--out", tmp_path / "a")
    t2i("train", *common, "--out", tmp_path / "b")
    t2i("train", *common, "--seed", "1", "--out", tmp_path / "c")
    a, _ = load_tensors(tmp_path / "a" / CHECKPOINT)
    b, _ = load_tensors(tmp_path / "b" / CHECKPOINT)
    c, _ = load_tensors(tmp_path / "c" / CHECKPOINT)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_interrupt_then_resume_matches_uninterrupted(tmp_path: Path, monkeypatch):
    common = ["--stage", "transformer", "--preset", "tiny", "--workers", "0", "-q", "--ckpt-every", "100"]
    root = tmp_path
    t2i("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", root / "tok")
    t2i("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q", "--out", root / "dvae")
    deps = ["--dvae", root / "dvae", "--tokenizer", root / "tok"]
    t2i("train", *common, *deps, "--steps", "8", "--out", root / "full")

    import t2i_cli.train as train_mod

    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def interrupting_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # Ctrl-C arrives during step 5
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", interrupting_step)
    result = runner.invoke(app, ["train", *common, *map(str, deps), "--steps", "8", "--out", str(root / "cut")])
    assert result.exit_code == 130
    assert "--resume" in result.output + getattr(result, "stderr", "")
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    _, meta = load_tensors(root / "cut" / CHECKPOINT)
    assert meta["step"] == "4"
    t2i("train", "--resume", root / "cut", "-q")
    full, _ = load_tensors(root / "full" / CHECKPOINT)
    cut, _ = load_tensors(root / "cut" / CHECKPOINT)
    assert set(full) == set(cut)
    assert all(torch.equal(full[k], cut[k]) for k in full), "resumed run differs from the uninterrupted one"
    rows = [json.loads(x) for x in (root / "cut" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps))  # no duplicated metric lines after the resume
    assert [r["step"] for r in rows if "val_loss" in r] == [8]
    assert train_mod.CHECKPOINT == CHECKPOINT


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_that_lands_inside_the_optimizer_step_still_resumes_exactly(tmp_path: Path, monkeypatch, signum):
    """A signal raised KeyboardInterrupt wherever Python was: inside opt.step(), after it had updated the weights,
    the checkpoint held step 5's weights labelled step 4, and the resume applied step 5 twice. The stop now waits
    for the step to be counted."""
    common = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--ckpt-every", "100",
              "--sample-every", "0", "--steps", "8"]
    t2i(*common, "--out", tmp_path / "full")
    undo = signal_after_step(monkeypatch, 5, signum)  # the weights are updated; the step is not yet counted
    result = runner.invoke(app, [*map(str, common), "--out", str(tmp_path / "cut")])
    assert result.exit_code == 130, result.output
    undo()
    assert load_tensors(tmp_path / "cut" / CHECKPOINT)[1]["step"] == "5"
    t2i("train", "--resume", tmp_path / "cut", "-q")
    full, _ = load_tensors(tmp_path / "full" / CHECKPOINT)
    cut, _ = load_tensors(tmp_path / "cut" / CHECKPOINT)
    assert all(torch.equal(full[k], cut[k]) for k in full), "resumed run differs from the uninterrupted one"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after the run


def test_new_run_refuses_an_existing_run_folder(tiny_runs: Path):
    result = runner.invoke(app, ["train", "--stage", "dvae", "--preset", "tiny", "--out", str(tiny_runs / "dvae")])
    assert result.exit_code == 2
    assert "--resume" in result.output + getattr(result, "stderr", "")


def test_resume_takes_the_runs_own_stage_and_names_another(tmp_path: Path):
    """`--resume RUN --stage dvae` of a dVAE run only says its stage again: it resumes; another stage (or all)
    is one line naming the run's stage."""
    from conftest import one_line_failure, run

    out = tmp_path / "dvae"
    steer = ["--workers", "0", "-q", "--device", "cpu"]
    t2i("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--out", out, *steer)
    t2i("train", "--resume", out, "--stage", "dvae", "--steps", "3", *steer)
    assert read_metadata(out / CHECKPOINT)["step"] == "3"
    for other in ("clip", "all"):
        line = one_line_failure(run("train", "--resume", out, "--stage", other, "--steps", "4", *steer), 2)
        assert line == f"error: --stage {other}: {out} is a dvae run; leave --stage out (or give --stage dvae) " \
                       "to continue it"
    assert read_metadata(out / CHECKPOINT)["step"] == "3"


@pytest.mark.parametrize("more", [[], ["--out", "OUT"], ["--resume", "OUT"]])
def test_an_unknown_stage_is_named_whatever_else_is_missing(tmp_path: Path, more: list[str]):
    """`--stage dave` (a typo) is the error, not the missing --out it was given without."""
    from conftest import one_line_failure, run

    line = one_line_failure(run("train", "--stage", "dave", *(str(tmp_path) if a == "OUT" else a for a in more)), 2)
    assert line == "error: --stage must be one of tokenizer, dvae, transformer, clip or all, got 'dave'"


def test_torchrun_two_processes_on_gloo(tiny_runs: Path, tmp_path: Path):
    """dVAE and transformer stages under a 2-process torchrun: complete, one checkpoint, rank 0 writes."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "TMPDIR": str(torch_tmp(tmp_path))}
    for stage, extra in (("dvae", []), ("transformer", ["--dvae", str(tiny_runs / "dvae"),
                                                       "--tokenizer", str(tiny_runs / "tok")])):
        out = tmp_path / stage
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "t2i_cli", "train", "--stage", stage, "--preset", "tiny", "--steps", "4", "--workers", "0",
               "--device", "cpu", "-q", "--out", str(out), *extra]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert [p.name for p in out.glob("*.safetensors") if p.name == CHECKPOINT] == [CHECKPOINT]
        _, meta = load_tensors(out / CHECKPOINT)
        assert meta["step"] == "4"
        assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_sigkill_during_checkpoint_write_keeps_the_previous_one(tiny_runs: Path, tmp_path: Path):
    """Kill a process while it writes a checkpoint: the old checkpoint must still load."""
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / CHECKPOINT
    ckpt.write_bytes((tiny_runs / "dvae" / CHECKPOINT).read_bytes())
    before = ckpt.read_bytes()
    script = f"""
import sys, time
sys.path.insert(0, {SRC!r})
import t2i_cli.files as files
from pathlib import Path
from t2i_cli.weights import load_tensors, save_tensors
tensors, meta = load_tensors(Path({str(ckpt)!r}))
real = Path.write_bytes
def slow_write(self, data):
    with open(self, "wb") as f:
        f.write(data[: len(data) // 2]); f.flush()
        print("writing", flush=True)
        time.sleep(60)
        f.write(data[len(data) // 2:])
Path.write_bytes = slow_write
save_tensors(Path({str(ckpt)!r}), {{k: v + 1 for k, v in tensors.items()}}, meta)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert ckpt.read_bytes() == before
    tensors, meta = load_tensors(ckpt)
    assert int(meta["step"]) >= 1 and tensors


def test_finetune_decoder_keeps_every_code(tiny_runs: Path, tmp_path: Path):
    """--finetune-decoder changes the decoder only: the encoder and codebook, hence every code, stay."""
    t2i("train", "--stage", "dvae", "--preset", "tiny", "--finetune-decoder", "--dvae", tiny_runs / "dvae",
        "--steps", "4", "--workers", "0", "-q", "--out", tmp_path / "ft")
    before, _ = load_tensors(tiny_runs / "dvae" / "dvae.safetensors")
    after, _ = load_tensors(tmp_path / "ft" / "dvae.safetensors")
    assert set(before) == set(after)
    frozen = [k for k in before if k.startswith(("encoder.", "codebook."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    result = runner.invoke(app, ["train", "--stage", "transformer", "--finetune-decoder", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    # exported beside the transformer trained on its codes (--force: the dVAE files differ): it fits
    t2i("export", tiny_runs / "tr", tmp_path / "ft", "--to", tmp_path / "w", "--force")
    assert (tmp_path / "w" / "dvae.safetensors").read_bytes() == (tmp_path / "ft" / "dvae.safetensors").read_bytes()
    # a dVAE of the same shape trained on its own encodes other codes: refused even with --force (it drew noise)
    t2i("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--seed", "5", "--workers", "0", "-q",
        "--out", tmp_path / "other")
    line = one_line_failure(run("export", tiny_runs / "tr", tmp_path / "other", "--to", tmp_path / "w2", "--force"),
                            2)
    assert "encodes other codes" in line and "--finetune-decoder" in line and not (tmp_path / "w2").exists(), line
    # a transformer trained on an fp16 copy of that dVAE (`export --half`): its decoder fine-tune still fits
    shutil.copytree(tiny_runs / "tr", tmp_path / "tr-half")
    tensors, meta = load_tensors(tmp_path / "tr-half" / "dvae.safetensors")
    save_tensors(tmp_path / "tr-half" / "dvae.safetensors", {k: v.half() if v.is_floating_point() else v
                                                            for k, v in tensors.items()}, meta)
    t2i("export", tmp_path / "tr-half", tmp_path / "ft", "--to", tmp_path / "w3", "--force")


def test_finetune_decoder_refuses_what_it_would_ignore_or_cannot_do(tiny_runs: Path, tmp_path: Path):
    """Options a decoder fine-tune would drop are refused, as is a loss its dVAE's pixels do not fit, and
    --dvae on the dvae stage without --finetune-decoder: one line, exit 2, no run folder."""
    l1 = tmp_path / "l1"
    t2i("train", "--stage", "dvae", "--preset", "tiny", "--recon-loss", "l1", "--steps", "1", "--workers", "0",
        "-q", "--out", l1)
    base = ["train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q"]
    ft = [*base, "--finetune-decoder", "--dvae", str(tiny_runs / "dvae")]
    cases = [([*ft, "--model", "n_hid=4"], "--model"), ([*ft, "--image-side", "32"], "--image-side"),
             ([*base, "--finetune-decoder", "--dvae", str(l1), "--recon-loss", "logit_laplace"], "logit_laplace"),
             ([*base, "--dvae", str(tiny_runs / "dvae")], "--finetune-decoder")]
    for args, named in cases:
        out = tmp_path / "x"
        result = runner.invoke(app, [*args, "--out", str(out)])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and named in lines[0], (args, result.stderr)
        assert not out.exists()
    t2i(*base, "--finetune-decoder", "--dvae", l1, "--out", tmp_path / "ok")  # its own loss (l1) works
    assert json.loads((tmp_path / "ok" / "train_config.json").read_text())["recon_loss"] == "l1"


def test_transformer_run_keeps_its_lowest_validation_model_and_export_picks_it_only_after_overfitting(
        tiny_runs: Path, tmp_path: Path):
    run = tmp_path / "tr"
    t2i("train", "--stage", "transformer", "--steps", "8", "--sample-every", "2", "--dvae", tiny_runs / "dvae",
        "--tokenizer", tiny_runs / "tok", "--out", run, "--preset", "tiny", "--workers", "0", "-q")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    assert [s for s, _ in val] == [2, 4, 6, 8]
    low_step = min(val, key=lambda sv: (sv[1], -sv[0]))[0]
    assert read_metadata(run / BEST)["step"] == str(low_step)  # written at the lowest validation loss
    final = run / "transformer.safetensors"
    # validation fell to the end (or rose less than the margin): the final model is exported
    if val[-1][1] <= min(v for _, v in val) * 1.02:
        assert exported_model(run, "transformer") == (final, None)
    # a run whose validation rose 50% after step 4 (overfitting) exports its step-4 model, and says so
    fake = tmp_path / "overfit"
    shutil.copytree(run, fake)
    lines = [r for r in rows if "val_loss" not in r]
    lines += [{"step": s, "val_loss": v} for s, v in ((2, 3.0), (4, 2.0), (6, 2.5), (8, 3.0))]
    (fake / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    shutil.copy(run / "transformer.safetensors", fake / BEST)
    tensors, meta = load_tensors(fake / BEST)
    save_tensors(fake / BEST, tensors, {**meta, "step": "4"})
    chosen, why = exported_model(fake, "transformer")
    assert chosen == fake / BEST and "step-4" in why and "overfitted" in why
    notes = []
    export_run(fake, tmp_path / "w", note=notes.append)
    assert (tmp_path / "w" / "transformer.safetensors").read_bytes() == (fake / BEST).read_bytes()
    assert len(notes) == 1
    # a line edited to hold something else than a number (null, text) is passed over, never an internal error
    for edited in (None, "2.0", [2.0], True):
        odd = [*lines[:-2], {"step": 6, "val_loss": edited}, lines[-1]]
        (fake / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in odd))
        assert exported_model(fake, "transformer")[0] == fake / BEST, edited
    # within the margin: the final one
    lines[-1]["val_loss"] = 2.03
    (fake / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert exported_model(fake, "transformer") == (fake / "transformer.safetensors", None)
    # a dVAE run never exports another step (the transformer was trained on its final codes)
    assert exported_model(tiny_runs / "dvae", "dvae") == (tiny_runs / "dvae" / "dvae.safetensors", None)


def test_torchrun_stops_early_on_every_process(tmp_path: Path):
    """--patience under a 2-process torchrun: rank 0 validates and decides, every rank stops at that step."""
    patch = """
from t2i_cli.stages import DVAEStage
losses = iter([1.0, 0.9, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
DVAEStage.validate = lambda self: {"val_loss": next(losses)}
"""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--sample-every", "1", "--patience", "2",
                        "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("stopping early") == 1, proc.stderr[-3000:]
    _, meta = load_tensors(out / CHECKPOINT)
    assert meta["step"] == "4" and json.loads((out / "train_config.json").read_text())["steps"] == 4


def test_torchrun_stage_ends_gloo_threads_with_its_group(tmp_path: Path):
    """The stage's destroy_process_group() frees the gloo group then and there (its worker and socket threads
    joined), in every process. A group still referenced (torch.distributed.nn.functional, first imported by
    DDP after init_process_group, holds it as a default argument) outlived it into interpreter exit, where a
    process could abort ("terminate called without an active exception") after a complete run."""
    patch = f"""
import os, torch.distributed as dist
real = dist.destroy_process_group
def destroy(*args, **kwargs):
    real(*args, **kwargs)
    names = [open(f"/proc/self/task/{{t}}/comm").read().strip() for t in os.listdir("/proc/self/task")]
    open(os.path.join({str(tmp_path)!r}, "threads-" + os.environ["RANK"]), "w").write(" ".join(names))
dist.destroy_process_group = destroy
"""
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "2", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    left = {r: (tmp_path / f"threads-{r}").read_text().split() for r in (0, 1)}
    assert not any("gloo" in name for names in left.values() for name in names), left


# A torchrun patch: Ctrl-C reaches every process as the dVAE stage starts its step 3
STOP_DVAE_AT_STEP_3 = """
from t2i_cli.stages import DVAEStage
real = DVAEStage.loss
def loss(self, model, images, captions, step):
    if step == 3:
        raise KeyboardInterrupt
    return real(self, model, images, captions, step)
DVAEStage.loss = loss
"""


def test_torchrun_interrupt_is_said_once_and_every_process_checkpoints_and_stops(tmp_path: Path):
    """Ctrl-C reaches every torchrun process (torchrun forwards it): each stops with exit 130 after the step,
    the checkpoint holds that step, and one line (rank 0's) says how to resume, not one per process."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, STOP_DVAE_AT_STEP_3, "--stage", "dvae", "--steps", "8", "--out", str(out))
    assert proc.returncode != 0
    assert exit_codes(tmp_path) == ["130", "130"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if "interrupted" in ln]
    assert said == [f"interrupted: at step 3; checkpoint saved. Resume with: t2i train --resume {out}"], \
        proc.stderr[-3000:]
    _, meta = load_tensors(out / CHECKPOINT)
    assert meta["step"] == "3"


def test_torchrun_resume_with_ema_is_bitwise_the_uninterrupted_run(tmp_path: Path):
    """--ema under a 2-process torchrun (it was never run there): a run stopped at step 3 and resumed under
    torchrun ends with every tensor of the uninterrupted run's checkpoint, the weights' average included, and
    exports the same model file; only rank 0 writes."""
    args = ("--stage", "dvae", "--steps", "6", "--ema", "0.5")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    proc = torchrun_t2i(tmp_path, "", *args, "--out", str(whole))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = torchrun_t2i(tmp_path, STOP_DVAE_AT_STEP_3, *args, "--out", str(parts))
    assert exit_codes(tmp_path) == ["130", "130"], proc.stderr[-3000:]
    assert load_tensors(parts / CHECKPOINT)[1]["step"] == "3"
    proc = torchrun_t2i(tmp_path, "", "--resume", str(parts))
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_tensors(whole / CHECKPOINT)[0], load_tensors(parts / CHECKPOINT)[0]
    averaged = [k for k in a if k.startswith("ema.")]
    assert averaged and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    assert not all(torch.equal(a[k], a["ema." + k.removeprefix("model.")]) for k in a if k.startswith("model.")
                   and "ema." + k.removeprefix("model.") in a)  # the average is not the weights themselves
    assert (whole / "dvae.safetensors").read_bytes() == (parts / "dvae.safetensors").read_bytes()


def test_hard_negatives_across_processes_keep_each_scene_with_its_twin():
    """Each process takes a contiguous run of a step's samples (scene 2i, twin 2i+1): batch 6 on 2 processes
    put scene 1 on one and its twin on the other, so that scene never met its twin as a negative."""
    from t2i_cli.errors import UsageError
    from t2i_cli.train import StepBatches

    cfg = TrainConfig(stage="clip", data="world:train", batch_size=6, steps=2, hard_negatives=True)
    assert StepBatches([], cfg, 0, 1, True).per_rank == 6
    with pytest.raises(UsageError, match="gives each 3 samples, which must be even.*use a multiple of 4"):
        StepBatches([], cfg, 0, 2, True)
    assert StepBatches([], dataclasses.replace(cfg, batch_size=8), 1, 2, True).per_rank == 4


def test_training_on_the_split_every_stage_validates_on_is_refused(tmp_path: Path):
    """--data world:val trained on the scenes it then validated on (its first batch was the val set)."""
    r = runner.invoke(app, ["train", "--stage", "dvae", "--data", "world:val", "--preset", "tiny",
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "world:val is the split every stage validates on" in r.output + r.stderr
    assert not (tmp_path / "run").exists()


def test_a_clip_trained_by_two_processes_sees_the_global_batch_as_one_process_does(tmp_path: Path):
    """The contrastive loss compared each process's images and captions among themselves: 2 processes gave a
    step-1 loss near log 4 where 1 process gave near log 8. Gathered across processes (with the gradient), the
    losses and the weights follow the single process's run (up to the order of float sums)."""
    t2i("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", tmp_path / "tok")
    common = ["--stage", "clip", "--tokenizer", str(tmp_path / "tok"), "--steps", "3", "--batch-size", "8",
              "--hard-negatives", "--model", "word_region=true", "--log-every", "1", "--sample-every", "0",
              "--precision", "fp32", "--lr", "3e-5"]  # Adam's first steps move a weight by ~lr whatever its gradient
    t2i("train", *common, "--preset", "tiny", "--workers", "0", "--device", "cpu", "-q", "--out", tmp_path / "one")
    proc = torchrun_t2i(tmp_path, "", *common, "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]

    def losses(run: Path) -> list[float]:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if "loss" in r]

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 3 and one[0] > 1.5, (one, two)
    assert two == pytest.approx(one, rel=1e-4), (one, two)
    a, _ = load_tensors(tmp_path / "one" / CHECKPOINT)
    b, _ = load_tensors(tmp_path / "two" / CHECKPOINT)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a if k.startswith("model.")), \
        max((a[k] - b[k]).abs().max().item() for k in a if k.startswith("model."))


def test_a_signal_ignored_when_training_starts_stays_ignored():
    """`nohup t2i train ...` or `t2i train ... &` from a script starts with SIGINT ignored; training kept that
    before it caught signals itself, and keeps it now (SIGTERM is still caught, and both are put back)."""
    from t2i_cli.train import _Stops

    before, term = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.getsignal(signal.SIGTERM)
    try:
        stops = _Stops()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == stops._handler
        stops.restore()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) == term
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_tokenizer_too_large_to_load_is_refused_when_trained(tmp_path: Path, monkeypatch):
    """A vocabulary whose tokenizer.json passes the loader's bound would train fine and be refused by the next
    stage; it is refused when trained, naming --vocab-size."""
    import t2i_cli.stages as stages

    monkeypatch.setattr(stages, "MAX_TOKENIZER_FILE", 2048)
    r = runner.invoke(app, ["train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and "use a smaller --vocab-size" in r.output + r.stderr, r.output
    assert not (tmp_path / "t" / "tokenizer.json").exists()


def test_the_learning_rate_warms_up_for_at_most_a_quarter_of_the_run_then_decays():
    """A long run warms up over cfg.warmup steps; a short one over its first quarter, so it too reaches --lr
    and decays to a tenth of it (before, a run of 100 steps or fewer ended inside its warm-up)."""
    from t2i_cli.train import lr_at

    long = TrainConfig(stage="transformer", data="world:train", steps=1000, lr=1e-3)
    assert lr_at(long, 0) == pytest.approx(1e-5) and lr_at(long, 99) == pytest.approx(1e-3)
    assert lr_at(long, 100) == pytest.approx(1e-3) and lr_at(long, 999) == pytest.approx(1e-4, rel=1e-3)
    short = dataclasses.replace(long, steps=40)
    rates = [lr_at(short, s) for s in range(40)]
    assert rates[:10] == pytest.approx([1e-3 * (s + 1) / 10 for s in range(10)])
    assert max(rates) == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-4, rel=0.05)
    assert all(a >= b for a, b in zip(rates[9:-1], rates[10:], strict=True))  # then only down
    assert lr_at(dataclasses.replace(long, steps=3), 0) == pytest.approx(1e-3)  # too short to warm up
    assert lr_at(dataclasses.replace(long, warmup=0), 0) == pytest.approx(1e-3)  # a decoder fine-tune's


def test_a_finished_run_names_what_reads_it(tmp_path: Path):
    """A tokenizer or dVAE run alone exports no folder that generates, yet each finished run said `export with:
    t2i export RUN --to WEIGHTS_DIR`, whose folder `generate` then refused: each stage now names its next step."""
    r = runner.invoke(app, ["train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", str(tmp_path / "tok")])
    assert r.exit_code == 0, r.stderr
    assert f"run folder: {tmp_path / 'tok'}  (the transformer and clip stages read it: --tokenizer " \
           f"{tmp_path / 'tok'})" in r.stdout and "export" not in r.stdout, r.stdout
    r = runner.invoke(app, ["train", "--stage", "dvae", "--preset", "tiny", "-q", "--steps", "2", "--workers", "0",
                            "--out", str(tmp_path / "dvae")])
    assert r.exit_code == 0, r.stderr
    assert f"(the transformer stage reads it: --dvae {tmp_path / 'dvae'})" in r.stdout, r.stdout


def test_each_process_and_each_step_seeds_its_own_draws():
    """step_seed seeds a step's random draws (dropout, masks, augmentations): two processes of one step must not
    draw alike (their batches would share every random choice), nor two steps, nor two runs' --seed."""
    from t2i_cli.train import step_seed

    cfg = TrainConfig(stage="clip", data="world:train", seed=0)
    assert step_seed(cfg, 3, 0) != step_seed(cfg, 3, 1)
    assert len({step_seed(cfg, step, rank) for step in range(50) for rank in range(4)}) == 200
    assert step_seed(TrainConfig(stage="clip", data="world:train", seed=1), 3, 0) != step_seed(cfg, 3, 0)


@pytest.mark.parametrize("stage, model, says", [
    ("dvae", "pixel_eps=0", "--model pixel_eps=0: the logit_laplace loss models pixels in [eps, 1 - eps] and "
                            "needs pixel_eps > 0"),
    ("dvae", "pixel_eps=0.7", "pixel_eps must be at least 0 and below 0.5, got 0.7"),
    ("all", "dvae.pixel_eps=0", "needs pixel_eps > 0"),
    ("all", "dvae.n_hid=0", "n_hid is 0"),
])
def test_a_dvae_setting_the_loss_cannot_use_is_refused_before_a_run_folder(tmp_path: Path, stage, model, says):
    """pixel_eps=0 with the logit-Laplace loss passed every check and failed at the first step as an internal
    error, leaving a run folder a retry refused; a whole run trained its tokenizer first."""
    from conftest import one_line_failure, run

    line = one_line_failure(run("train", "--stage", stage, "--preset", "tiny", "--steps", "2", "--model", model,
                                "--out", tmp_path / "run", "-q"), 2)
    assert says in line and not (tmp_path / "run").exists(), line


def test_a_run_records_its_folder_of_pictures_by_absolute_path_and_resumes_it_from_anywhere(tmp_path: Path,
                                                                                               monkeypatch):
    """--data was recorded as typed, so `--resume` from another folder read whatever the relative path named
    there: a folder of other pictures trained silently, and validated on them."""
    from conftest import run
    from test_flip import lopsided_folder

    lopsided_folder(tmp_path / "a" / "data", [f"picture {i}" for i in range(8)])
    other = lopsided_folder(tmp_path / "b" / "data", [f"other {i}" for i in range(8)])
    for i in range(8):  # other pictures: a run that read these would log other losses
        Image.new("RGB", (16, 16), (250, 250, 250 - 20 * i)).save(other / f"p{i:02d}.png")
    monkeypatch.chdir(tmp_path / "a")
    common = ("--preset", "tiny", "--workers", "0", "--device", "cpu", "-q")
    assert run("train", "--stage", "dvae", "--data", "data", "--out", tmp_path / "r", "--steps", "2",
               *common).exit_code == 0
    assert json.loads((tmp_path / "r" / "train_config.json").read_text())["data"] == str(tmp_path / "a" / "data")
    shutil.copytree(tmp_path / "r", tmp_path / "ref")
    assert run("train", "--resume", tmp_path / "ref", "--steps", "3", "-q").exit_code == 0  # from where it began
    monkeypatch.chdir(tmp_path / "b")  # where "data" names the other pictures
    assert run("train", "--resume", tmp_path / "r", "--steps", "3", "-q").exit_code == 0
    for name in ("dvae.safetensors", "metrics.jsonl"):
        mine, ref = (tmp_path / d / name for d in ("r", "ref"))
        if name == "metrics.jsonl":  # the same losses, at other times
            strip = lambda p: [{k: v for k, v in json.loads(line).items() if k != "time"}  # noqa: E731
                               for line in p.read_text().splitlines()]
            assert strip(mine) == strip(ref)
        else:
            assert load_tensors(mine)[0].keys() == load_tensors(ref)[0].keys()
            assert all(torch.equal(load_tensors(mine)[0][k], load_tensors(ref)[0][k]) for k in load_tensors(ref)[0])
    # A whole run too (all.json); the same command again from where it started is the same run.
    monkeypatch.chdir(tmp_path / "a")
    whole = ("train", "--stage", "all", "--data", "data", "--out", tmp_path / "all", "--steps", "1", *common)
    assert run(*whole).exit_code == 0
    assert json.loads((tmp_path / "all" / "all.json").read_text())["data"] == str(tmp_path / "a" / "data")
    assert run(*whole).exit_code == 0, "the same command continues (here: finds) the same run"
    (tmp_path / "a" / "data").rename(tmp_path / "a" / "moved")  # the run says where its pictures were
    r = run("train", "--resume", tmp_path / "r", "--steps", "4", "-q")
    assert r.exit_code == 1 and r.stderr.strip() == (
        f"error: the pictures {tmp_path / 'r'} trains on were at {tmp_path / 'a' / 'data'}, which no longer exists; "
        f"put them back there to resume it (a run keeps the data it started with)"), r.stderr
    r = run("train", "--resume", tmp_path / "all", "-q")  # a finished whole run's resume only exports: it reads no
    assert r.exit_code == 0, r.stderr  # pictures (one with a stage left to train says it: tests/test_s43_wholerun)
    config = json.loads((tmp_path / "r" / "train_config.json").read_text())
    (tmp_path / "r" / "train_config.json").write_text(json.dumps(config | {"data": "data"}))  # as 0.12.0 wrote it
    r = run("train", "--resume", tmp_path / "r", "--steps", "4", "-q")
    assert r.exit_code == 1 and r.stderr.strip() == (
        f"error: {tmp_path / 'r'} recorded its pictures as data, relative to the folder it started in, and there "
        f"is no data here; resume it from that folder"), r.stderr


def test_a_whole_run_that_recorded_its_data_as_typed_matches_the_same_folder_given_again(tmp_path: Path,
                                                                                          monkeypatch):
    """Runs from before 0.12.1 recorded --data relative to where they started: the same folder, now given as
    its absolute path, continues them (read, as before, from the current folder); another folder does not."""
    from t2i_cli.errors import UsageError
    from t2i_cli.recipe import plan_settings
    from t2i_cli.train_options import stored_data

    (tmp_path / "run").mkdir()
    recorded = {"data": "pics", "preset": "tiny", "flip": None, "crop": None, "ema": None}
    (tmp_path / "run" / "all.json").write_text(json.dumps(recorded))
    monkeypatch.chdir(tmp_path)
    assert plan_settings(tmp_path / "run", recorded | {"data": stored_data("pics")}) == recorded
    with pytest.raises(UsageError, match=r"other settings \(data pics in the run, \S*other here\)"):
        plan_settings(tmp_path / "run", recorded | {"data": stored_data("other")})
    assert stored_data("world:val") == "world:val" and stored_data("~/x") == str(Path.home() / "x")
    # ".." after a symlink is the kernel's to resolve: abspath's text edit named another folder
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "pics").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real" / "sub")
    monkeypatch.chdir(tmp_path)
    assert Path(stored_data("link/../pics")).resolve() == (tmp_path / "real" / "pics").resolve()


def test_a_whole_run_checks_its_later_models_with_a_vocabulary_the_tokenizer_may_never_reach(tmp_path: Path):
    """The up-front check sized the text embedding by --vocab-size (up to 1,048,576, usually far above what the
    tokenizer learns), refusing runs that train; the structure is still checked."""
    from t2i_cli.errors import UsageError
    from t2i_cli.stages import check_whole_run_models
    from t2i_cli.train_options import stage_config_of_all

    def configs(**settings):
        settings = {"data": "world", "preset": "tiny"} | settings
        return {s: stage_config_of_all(s, tmp_path, settings, {"workers": 0})
                for s in ("tokenizer", "dvae", "transformer", "clip")}

    check_whole_run_models(configs(vocab_size=1_048_576), set())
    with pytest.raises(UsageError, match="cannot build the clip model"):
        check_whole_run_models(configs(vocab_size=1_048_576, model=["clip.n_head=7"]), set())
    bad_dvae = configs(model=["dvae.n_hid=0"])
    with pytest.raises(UsageError, match="cannot build the dvae model"):
        check_whole_run_models(bad_dvae, set())
    check_whole_run_models(bad_dvae, {"dvae"})  # a started dVAE was checked when it started


def test_a_damaged_metrics_file_resumes_without_its_bad_lines_and_an_oversized_one_is_refused(tmp_path: Path,
                                                                                              monkeypatch):
    """Lines that nest too deep, are not UTF-8 or are far longer than t2i writes were internal errors on
    resume (RecursionError, UnicodeDecodeError), and the file was read whole, however large."""
    from conftest import run
    from t2i_cli import train
    from test_flip import lopsided_folder

    data = lopsided_folder(tmp_path / "data", [f"picture {i}" for i in range(8)])
    common = ("--workers", "0", "--device", "cpu", "-q")
    assert run("train", "--stage", "dvae", "--data", data, "--out", tmp_path / "r", "--preset", "tiny",
               "--steps", "2", "--log-every", "1", *common).exit_code == 0
    metrics = tmp_path / "r" / "metrics.jsonl"
    good = metrics.read_text().splitlines()
    with open(metrics, "ab") as f:
        f.write(b"[" * 30_000 + b"]" * 30_000 + b"\n")  # under the line bound: json.loads recurses too deep
        f.write(b'{"step": 1, "loss": 0.5}\xff\n')
        f.write(b'{"step": 1, "loss": 0.25, "pad": "' + b"x" * (train.MAX_METRICS_LINE + 10) + b'"}\n')
    r = run("train", "--resume", tmp_path / "r", "--steps", "3", *common)
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [json.loads(line) for line in good] == rows[:len(good)]  # kept; the bad lines dropped
    assert all(r["step"] >= 2 for r in rows[len(good):]) and rows[-1]["step"] == 3, rows[len(good):]
    monkeypatch.setattr(train, "MAX_METRICS_FILE", metrics.stat().st_size - 1)
    r = run("train", "--resume", tmp_path / "r", "--steps", "4", *common)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{metrics} holds {metrics.stat().st_size:,} bytes, more than the" in r.stderr
    assert "move it aside" in r.stderr
    monkeypatch.setattr(train, "MAX_METRICS_FILE", 1 << 30)
    monkeypatch.setattr(train, "MAX_METRICS_ROWS", len(rows) - 1)  # tiny lines in their millions: a row bound
    r = run("train", "--resume", tmp_path / "r", "--steps", "4", *common)
    assert r.exit_code == 1 and r.stderr.strip() == (f"error: {metrics} holds more than {len(rows) - 1:,} rows, more "
                                                     f"than t2i reads back; move it aside (the run goes on without "
                                                     f"its history)"), r.stderr
    monkeypatch.setattr(train, "MAX_METRICS_ROWS", len(rows))
    assert run("train", "--resume", tmp_path / "r", "--steps", "4", *common).exit_code == 0


@pytest.mark.parametrize("stage", ["transformer", "clip"])
def test_a_bad_tokenizer_is_named_as_given_before_a_run_folder_is_made(tiny_runs: Path, tmp_path: Path, stage):
    """It was named as the run's own copy (OUT/tokenizer.json, removed as the failed start is undone), with
    advice to re-export a weights folder."""
    from conftest import run

    bad = tmp_path / "p.txt"
    bad.write_text("not a tokenizer\n")
    dvae = ["--dvae", tiny_runs / "dvae"] if stage == "transformer" else []
    r = run("train", "--stage", stage, *dvae, "--tokenizer", bad, "--out", tmp_path / "o", "--preset", "tiny",
            "--steps", "2", "-q")
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"error: {bad} is not a valid tokenizer file (") and r.stderr.rstrip().endswith(
        "give --tokenizer a tokenizer run folder, a weights folder or its tokenizer.json"), r.stderr
    assert not (tmp_path / "o").exists()


def test_a_whole_runs_damaged_tokenizer_is_not_blamed_on_a_tokenizer_option_it_refuses(tmp_path: Path):
    """--stage all refuses --tokenizer; its own RUN/tokenizer/tokenizer.json, damaged, is named with what to do."""
    from t2i_cli.errors import WeightsError
    from t2i_cli.stages import dependencies

    run_dir = tmp_path / "run"
    (run_dir / "tokenizer").mkdir(parents=True)
    (run_dir / "all.json").write_text("{}")
    (run_dir / "tokenizer" / "tokenizer.json").write_text("damaged")
    (run_dir / "dvae").mkdir()
    (run_dir / "dvae" / "dvae.safetensors").write_bytes(b"")
    cfg = TrainConfig(stage="transformer", data="world", tokenizer=str(run_dir / "tokenizer"),
                      dvae=str(run_dir / "dvae"))
    with pytest.raises(WeightsError, match="the whole run's tokenizer stage wrote it damaged: start the run again"):
        dependencies(cfg)
    (run_dir / "all.json").unlink()  # a tokenizer run of its own, given as --tokenizer
    with pytest.raises(WeightsError, match="give tokenizer a tokenizer run folder"):  # (the field, from Python)
        dependencies(cfg)


def test_a_set_of_files_is_written_all_or_none_and_a_stop_waits_for_its_renames(tmp_path: Path, monkeypatch):
    """export wrote a weights folder file by file: a stop between two left one run's dVAE beside another's
    transformer, which loaded without complaint."""
    from t2i_cli import files

    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    real = files._finished_temporary
    calls = []

    def stopped_at_second(path, write, **kw):  # (kw: made=, the caller's list of its temporaries, since session 47)
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, write, **kw)

    monkeypatch.setattr(files, "_finished_temporary", stopped_at_second)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_set([(a, b"new a"), (b, b"new b")])
    assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b") and sorted(tmp_path.iterdir()) == [a, b]
    monkeypatch.setattr(files, "_finished_temporary", real)
    real_replace, renamed = os.replace, []

    def signalled_replace(src, dst):  # Ctrl-C lands between the first rename and the second
        real_replace(src, dst)
        renamed.append(dst)
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(files.os, "replace", signalled_replace)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_set([(a, b"new a"), (b, b"new b")])
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b") and sorted(tmp_path.iterdir()) == [a, b]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler before is back


def test_export_stopped_while_writing_keeps_the_folder_it_had(tiny_runs: Path, tmp_path: Path, monkeypatch):
    from t2i_cli import files

    to = tmp_path / "w"
    export_run(tiny_runs / "tr", to)
    before = {p.name: p.read_bytes() for p in to.iterdir()}
    real, n = files._finished_temporary, []

    def stop_at_the_second_file(path, write, **kw):  # (kw: made=, since session 47)
        n.append(path)
        if len(n) == 2:  # the dVAE written, the transformer not (the tokenizer is the same: not rewritten)
            raise KeyboardInterrupt
        return real(path, write, **kw)

    monkeypatch.setattr(files, "_finished_temporary", stop_at_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        export_run(tiny_runs / "tr", to, half=True, force=True)  # every file changes
    assert {p.name: p.read_bytes() for p in to.iterdir()} == before
    monkeypatch.setattr(files, "_finished_temporary", real)
    export_run(tiny_runs / "tr", to, half=True, force=True)
    assert all(before[p.name] != p.read_bytes() for p in to.iterdir() if p.suffix == ".safetensors")


@pytest.mark.parametrize("command", ["export", "train", "data preview"])
def test_export_and_training_take_sigterm_as_ctrl_c(tiny_runs: Path, tmp_path: Path, monkeypatch, command):
    """SIGTERM killed export (leaving a 100 MB temporary), training outside its step loop, and `data preview`
    during its write (leaving the sheet's temporary), silently."""
    from conftest import run

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        args = {"export": ["export", tiny_runs / "tr", "--to", tmp_path / "w"],
                "train": ["train", "--stage", "tokenizer", "--preset", "tiny", "--out", tmp_path / "t", "-q"],
                "data preview": ["data", "preview", "world:val", "--n", "2", "--side", "32", "--out",
                                 tmp_path / "p.png", "-q"]}[command]
        assert run(*args).exit_code == 0
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("at", ["writing", "renaming"])
def test_a_real_sigterm_to_export_keeps_one_whole_set(tiny_runs: Path, tmp_path: Path, monkeypatch, at):
    """`kill` (SIGTERM) sent to a running `t2i export --force`: while it writes the new files, the folder keeps
    every old file; once the renames began, they all finish first. Either way exit 130, one line, no temporary."""
    from conftest import run
    from t2i_cli import files

    to = tmp_path / "w"
    export_run(tiny_runs / "tr", to)
    before = {p.name: p.read_bytes() for p in to.iterdir()}
    real_tmp, real_replace, calls = files._finished_temporary, os.replace, []

    def kill_at_the_second(real, *a, **kw):
        calls.append(a)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered at once: cli.stop_on_sigterm made it Ctrl-C
        return real(*a, **kw)

    if at == "writing":  # (kw: _finished_temporary's made=, since session 47)
        monkeypatch.setattr(files, "_finished_temporary", lambda *a, **kw: kill_at_the_second(real_tmp, *a, **kw))
    else:
        monkeypatch.setattr(files.os, "replace", lambda *a: kill_at_the_second(real_replace, *a))
    def not_replaced(signum, frame):  # stands in for the default, which would end this test process
        raise RuntimeError("SIGTERM reached the handler t2i started with")

    signal.signal(signal.SIGTERM, not_replaced)
    r = run("export", tiny_runs / "tr", "--to", to, "--half", "--force")
    monkeypatch.undo()
    assert r.exit_code == 130 and r.stderr.startswith("interrupted:"), (r.exit_code, r.stderr)
    assert len(calls) >= 2  # the signal was sent
    after = {p.name: p.read_bytes() for p in to.iterdir()}
    assert sorted(after) == sorted(before)  # no temporary left, nothing missing
    changed = {name for name in after if after[name] != before[name]}
    weights_files = {name for name in after if name.endswith(".safetensors")}
    assert changed == (set() if at == "writing" else weights_files), changed  # all old, or all new


def test_signals_held_restores_both_handlers_when_a_signal_lands_while_they_are_restored(monkeypatch):
    """A SIGTERM that reaches its restored handler (which raises) before SIGINT's handler is put back must not
    leave SIGINT swallowed by the deferral for good; a signal held during the block reaches the old handler."""
    from t2i_cli import files

    seen = []

    def old_term(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, old_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt):
        with files.signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []  # held
    assert seen == [signal.SIGTERM]  # then delivered to the handler in place before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    real_signal = signal.signal

    def signal_lands_once_restored(signum, handler):
        previous = real_signal(signum, handler)
        if signum == signal.SIGTERM and handler is old_term:
            os.kill(os.getpid(), signal.SIGTERM)  # lands between the two restores
        return previous

    monkeypatch.setattr(signal, "signal", signal_lands_once_restored)
    with pytest.raises(KeyboardInterrupt):
        with files.signals_held():
            pass
    monkeypatch.undo()
    assert seen == [signal.SIGTERM] * 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not the deferral's
    assert signal.getsignal(signal.SIGTERM) is old_term
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_a_stop_while_the_loader_starts_is_not_swallowed(tmp_path: Path, monkeypatch):
    """A Ctrl-C that landed while the DataLoader forked its workers raised inside Python's after-fork hooks,
    which print "Exception ignored" and go on: the run trained to the end and exited 0."""
    from conftest import run
    from t2i_cli import train

    real = train.make_loader

    class Forking:
        def __init__(self, loader):
            self.loader = loader

        def __iter__(self):
            try:
                os.kill(os.getpid(), signal.SIGINT)  # the handler runs here...
            except KeyboardInterrupt:
                pass  # ...and, as in an after-fork hook, what it raises is swallowed
            return iter(self.loader)

    monkeypatch.setattr(train, "make_loader", lambda *a: Forking(real(*a)))
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "5", "--workers", "0", "--out",
            tmp_path / "r", "-q")
    assert r.exit_code == 130 and "interrupted: at step 0; checkpoint saved" in r.stderr, (r.exit_code, r.stderr)
    monkeypatch.undo()
    assert run("train", "--resume", tmp_path / "r", "-q").exit_code == 0


def test_a_stop_before_training_begins_leaves_no_run_and_the_same_command_works(tmp_path: Path, monkeypatch):
    """Ctrl-C between the run's config and its step loop left a folder with train_config.json and no
    checkpoint: the same command then said the folder already held a run."""
    from conftest import run
    from t2i_cli import stages

    def stopped(*a):
        raise KeyboardInterrupt

    args = ("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q")
    (tmp_path / "mine").mkdir()  # a folder the user made stays, empty
    for out in (tmp_path / "new", tmp_path / "mine"):
        monkeypatch.setattr(stages, "long_captions", stopped)
        r = run(*args, "--out", out)
        assert r.exit_code == 130, r.stderr
        assert (not out.exists()) if out.name == "new" else list(out.iterdir()) == []
        monkeypatch.undo()
        assert run(*args, "--out", out).exit_code == 0


def test_a_stop_during_a_new_runs_only_checkpoint_keeps_the_run(tmp_path: Path, monkeypatch):
    """With --ckpt-every above --steps the last checkpoint is the run's first: a Ctrl-C while it was written
    raised outside the loop's handling, and the start's undo then removed the whole trained run."""
    from conftest import run
    from t2i_cli import train

    real, calls = train.save_checkpoint, []

    def interrupted_save(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # lands while the checkpoint is being written
        return real(*a, **k)

    monkeypatch.setattr(train, "save_checkpoint", interrupted_save)
    out = tmp_path / "r"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "4", "--ckpt-every", "100", "--workers", "0",
            "--out", out, "-q")
    assert r.exit_code == 130 and "interrupted: at step 4; checkpoint saved" in r.stderr, r.stderr
    assert len(calls) == 1 and read_metadata(out / CHECKPOINT)["step"] == "4"  # written once, whole
    monkeypatch.undo()
    assert run("train", "--resume", out, "-q").exit_code == 0
    assert train.finished(out, 4)


def test_sigterm_ignored_when_t2i_starts_stays_ignored():
    from t2i_cli import cli

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        cli.stop_on_sigterm()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_best_model_is_written_only_at_a_new_lowest_validation_loss(tiny_runs: Path, tmp_path: Path, monkeypatch):
    """best.safetensors holds the model of the lowest validation loss: validation 3, 2, 2.5, 3 keeps step 4's
    (written at every validation, export after overfitting would pick the last model)."""
    from t2i_cli.stages import TransformerStage

    losses = iter([3.0, 2.0, 2.5, 3.0])
    monkeypatch.setattr(TransformerStage, "validate", lambda self: {"val_loss": next(losses)})
    run = tmp_path / "tr"
    t2i("train", "--stage", "transformer", "--steps", "8", "--sample-every", "2", "--dvae", tiny_runs / "dvae",
        "--tokenizer", tiny_runs / "tok", "--out", run, "--preset", "tiny", "--workers", "0", "-q")
    assert read_metadata(run / BEST)["step"] == "4"


def test_the_transformer_stage_drops_its_share_of_captions_for_guidance(tiny_runs: Path, tmp_path: Path,
                                                                          monkeypatch):
    """cond_drop of the captions are trained as the empty prompt (what classifier-free guidance's unconditional
    rows read); without it guidance, on by default, would push against an untrained prompt."""
    from t2i_cli.models.tokenizer import TextTokenizer
    from t2i_cli.models.transformer import Transformer

    seen, real = [], Transformer.forward

    def spy(self, text, codes, *a, **k):
        if self.training:
            seen.append(text.detach().clone())
        return real(self, text, codes, *a, **k)

    monkeypatch.setattr(Transformer, "forward", spy)
    t2i("train", "--stage", "transformer", "--steps", "12", "--dvae", tiny_runs / "dvae", "--tokenizer",
        tiny_runs / "tok", "--out", tmp_path / "tr", "--preset", "tiny", "--workers", "0", "--sample-every", "0",
        "-q")
    rows = torch.cat(seen)  # 12 steps x 8 captions
    empty = torch.tensor(TextTokenizer.from_file(tiny_runs / "tok" / "tokenizer.json").empty(rows.shape[1]))
    dropped = int((rows == empty).all(dim=1).sum())
    assert rows.shape[0] == 96 and 2 <= dropped <= 25, dropped  # cond_drop 0.1 of 96: about 10


def test_gumbel_temperature_anneals_from_one_and_the_kl_weight_warms_up():
    """The dVAE's Gumbel-softmax temperature falls from 1 to tau_end along a cosine over the run (reversed, it
    trained cold first and hot at the end), and the KL weight rises from 0 to kl_max over the warm-up."""
    from t2i_cli.stages import DVAEStage

    cfg = TrainConfig(stage="dvae", data="world", steps=101, tau_end=0.1, kl_max=0.5, kl_warmup=0.2)
    stage = DVAEStage.__new__(DVAEStage)  # the schedule reads the config alone
    stage.cfg = cfg
    taus, kls = zip(*(stage.schedule(s) for s in range(101)), strict=True)
    assert taus[0] == pytest.approx(1.0) and taus[100] == pytest.approx(0.1) and taus[50] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(taus, taus[1:], strict=False))
    assert kls[0] == 0.0 and kls[10] == pytest.approx(0.5 * 10 / 20.2) and kls[21] == kls[100] == 0.5


def test_each_epoch_of_a_folder_reads_the_next_caption_of_each_picture(tmp_path: Path):
    """A picture with several captions trains on caption k in epoch k (StepBatches tells the dataset its epoch;
    without it every epoch read caption 0, and --flip and --crop drew the same every epoch)."""
    from t2i_cli.data import open_source
    from t2i_cli.train import StepBatches

    for i in range(2):
        Image.new("RGB", (16, 16), (i * 90, 40, 200)).save(tmp_path / f"p{i}.png")
        (tmp_path / f"p{i}.txt").write_text(f"picture {i} caption a\npicture {i} caption b\n")
    data = open_source(str(tmp_path), 16, part="all")
    cfg = TrainConfig(stage="dvae", data=str(tmp_path), batch_size=2, steps=4, seed=0)
    batches = StepBatches(data, cfg, 0, 1, False)
    captions = [sorted(batches[step][1]) for step in range(4)]  # each step is one epoch of the two pictures
    assert captions[0] != captions[1] and captions[0] == captions[2] and captions[1] == captions[3], captions
    assert {c[-1] for c in captions[0] + captions[1]} == {"a", "b"}


def test_a_start_stopped_while_copying_its_dependencies_leaves_a_folder_a_retry_takes(tiny_runs: Path,
                                                                                       tmp_path: Path,
                                                                                       monkeypatch):
    """Ctrl-C or SIGTERM between a new transformer run's two copies (tokenizer.json, then the dVAE) left the
    tokenizer in --out, and the same command again said the folder "holds other files" (a whole run's
    --resume too). Now the stop undoes the start; and a folder holding only byte-for-byte copies of the run's
    dependencies and their temporaries (what kill -9 leaves) is taken as new."""
    from t2i_cli import stages

    out = tmp_path / "tr"
    args = ("train", "--stage", "transformer", "--steps", "2", "--dvae", tiny_runs / "dvae", "--tokenizer",
            tiny_runs / "tok", "--out", out, "--preset", "tiny", "--workers", "0", "-q")
    real, copies = stages.atomic_write_bytes, []

    def stopped(path, data):
        copies.append(Path(path).name)
        if len(copies) == 2:
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(stages, "atomic_write_bytes", stopped)
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 130 and copies == ["tokenizer.json", "dvae.safetensors"], (r.exit_code, copies)
    assert not out.exists()
    monkeypatch.undo()
    out.mkdir()  # as kill -9 leaves it: the first copy done, the second's temporary
    (out / "tokenizer.json").write_bytes((tiny_runs / "tok" / "tokenizer.json").read_bytes())
    (out / ".dvae.safetensors.x1y2z3w4.tmp").write_bytes(b"half")
    t2i(*args)
    assert (out / "transformer.safetensors").is_file() and not list(out.glob(".*.tmp"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text("{}")  # not the run's tokenizer: someone's file, never replaced
    r = runner.invoke(app, [str(other) if a == out else str(a) for a in args])
    assert r.exit_code == 2 and "holds other files" in r.stderr, r.stderr
    assert (other / "tokenizer.json").read_text() == "{}"
    # a folder that holds the dependency itself (--tokenizer W --out W) is the user's, not a killed start's
    own = tmp_path / "own"
    own.mkdir()
    (own / "tokenizer.json").write_bytes((tiny_runs / "tok" / "tokenizer.json").read_bytes())
    mine = [str(own) if a in (out, tiny_runs / "tok") else str(a) for a in args]
    r = runner.invoke(app, mine)
    assert r.exit_code == 2 and "holds other files" in r.stderr, r.stderr
    # a copy that was there before a start that is then stopped stays (only what the start wrote is undone)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "tokenizer.json").write_bytes((tiny_runs / "tok" / "tokenizer.json").read_bytes())
    copies.clear()
    monkeypatch.setattr(stages, "atomic_write_bytes", stopped)
    r = runner.invoke(app, [str(kept) if a == out else str(a) for a in args])
    assert r.exit_code == 130 and sorted(p.name for p in kept.iterdir()) == ["tokenizer.json"], r.stderr


def test_a_resumed_run_ends_with_the_uninterrupted_runs_checkpoint_byte_for_byte(tmp_path: Path, monkeypatch):
    """The tensors were equal but not the bytes: the checkpoint's copy of the run's settings kept --model's
    overrides in the order typed, and a resume (which reads them back sorted) wrote them in another."""
    common = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--ckpt-every", "100",
              "--sample-every", "0", "--steps", "6", "--model", "n_hid=8", "--model", "code_dim=8"]
    t2i(*common, "--out", tmp_path / "full")
    undo = signal_after_step(monkeypatch, 3, signal.SIGINT)
    assert runner.invoke(app, [*map(str, common), "--out", str(tmp_path / "cut")]).exit_code == 130
    undo()
    t2i("train", "--resume", tmp_path / "cut", "-q")
    for name in (CHECKPOINT, "dvae.safetensors"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name


def test_a_stop_during_the_final_validation_says_how_to_finish_the_run(tmp_path: Path, monkeypatch):
    """A stop after the last checkpoint, during the final validation and samples, said "finished files are
    kept; nothing partial was written": not that the run lacks them, nor that a resume writes them."""
    from t2i_cli.stages import DVAEStage

    real = DVAEStage.write_samples

    def stopped(self, run_dir, step, *a, **k):
        if step == 4:
            raise KeyboardInterrupt
        return real(self, run_dir, step, *a, **k)

    monkeypatch.setattr(DVAEStage, "write_samples", stopped)
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "--steps", "4",
                            "--sample-every", "0", "--out", str(out)])
    assert r.exit_code == 130, r.output
    assert r.stderr.strip() == (f"interrupted: at step 4, the run's last, before its final validation and samples; "
                                f"checkpoint saved. Finish them with: t2i train --resume {out}"), r.stderr
    monkeypatch.undo()
    t2i("train", "--resume", out, "-q")
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1]) | {"time": 0} == {
        "step": 4, "time": 0, "finished": True}


def test_run_folders_are_named_as_such_by_generate_and_export_and_an_unfinished_run_is_said(tiny_runs: Path,
                                                                                               tmp_path: Path):
    """A new user's run folder given as --weights was told to `t2i export TRANSFORMER_RUN --to` that run folder,
    which export did (a whole run's root too), mixing models with the run's files; an export of a run stopped at
    step 37 of 2,000, of one being trained, of a CLIP alone, or of nothing new, said nothing."""
    import shutil

    from conftest import run
    from t2i_cli.files import folder_lock

    r = run("generate", "a red bird", "--weights", tiny_runs / "dvae", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "dvae has no tokenizer.json; it is a training run folder, not a weights folder; " \
        "export the runs into a new one: `t2i export TRANSFORMER_RUN [CLIP_RUN] --to dvae-weights`" in r.stderr, \
        r.stderr
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "all.json").write_text("{}")
    r = run("generate", "a red bird", "--weights", whole, "--out", tmp_path / "o")
    assert r.exit_code == 1 and "a --stage all run that has not finished" in r.stderr and \
        f"`t2i train --resume {whole}`" in r.stderr and "t2i export" not in r.stderr, r.stderr  # nothing to export
    shutil.copytree(tiny_runs / "tr", whole / "transformer")  # its transformer stage done: that can be exported
    r = run("generate", "a red bird", "--weights", whole, "--out", tmp_path / "o")
    assert f"or export what it has: `t2i export {whole / 'transformer'} --to whole-weights`" in r.stderr, r.stderr
    shutil.rmtree(whole / "transformer")
    before = sorted(p.name for p in (tiny_runs / "dvae").iterdir())
    for into in (tiny_runs / "dvae", whole):
        r = run("export", tiny_runs / "tr", "--to", into)
        assert r.exit_code == 2 and f"--to {into} is a training run folder" in r.stderr, r.stderr
    assert sorted(p.name for p in (tiny_runs / "dvae").iterdir()) == before and sorted(whole.iterdir()) == [
        whole / "all.json"]

    unfinished = tmp_path / "tr"
    shutil.copytree(tiny_runs / "tr", unfinished)
    cfg = json.loads((unfinished / "train_config.json").read_text())
    (unfinished / "train_config.json").write_text(json.dumps(cfg | {"steps": 2000}))
    r = run("export", unfinished, "--to", tmp_path / "w1")
    assert r.exit_code == 0 and f"warning: {unfinished} stopped at step 6 of 2,000: its step-6 model is exported; " \
        f"`t2i train --resume {unfinished}` finishes the run" in r.stderr, r.stderr
    with folder_lock(unfinished, "busy"):  # as a training process holds it
        r = run("export", unfinished, "--to", tmp_path / "w2")
    assert r.exit_code == 0 and f"{unfinished} is being trained now: what it has saved so far is exported; export " \
        "again once it ends, with --force (to replace what this export writes)" in " ".join(r.stderr.split())
    r = run("export", unfinished, "--to", tmp_path / "w2")  # the lock is gone: only the steps are said
    assert "being trained" not in r.stderr and "nothing to write" in r.stderr and r.stdout == "", r.stderr
    r = run("export", tiny_runs / "tr", "--to", tmp_path / "w3")  # a finished run: no note at all
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    r = run("export", tiny_runs / "clip", "--to", tmp_path / "w4")
    assert r.exit_code == 0 and "has no dvae.safetensors or transformer.safetensors yet, so generate cannot load " \
        "it; export a transformer run into it too" in r.stderr, r.stderr


def test_a_run_whose_stderr_is_no_terminal_says_its_progress_in_plain_lines(tmp_path: Path, monkeypatch):
    """With stderr to a file (nohup, CI, `2> log`) the bar is silent, and a 15-minute run printed nothing until it
    ended: a plain line every PLAIN_PROGRESS_EVERY seconds says the step, rate, time left and loss; -q silences
    it, and a run shorter than the interval prints none (the interval set here, not timed)."""
    from conftest import run
    from t2i_cli import cli

    args = ("train", "--stage", "dvae", "--preset", "tiny", "--steps", "4", "--workers", "0", "--device", "cpu")
    monkeypatch.setattr(cli, "PLAIN_PROGRESS_EVERY", 1e9)  # a run shorter than the interval: no line
    r = run(*args, "--out", tmp_path / "short")
    assert r.exit_code == 0 and "train dvae: step" not in r.stderr, r.stderr
    monkeypatch.setattr(cli, "PLAIN_PROGRESS_EVERY", 0.0)
    r = run(*args, "--out", tmp_path / "said")
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("train dvae: step ")]
    assert r.exit_code == 0 and [ln.split(",")[0] for ln in lines] == [f"train dvae: step {i}/4 ({25 * i}%)"
                                                                        for i in range(1, 5)], r.stderr
    assert "steps/s" in lines[-1] and "loss=" in lines[-1]
    r = run(*args, "-q", "--out", tmp_path / "quiet")
    assert r.exit_code == 0 and "train dvae: step" not in r.stderr, r.stderr
    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "2", "--workers", "0", "--device", "cpu",
            "--out", tmp_path / "whole")
    assert r.exit_code == 0 and "train all: dvae: step 2/2 (100%)" in r.stderr, r.stderr


def test_a_stop_before_the_first_step_says_no_run_was_made_or_the_run_is_as_it_was(tmp_path: Path, monkeypatch):
    """Ctrl-C while a run was starting (data checked, models built) said inference's "finished files are kept;
    nothing partial was written": it says that no run was made (the start is undone) and the same command starts
    it, or, for a resume, that the run is as it was."""
    from conftest import run
    from t2i_cli import stages

    args = ("train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "--device", "cpu", "-q")
    real = stages._build_stage
    monkeypatch.setattr(stages, "_build_stage", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    out = tmp_path / "run"
    r = run(*args, "--steps", "2", "--out", out)
    assert r.exit_code == 130 and r.stderr.strip() == (f"interrupted: before training started; no run was made in "
                                                       f"{out}: the same command starts it"), r.stderr
    assert not out.exists()
    monkeypatch.setattr(stages, "_build_stage", real)
    assert run(*args, "--steps", "2", "--out", out).exit_code == 0
    before = (out / CHECKPOINT).read_bytes()
    monkeypatch.setattr(stages, "_build_stage", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    r = run("train", "--resume", out, "--steps", "4", "--workers", "0", "-q")
    assert r.exit_code == 130 and r.stderr.strip() == (f"interrupted: before training resumed; {out} is as it was: "
                                                       f"the same command resumes it"), r.stderr
    assert (out / CHECKPOINT).read_bytes() == before
    # a stop that left the started run in place (under torchrun, rank 0 stopped while handling a lost peer, past
    # the undo): it said "no run was made" beside the run's train_config.json, and the same command was refused
    monkeypatch.setattr(stages, "_build_stage", real)
    monkeypatch.setattr(stages, "_train_started", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    monkeypatch.setattr(stages, "undo_start", lambda created: None)
    left = tmp_path / "left"
    r = run(*args, "--steps", "2", "--out", left)
    assert r.exit_code == 130 and r.stderr.strip() == (f"interrupted: before the first step; {left} holds the run's "
                                                       f"settings: `t2i train --resume {left}` starts it"), r.stderr
    # ... and one past the step loop's own handling (a checkpoint saved): it is no "before the first step"
    saved = tmp_path / "saved"
    monkeypatch.setattr(stages, "_train_started", lambda cfg, run_dir, *a, **k: (
        (run_dir / CHECKPOINT).write_bytes(b""), (_ for _ in ()).throw(KeyboardInterrupt()))[1])
    r = run(*args, "--steps", "2", "--out", saved)
    assert r.exit_code == 130 and r.stderr.strip() == (f"interrupted: {saved} holds the run up to its last "
                                                       f"checkpoint: `t2i train --resume {saved}` goes on from it (or "
                                                       f"says it is finished)"), r.stderr
    monkeypatch.undo()
    assert run("train", "--resume", left, "--workers", "0", "-q").exit_code == 0 and (left / CHECKPOINT).is_file()
    # a stop earlier still, before the run's own handling (options checked): it said inference's "finished files
    # are kept"; and the next command in this process says its own line again
    from t2i_cli import cli

    monkeypatch.setattr(cli, "check_stage", lambda stage: (_ for _ in ()).throw(KeyboardInterrupt()))
    r = run(*args, "--steps", "2", "--out", tmp_path / "early")
    assert r.exit_code == 130 and r.stderr.strip() == ("interrupted: before training started; nothing was written: "
                                                       "the same command starts it"), r.stderr
    r = run("train", "--resume", left, "-q")
    assert r.exit_code == 130 and r.stderr.strip() == ("interrupted: before training resumed; the run is as it was: "
                                                       "the same command resumes it"), r.stderr
    monkeypatch.setattr(cli, "utf8_text", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    r = run("generate", "a red bird")
    assert r.stderr.strip() == "interrupted: nothing was written", r.stderr  # (generate's own: no file yet)


def test_a_resumed_runs_loss_history_passes_over_edited_values(tmp_path: Path):
    """`train --resume` of a run whose metrics.jsonl had a loss edited to null ended in an internal error
    (TypeError: '<' between float and None, drawing loss.png). Rows whose loss, curve or val_loss is not a
    number are left out of the history the curve is drawn from; every row is kept in the file."""
    from t2i_cli.train import Logger

    rows = [{"step": 1, "loss": 1.0, "recon_l1": 0.5}, {"step": 2, "loss": None, "recon_l1": 0.4},
            {"step": 3, "loss": 0.8, "recon_l1": "0.3"}, {"step": 4, "loss": 0.7, "recon_l1": 0.2},
            {"step": 4, "val_loss": None}, {"step": 4, "val_loss": 0.9}, {"step": 5, "warning": "w"}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = Logger(tmp_path, True, start=5, curve="recon_l1")
    assert log.history == [(1, 0.5), (4, 0.2)] and log.val_history == [(4, 0.9)]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == len(rows)
    log.log(6, {"loss": 0.6, "recon_l1": 0.1})
    from t2i_cli.stages import write_curve

    write_curve(tmp_path, log.history, log.val_history)  # what failed
    assert (tmp_path / "loss.png").is_file()


def test_a_run_whose_batch_the_processes_cannot_split_is_resumed_with_a_count_that_can(tmp_path: Path, monkeypatch):
    """A run of --batch-size 7 resumed under a 2-process torchrun said "--batch-size 7 must be a multiple of the 2
    processes", an option the resume was not given (and would refuse): it names the run's batch and the process
    counts that divide it; a new run keeps the option's wording."""
    from t2i_cli import stages, train
    from t2i_cli.errors import UsageError
    from t2i_cli.train import Dist, TrainConfig

    monkeypatch.setattr(train, "setup_distributed", lambda device: Dist(rank=0, n_procs=5))
    cfg = TrainConfig(stage="dvae", data="world:train", batch_size=12)
    for resume, says in ((True, f"{tmp_path}'s batch of 12 cannot be split over 5 processes; resume it with a number "
                                f"of processes that divides it (1, 2, 3, 4, 6, 12)"),
                         (False, "batch_size=12 must be a multiple of the 5 processes")):  # (from Python)
        with pytest.raises(UsageError) as e:
            stages.run_stage(cfg, tmp_path, resume, None, "cpu")
        assert str(e.value) == says, str(e.value)


@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_data_source_every_process_finds_unusable_is_said_by_rank_0_alone(tmp_path: Path, monkeypatch, rank):
    """Under torchrun a missing or empty --data folder was said by every process, twice the same line: each found
    it alike, so rank 0 says it and the others exit with it silently."""
    from conftest import run
    from t2i_cli import train
    from t2i_cli.train import Dist

    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")  # (as torchrun sets both)
    monkeypatch.setattr(train, "setup_distributed", lambda device: Dist(rank=int(rank), n_procs=1))
    (tmp_path / "empty").mkdir()
    for data in (tmp_path / "empty", tmp_path / "gone"):
        r = run("train", "--stage", "dvae", "--preset", "tiny", "--data", data, "--out", tmp_path / "run", "-q")
        assert r.exit_code == 1 and not (tmp_path / "run").exists(), r.stderr
        assert (r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1) if rank == "0" else r.stderr == ""
