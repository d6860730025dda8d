"""`t2i info RUN`: what a training run folder holds, how far it got and what to do next, read from its own files
(train_config.json, the checkpoint's step, metrics.jsonl) without loading a model; a run being trained now by
another process is seen by its folder lock."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from t2i_cli.errors import T2IError, UsageError
from t2i_cli.files import folder_locked, is_whole_run, shell_word
from t2i_cli.recipe import plan_settings
from t2i_cli.train import (
    CHECKPOINT,
    RUN_CONFIG,
    STAGES,
    collapsed_codebook,
    finished,
    read_metrics,
    read_run_config,
    stopped_early,
)
from t2i_cli.train_options import next_step
from t2i_cli.weights import read_metadata


def is_run(folder: Path) -> bool:
    """Whether a folder is a training run: one stage's (train_config.json) or a whole run's (all.json)."""
    return (Path(folder) / RUN_CONFIG).is_file() or is_whole_run(folder)


def resume_advice(folder: Path, data: str | None = None) -> str:
    """The command that goes on with a stopped run; where its folder cannot be written to (a read-only disk), or
    its pictures (data, as the run recorded them) are no longer where it read them, a resume there is refused, and
    the advice is the one that refusal gives (it said "resume with: ..." of a run whose folder had moved)."""
    if data is not None:
        from t2i_cli.stages import check_data_still_there

        try:
            check_data_still_there(data, folder)
        except T2IError as e:
            return f"{e}; then: t2i train --resume {shell_word(folder)}"
    if not os.access(folder, os.W_OK):
        return (f"{folder} cannot be written to (a read-only disk or folder): copy the run folder to a writable "
                f"place and resume that copy with: t2i train --resume COPY")
    return f"resume with: t2i train --resume {shell_word(folder)}"


def run_info(folder: Path) -> dict[str, Any]:
    """A run folder described: a stage's run, or a whole run (`--stage all`) with each of its stages."""
    folder = Path(folder)
    if is_whole_run(folder) and not (folder / RUN_CONFIG).is_file():
        stages = {s: stage_info(folder / s) if (folder / s / RUN_CONFIG).is_file() else {"status": "not started"}
                  for s in STAGES}
        training = any(s.get("status") == "training" for s in stages.values())
        done = all(s.get("status") in ("finished", "stopped early") for s in stages.values())
        for s in stages.values():
            s.pop("next", None)  # (a stage's own --resume would finish that stage alone)
        weights = folder / "weights"
        diverged = next((s for s, v in stages.items() if v.get("status") == "diverged"), None)
        # (not the dvae stage: RUN/weights holds the transformer's copy of the dVAE it trained on, which extending the
        # dvae stage does not change, nor does the whole run's resume: said stale, it stayed so after that resume)
        behind = [s for s in ("transformer", "clip") if done and _exported_before(folder, s)]
        next_ = (None if training else
                 f"its {' and '.join(behind)} stage trained on after {weights} was exported, which holds the model "
                 f"before: t2i train --resume {shell_word(folder)} exports it there" if behind else
                 f"generate with: t2i generate PROMPT --weights {shell_word(weights)}"
                 if done and weights.is_dir() else
                 f"its {diverged} stage diverged: t2i info {shell_word(folder / diverged)} says how to go on"
                 if diverged else resume_advice(folder, plan_settings(folder, {}).get("data", "world:train")))
        status = "training" if training else "finished" if done else "diverged" if diverged else "stopped"
        return {"folder": str(folder), "kind": "whole run", "settings": plan_settings(folder, {}), "stages": stages,
                "status": status,
                "weights": str(weights) if weights.is_dir() else None, "next": next_}
    return {"folder": str(folder), "kind": "run", **stage_info(folder)}


def _exported_before(run: Path, stage: str) -> bool:
    """Whether a whole run's stage, extended on its own (`t2i train --resume RUN/transformer --steps N`), trained
    past the model RUN/weights holds: its step there is below the one an export would take now (the final model's,
    or the best one's where train.exported_model takes that). `t2i info RUN` said "generate with: ... --weights
    RUN/weights", the model exported before, where the stage's own finish line says to resume the whole run."""
    from t2i_cli.train import exported_model

    sub, exported = run / stage, run / "weights" / f"{stage}.safetensors"
    try:
        if not exported.is_file() or not (sub / f"{stage}.safetensors").is_file():
            return False
        chosen, _ = exported_model(sub, stage)
        steps = [int(read_metadata(f).get("step", -1)) for f in (chosen, sub / CHECKPOINT)
                 if f.is_file() and (f == chosen or chosen == sub / f"{stage}.safetensors")]
        return max(steps, default=-1) > int(read_metadata(exported).get("step", -1))
    except (OSError, ValueError, T2IError):  # (unreadable: said by what reads it)
        return False


