"""Session 47 (hB): training and torchrun messages left by the last closing read. Each test fails without its
fix."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import run
from t2i_cli.train import CHECKPOINT
from t2i_cli.weights import load_tensors
from test_s41_signals import COLOURS, end_worker, on_step


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """Six captioned pictures (test_s41_signals' own)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pics")
    for i, colour in enumerate(COLOURS):
        img = Image.new("RGB", (24, 24), colour)
        img.paste((255, 255, 255), (4 + i, 4, 12 + i, 12))
        img.save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"a square number {i}\n")
    return folder


@pytest.mark.skipif(not hasattr(signal, "SIGCHLD") or not hasattr(os, "waitid"), reason="needs SIGCHLD and waitid")
def test_a_whole_runs_worker_stop_inside_an_optimizer_step_names_the_checkpoint_that_exists(pictures, tmp_path,
                                                                                            monkeypatch):
    """A stop that reached the loader's worker alone as an error came inside the dVAE stage's 4th optimizer step
    (the update perhaps half made: nothing of it is saved, the checkpoint of step 2 stays): the stage's line says
    "its checkpoint is step 2's", but a whole run's said "in the dvae stage at step 3; checkpoint saved", a
    checkpoint no process had written. It names the one a resume starts from now."""
    pids = []

    def stop_then_fail() -> None:
        pids.append(end_worker(signal.SIGTERM))
        raise RuntimeError("out of memory")  # (an error of the update itself, as the worker's end is seen)

    on_step(monkeypatch, 4, stop_then_fail)
    out = tmp_path / "all"
    r = run("train", "--stage", "all", "--preset", "tiny", "--data", pictures, "--steps", "6", "--workers", "1",
            "--batch-size", "2", "--ckpt-every", "2", "--sample-every", "0", "--device", "cpu", "-q", "--out", out)
    monkeypatch.undo()
    assert pids and r.exit_code == 130, r.output + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"interrupted: SIGTERM to its data loader's worker process (pid {pids[0]}, as a kill of each of the run's "
        f"processes sends) in the dvae stage at step 3; the dvae stage's checkpoint is step 2's; finished stages are "
        f"kept. Resume with: t2i train --resume {out} (or the same command again)"], r.stderr
    assert load_tensors(out / "dvae" / CHECKPOINT)[1]["step"] == "2"