def stage_info(run_dir: Path) -> dict[str, Any]:
    """One stage's run: its stage, data, steps trained of its total, status, last loss, best validation, the pace
    of its latest start, and the command to go on."""
    cfg = read_run_config(run_dir, "give t2i info a run folder or a weights folder")
    info: dict[str, Any] = {"stage": cfg.stage, "data": cfg.data, "steps": cfg.steps}
    training = folder_locked(run_dir)
    ckpt = run_dir / CHECKPOINT
    whole = run_dir.parent if run_dir.name in STAGES and is_whole_run(run_dir.parent) else None
    resume = whole if whole is not None else run_dir  # (a stage's own --resume finishes it alone)
    if cfg.stage == "tokenizer":
        trained = (run_dir / "tokenizer.json").is_file()
        # (no steps: a tokenizer is learned in one pass, and its config's steps, 1000 by default, never run)
        info.update(steps=None, step=None, status="training" if training else "finished" if trained else "stopped")
        info["next"] = None if training else next_step(cfg, run_dir) if trained else resume_advice(resume, cfg.data)
        return info
    try:
        step = int(read_metadata(ckpt).get("step", 0)) if ckpt.is_file() else 0
    except ValueError:  # (a step edited to text: the checkpoint's own reader names it at a resume)
        raise UsageError(f"{ckpt} records no step t2i reads; resume the run to have it checked") from None
    rows = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    info["step"] = step
    losses = [r for r in rows if _number(r.get("loss"))]
    info["loss"] = {"step": losses[-1]["step"], "value": losses[-1]["loss"]} if losses else None
    if losses and _number(losses[-1].get("recon_l1")):
        # a dVAE's val_loss is pixel L1 whatever its --recon-loss (loss.png draws that beside it too): `t2i info`
        # showed a logit_laplace loss of 0.76 beside a val_loss of 0.17, as if validation were 4x better
        info["loss"].update(recon_l1=losses[-1]["recon_l1"], recon_loss=getattr(cfg, "recon_loss", "l1"))
    vals = [r for r in rows if _number(r.get("val_loss"))]
    best = min(vals, key=lambda r: r["val_loss"]) if vals else None
    info["val_loss"] = None if best is None else {"best": best["val_loss"], "best_step": best["step"],
                                                  "last": vals[-1]["val_loss"], "last_step": vals[-1]["step"]}
    info["rate"] = _pace(rows)
    if cfg.stage == "dvae":  # a collapsed codebook, as the run's end says it (the watchdog said it once, mid-run)
        info["codebook"] = collapsed_codebook(rows, cfg, _n_codes(run_dir))
    diverged = [r for r in rows if r.get("diverged") and r["step"] > step]
    if training:
        status = "training"
    elif finished(run_dir, cfg.steps):
        status = "stopped early" if stopped_early(run_dir, cfg.steps) else "finished"
    elif diverged:
        status = "diverged"
        info["diverged"] = diverged[-1]["diverged"]
    else:
        status = "stopped"
    info["status"] = status
    last = max((r["step"] for r in losses), default=step)
    info["eta_s"] = (cfg.steps - last) / info["rate"] if status == "training" and info["rate"] else None
    info["next"] = None if status in ("training", "diverged") else \
        resume_advice(resume, cfg.data) if status == "stopped" else next_step(cfg, run_dir)
    return info


def _n_codes(run_dir: Path) -> int | None:
    """The codebook size of a dVAE run's model file, as its metadata records it (None where unreadable)."""
    import json

    try:
        n = json.loads(read_metadata(run_dir / "dvae.safetensors").get("config", "{}")).get("n_codes")
    except (OSError, ValueError, AttributeError, T2IError):
        return None
    return n if type(n) is int and n > 0 else None


def _pace(rows: list[dict]) -> float | None:
    """Steps per second since the latest start (each start logs its precision at its first step), from the logged
    lines' times; None before two lines."""
    starts = [i for i, r in enumerate(rows) if "precision" in r]
    since = rows[starts[-1]:] if starts else rows
    timed = [r for r in since if _number(r.get("time")) and ("loss" in r or "precision" in r)]
    if len(timed) < 2 or timed[-1]["time"] <= timed[0]["time"] or timed[-1]["step"] <= timed[0]["step"]:
        return None
    return (timed[-1]["step"] - timed[0]["step"]) / (timed[-1]["time"] - timed[0]["time"])


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