def test_torchrun_whole_run_rank_1_stopped_once_rank_0_was_killed_names_the_checkpoint_rank_0_left(tmp_path: Path):
    """--stage all under torchrun, rank 0 killed (kill -9, out of memory) at the dVAE stage's step 5 and torchrun's
    SIGTERM reaching rank 1 inside that step: rank 1 said "in the dvae stage at step 4; checkpoint saved", of the
    checkpoint rank 0 had left (rank 1 saves nothing) and not the step it stopped at. It says where it stopped and
    the checkpoint a resume starts from, as a stage's own run says it."""
    from conftest import exit_codes, torchrun_t2i
    from test_s45_hI import RANK_0_KILLED_WHILE_RANK_1_COMPUTES

    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_KILLED_WHILE_RANK_1_COMPUTES, "--stage", "all", "--steps", "8",
                        "--ckpt-every", "2", "--sample-every", "0", "--data", "world", "--out", str(out))
    assert exit_codes(tmp_path) == ["missing", "130"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == ["interrupted: SIGTERM (torchrun's, once rank 0 of this run had ended: killed, or out of memory; "
                    "its report says how) in the dvae stage at step 5; the dvae stage's checkpoint is step 4's; "
                    f"finished stages are kept. Resume with: t2i train --resume {out} (or the same command again)"], \
        proc.stderr[-3000:]
    assert load_tensors(out / "dvae" / CHECKPOINT)[1]["step"] == "4"


def test_a_finetune_decoder_run_of_collapsed_codes_is_told_to_retrain_its_dvae(tmp_path: Path):
    """A --finetune-decoder run keeps its --dvae's encoder and codebook frozen: where that dVAE's codes are collapsed
    (8 steps: 2 of 64 codes), the run was told "try more --steps or a lower --lr", which change nothing of its
    codes. Its watchdog (the decoder drawing one image) and its end's judgement now tell it to retrain that dVAE."""
    dvae, out = tmp_path / "dvae", tmp_path / "ft"
    common = ["--preset", "tiny", "--sample-every", "0", "--data", "world", "--device", "cpu", "--workers", "0", "-q"]
    assert run("train", "--stage", "dvae", "--steps", "8", "--out", dvae, *common).exit_code == 0
    r = run("train", "--stage", "dvae", "--finetune-decoder", "--dvae", dvae, "--steps", "60", "--out", out, *common)
    assert r.exit_code == 0, r.output + r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    retrain = ("try retraining the --dvae model it fine-tunes (more --steps or a lower --lr), then fine-tuning that "
               "one's decoder: a --finetune-decoder run keeps the encoder and codebook, which make the codes, as they "
               "were")
    assert warnings and all(w.endswith(retrain) for w in warnings), warnings
    assert any("the dVAE's codebook has collapsed: at step 60" in w for w in warnings), warnings


def test_a_finetune_decoder_run_whose_codes_are_used_is_told_its_lr_for_a_constant_decoder():
    """The decoder of a --finetune-decoder run drawing one image whatever its codes, where those codes are not
    collapsed, is its own training's (the dVAE's codes cannot change there): a lower --lr."""
    from t2i_cli.train import Watchdog

    dog = Watchdog(warmup_steps=0, recon_loss="logit_laplace", finetune=True)
    assert dog.check(10, {"loss": 1.0, "perplexity": 20.0, "codes_used": 0.5}) == []
    assert dog.check(20, {"loss": 0.9, "out_std": 0.0}) == [
        "step 20: the decoder draws the same image whatever the input (spread 0.0e+00); try a lower lr"]


def test_a_collapsed_codebook_is_judged_on_the_latest_step_measured_whichever_kind_measured_it():
    """collapsed_codebook's docstring said the latest validation first, its code the latest step of either kind (the
    code is kept: a run stopped at step 400 whose validation at 200 was collapsed, its codes used again by step 400,
    is not collapsed; at one step the validation's measure is said)."""
    from t2i_cli.train import TrainConfig, collapsed_codebook

    cfg = TrainConfig(stage="dvae", data="world", steps=1000)
    stopped = [{"step": 200, "val_perplexity": 1.2, "val_codes_used": 0.05},
               {"step": 400, "perplexity": 30.0, "codes_used": 0.9}]
    assert collapsed_codebook(stopped, cfg, 64) is None
    both = [{"step": 400, "perplexity": 30.0, "codes_used": 0.9}, {"step": 400, "val_perplexity": 1.2,
                                                                   "val_codes_used": 0.05}]
    assert collapsed_codebook(both, cfg, 64).startswith(
        "the dVAE's codebook has collapsed: at step 400 its codebook perplexity is 1.20 (3 of 64 codes used on its "
        "validation pictures)")


def test_a_dvae_run_shorter_than_the_watchdogs_warm_up_is_judged_at_its_end(tmp_path: Path):
    """The end's codebook judgement looked only past the watchdog's warm-up (50 steps): a run of 8 steps, ending with
    2 of 64 codes used, said nothing (nor did `t2i info`), and a transformer trained on its codes drew noise. Its
    last step's measure is judged now, with what to try: more --steps."""
    out = tmp_path / "dvae"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "8", "--sample-every", "0", "--data", "world",
            "--device", "cpu", "--workers", "0", "-q", "--out", out)
    assert r.exit_code == 0, r.output + r.stderr
    said = ("the dVAE's codebook has collapsed: at step 8 its codebook perplexity is 1.04 (2 of 64 codes used on its "
            "validation pictures): nearly every cell uses one code; try more --steps (a run of 8 steps ends inside "
            "the first 50, where a fresh dVAE's codes have not spread yet)")
    assert r.stderr.splitlines() == [f"warning: {said}"], r.stderr
    assert f"  codebook  {said}" in run("info", out).stdout.splitlines()


def test_torchrun_kill_9_of_rank_0_of_three_processes_the_checkpoint_is_said_once(tmp_path: Path):
    """Three processes, rank 0 killed (kill -9, out of memory) at step 5, its checkpoint of step 4 on disk: every
    other rank named that checkpoint and the resume (rank 1's and rank 2's lines alike: 7 of 8 processes). The
    lowest rank still running says it; the others, which lost the same connection, leave it to that one."""
    from conftest import torchrun_t2i
    from test_s45_hI import KILLED_AT_STEP_5

    out = tmp_path / "run"
    patch = KILLED_AT_STEP_5.replace("{killed}", "0").replace("{tmp}", str(tmp_path))
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--batch-size", "6", "--ckpt-every", "2",
                        "--sample-every", "0", "--data", "world", "--out", str(out), monitor=2, nproc=3)
    codes = [(tmp_path / f"exit-{r}").read_text() if (tmp_path / f"exit-{r}").is_file() else "missing"
             for r in range(3)]
    assert codes == ["missing", "1", "1"], (proc.stderr[-3000:], codes)
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == ["error: rank 1 stopped: another torchrun process of this run stopped first (its own line, or "
                    "torchrun's, says why); its checkpoint of step 4 is kept; once that is mended, resume with: t2i "
                    f"train --resume {out}"], proc.stderr[-3000:]


def test_the_lowest_rank_still_running_on_this_machine_speaks_for_a_killed_rank_0(tmp_path: Path):
    """Rank 0 gone: rank 2 says the checkpoint where rank 1 has ended too, not where rank 1 still runs (it does);
    a rank of another machine (None) is not looked for."""
    import subprocess
    import sys

    from t2i_cli.train import Dist

    ended = []
    for _ in range(2):
        p = subprocess.Popen([sys.executable, "-c", "pass"])
        p.wait()  # (reaped: its pid names no process now)
        ended.append(p.pid)
    me = os.getpid()
    assert Dist(rank=2, n_procs=3, main_pid=ended[0], pids=(ended[0], ended[1], me)).speaks_for_main()
    assert not Dist(rank=2, n_procs=3, main_pid=ended[0], pids=(ended[0], me, me)).speaks_for_main()
    assert Dist(rank=2, n_procs=3, main_pid=ended[0], pids=(ended[0], None, me)).speaks_for_main()
    assert Dist(rank=1, n_procs=3, main_pid=ended[0], pids=(ended[0], me, me)).speaks_for_main()
    assert not Dist(rank=1, n_procs=3, main_pid=me, pids=(me, me, me)).speaks_for_main()


def test_rank_1_stopped_by_torchrun_outside_training_once_rank_0_was_killed_says_so(monkeypatch, capsys):
    """Rank 0 killed before training's first step (its data's check; a whole run between stages): torchrun's SIGTERM
    stopped rank 1 there, which ended silently (exit 130), a stop being rank 0's to say, and rank 0 could not:
    torchrun's report alone (`--stage all`, rank 0 killed as it opened the data). Rank 1 notes, as the stop comes,
    that rank 0 has ended, and says the stop's line with why it says it."""
    import subprocess
    import sys

    from t2i_cli import cli, train
    from t2i_cli.train import Dist

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # (reaped: rank 0's pid names no process now)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setitem(cli.STATE, "debug", False)
    monkeypatch.delitem(cli.STATE, "interrupted", raising=False)  # (an earlier in-process command's stop line: the
    # command line's callback pops it, user_errors alone does not)
    monkeypatch.setattr(train, "JOB", Dist(rank=1, n_procs=2, main_pid=gone.pid, pids=(gone.pid, os.getpid())))
    monkeypatch.setattr(train, "_FIRST_STOP", [])
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, train._stop_noting)  # (as setup_distributed sets it on ranks other than 0)
    try:
        _rank_1_stops(capsys, gone, Dist)
    finally:
        signal.signal(signal.SIGTERM, before)  # (no handler of this test's left to later ones)


def _rank_1_stops(capsys, gone, Dist) -> None:
    """The two stops of the test above, under its handler."""
    import typer

    from t2i_cli import cli, train

    with pytest.raises(typer.Exit) as ex, cli.user_errors():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 5)  # (the stop is raised here)
    assert ex.value.exit_code == 130
    assert capsys.readouterr().err.strip() == (
        "interrupted: SIGTERM (torchrun's, once rank 0 of this run had ended: killed, or out of memory; its report "
        "says how); finished files are kept; nothing partial was written")
    train._FIRST_STOP = []  # rank 0 running: its own line says the stop, this one nothing (restored by the caller's
    # monkeypatch)
    train.JOB = Dist(rank=1, n_procs=2, main_pid=os.getpid(), pids=(os.getpid(),) * 2)
    with pytest.raises(typer.Exit) as ex, cli.user_errors():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 5)
    assert ex.value.exit_code == 130 and capsys.readouterr().err == ""
