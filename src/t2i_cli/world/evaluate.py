"""`t2i eval`: scoring a model on the world's GenEval-style tasks with the independent judge, checking the
judge itself on real renders, and a dVAE's reconstruction of val scenes."""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable

import numpy as np
import torch

from t2i_cli.models.dvae import code_usage, psnr
from t2i_cli.sampling import SamplingConfig, refuse_greedy_copies
from t2i_cli.sampling_config import MAX_IMAGES, MAX_PER_TASK, check_count, whole_seed
from t2i_cli.world.judge import Judge
from t2i_cli.world.judge_training import degrade
from t2i_cli.world.render import render
from t2i_cli.world.segment import as_uint8
from t2i_cli.world.spec import SceneSpec
from t2i_cli.world.splits import scene
from t2i_cli.world.tasks import TASK_CHECKS, TASKS, image_seed, task_prompts, wrong_spec


def validate_judge(judge: Judge, n_per_task: int, seed: int, side: int, is_degraded: bool = False,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """On real renders of each task's prompts (degraded like decoded images when asked): how often the judge
    agrees with the spec ("agreement"), and how often it says no to a render of a scene that differs in
    what the task judges ("rejects_wrong"); a judge that always says yes scores 0 on the second."""
    n_per_task = check_count(n_per_task, "n_per_task", MAX_PER_TASK)
    seed = whole_seed(seed)  # (-1 was taken, and scored renders of seeds eval refuses)

    def draw(spec: SceneSpec, s: int) -> np.ndarray:
        img = np.asarray(render(spec, s, side, jitter=True))
        return degrade(img, random.Random(s)) if is_degraded else img

    out = {}
    for task in TASKS:
        rng, agree, reject = random.Random(f"t2i-eval-wrong:{task}:{seed}"), 0, 0
        for i, (_, spec) in enumerate(task_prompts(task, n_per_task, seed)):
            s = image_seed(seed, task, i)
            agree += judge.passes(task, draw(spec, s), spec)
            reject += not judge.passes(task, draw(wrong_spec(task, spec, rng), s), spec)
            if progress is not None:
                progress(task, i + 1, n_per_task)
        out[task] = {"agreement": agree / max(1, n_per_task), "rejects_wrong": reject / max(1, n_per_task)}
    return out


# ----------------------------------------------------------------------------- scoring a model
EVAL_BATCH = 16  # images decoded together: prompts x candidates (each prompt keeps its own seed's generator) ...
LARGE_EVAL_BATCH = 32  # ... or this many (at most pipeline.MAX_EVAL_BATCH, tested) where their decode state
DECODE_MEMORY = 1 << 30  # stays under this (decode_batch)


def unknown_words(tokenizer: Any, text_len: int, n: int, seed: int) -> list[str]:
    """The words of the eval's prompts (n a task, at seed) that a tokenizer does not read whole: weights trained on
    a user's pictures lack the world's words, and scored 0% on every task with no hint why."""
    return sorted({w for task in TASKS for p, _ in task_prompts(task, n, seed)
                   for w in tokenizer.encode(p, text_len).unknown_words})


def _transformer_config(pipe: Any) -> Any:
    """The pipeline's transformer's config, or None (a stand-in pipe without one)."""
    return getattr(getattr(getattr(pipe, "bundle", None), "transformer", None), "cfg", None)


def decode_batch(pipe: Any) -> int:
    """Images `t2i eval` decodes together: LARGE_EVAL_BATCH (32; 1.12x faster than 16 on the shipped model,
    BENCHMARKS.md, the same codes) where 4 rows per image (guidance and two region prompts) of the model's
    fp32 decode state fit in DECODE_MEMORY, else EVAL_BATCH (16), as before."""
    cfg = _transformer_config(pipe)
    if cfg is None or 4 * LARGE_EVAL_BATCH * cfg.activation_bytes() > DECODE_MEMORY:
        return EVAL_BATCH
    return LARGE_EVAL_BATCH


def evaluate_model(pipe: Any, judge: Judge, n_per_task: int, seed: int, sampling: SamplingConfig = SamplingConfig(),
                   candidates: int = 1, progress: Callable[[str, int, int], None] | None = None,
                   tasks: tuple[str, ...] = TASKS,
                   keep: Callable[[str, int, int, Any, dict[str, bool]], None] | None = None) -> dict[str, Any]:
    """Generate each task's prompts with a TextToImage pipeline (with candidates > 1, draw that many per
    prompt and keep CLIP's favourite) and score them with the judge: per-task accuracy, counts, timing. keep,
    if given, is called with each judged image: keep(task, prompt index, the prompt's seed, the Generated, the
    judge's checks of it)."""
    # (2.5 was a TypeError in the loop, True taken as 1)
    candidates = check_count(candidates, "candidates", MAX_IMAGES)
    # (said as the caller's keyword, not n=; a top_p at or below 1/codebook is greedy too: it was refused later,
    # by draw_each, as n=4)
    refuse_greedy_copies(sampling, candidates, name="candidates",
                         vocab=getattr(_transformer_config(pipe), "image_vocab", None))
    n_per_task = check_count(n_per_task, "n_per_task", MAX_PER_TASK)
    seed = whole_seed(seed)
    if isinstance(tasks, str):  # ("single_object": its letters' KeyError)
        raise ValueError(f"tasks must be a tuple of task names ({', '.join(TASKS)}), got {tasks!r}")
    tasks = tuple(tasks)  # (a generator, checked below, would be used up before the loop)
    if any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be task names ({', '.join(TASKS)}), got {tasks!r}")
    start, results, batch = time.perf_counter(), {}, decode_batch(pipe)
    for task in tasks:
        t0, passed, checks = time.perf_counter(), 0, {c: 0 for c in TASK_CHECKS[task]}
        prompts = task_prompts(task, n_per_task, seed)
        step = max(1, batch // candidates)  # prompts that share a decode (candidates rows each)
        for lo in range(0, len(prompts), step):
            part = prompts[lo:lo + step]
            seeds = [image_seed(seed, task, i) for i in range(lo, lo + len(part))]
            if candidates == 1:
                best = pipe.draw_each([pipe.request(p, sampling, warn=False) for p, _ in part], seeds, batch=batch)
            elif candidates <= EVAL_BATCH:  # each prompt's candidates are those `pipe(prompt, n=candidates)` draws
                drawn = pipe.draw_each([pipe.request(p, sampling, warn=False) for p, _ in part], seeds, n=candidates,
                                       batch=batch)
                best = [pipe.rerank(drawn[i * candidates:(i + 1) * candidates], 1)[0] for i in range(len(part))]
            else:
                best = [pipe.rerank(pipe(part[0][0], n=candidates, seed=seeds[0], sampling=sampling), 1)[0]]
            for k, (g, (_, spec)) in enumerate(zip(best, part, strict=True)):
                got = judge.check(g.image, spec)
                if keep is not None:
                    keep(task, lo + k, seeds[k], g, {c: bool(got.get(c, False)) for c in checks})
                for c in checks:
                    checks[c] += got.get(c, False)
                passed += all(got.get(c, False) for c in checks)
            if progress is not None:
                progress(task, lo + len(part), len(prompts))
        n = max(1, len(prompts))
        results[task] = {"accuracy": passed / n, "passed": passed, "n": len(prompts),
                         "ci95": wilson(passed, len(prompts)), "checks": {c: k / n for c, k in checks.items()},
                         "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - start
    images = sum(r["n"] for r in results.values()) * candidates
    return {"tasks": results, "overall": sum(r["accuracy"] for r in results.values()) / max(1, len(results)),
            "n_per_task": n_per_task, "seed": seed, "candidates": candidates, "seconds": seconds,
            "images_per_second": images / seconds if seconds > 0 else 0.0}


def wilson(passed: int, n: int, z: float = 1.96) -> list[float]:
    """The 95% Wilson score interval [low, high] of an accuracy of passed in n (z: the normal quantile): at the
    small n an eval is often run at, 2 of 2 is 34-100%, not 100%."""
    if n <= 0:
        return [0.0, 1.0]
    p = passed / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)
    return [max(0.0, min(p, low)), min(1.0, max(p, high))]  # (it holds p: 12 of 12's high was 1 - 2e-16)


def across_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' `evaluate_model` results (with the eval's own fields: weights, precision, sampling) as
    one: every run kept whole under "runs", each task's accuracy per seed ("by_seed") and their mean, and the
    mean overall. The runs must share what makes them comparable (weights, prompts per task, candidates,
    precision, sampling) and differ in seed."""
    if len(runs) < 2:
        raise ValueError(f"across_seeds needs two runs or more, got {len(runs)}")
    shared = ("weights", "n_per_task", "candidates", "precision", "sampling")
    for key in shared:
        if any(key not in run for run in runs):  # (evaluate_model's own results: the eval command adds these)
            raise ValueError(f"across_seeds compares runs by {', '.join(shared)}; a run lacks {key!r} (evaluate_model "
                             f"gives the tasks; add the weights' identity, precision and sampling to each run)")
        if any(run[key] != runs[0][key] for run in runs):
            raise ValueError(f"the runs differ in {key}: not one evaluation at several seeds")
    if any(run["tasks"].keys() != runs[0]["tasks"].keys() for run in runs):
        raise ValueError("the runs scored different tasks: not one evaluation at several seeds")
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the runs repeat a seed: {seeds}")
    tasks = {name: {"accuracy": sum(run["tasks"][name]["accuracy"] for run in runs) / len(runs),
                    "by_seed": [run["tasks"][name]["accuracy"] for run in runs]} for name in runs[0]["tasks"]}
    return {"seeds": seeds, "tasks": tasks, "overall": sum(run["overall"] for run in runs) / len(runs),
            **{key: runs[0][key] for key in shared}, "seconds": sum(run["seconds"] for run in runs),
            "runs": runs}


@torch.inference_mode()
def dvae_metrics(dvae: Any, n: int, seed: int, batch: int = 32) -> dict[str, float]:
    """Reconstruction PSNR (dB, images in [0, 1]) and codebook use (perplexity of the code histogram,
    distinct codes) of a dVAE on n world `val` scenes at its own image side."""
    n, seed = check_count(n, "n", MAX_PER_TASK), whole_seed(seed)
    side, device = dvae.cfg.image_side, next(dvae.parameters()).device
    codes_seen: list[torch.Tensor] = []
    psnrs: list[torch.Tensor] = []
    for lo in range(0, n, batch):
        imgs = [scene("val", seed * 1_000_003 + i, side)[0] for i in range(lo, min(n, lo + batch))]
        x = torch.stack([torch.from_numpy(as_uint8(im).copy()).permute(2, 0, 1) for im in imgs]).float() / 255
        codes = dvae.codes_from_image(x.to(device))  # (B, h, w)
        recon = dvae.image_from_codes(codes).float().clamp(0, 1).cpu()  # (B, 3, H, W)
        psnrs.append(psnr(recon, x))
        codes_seen.append(codes.flatten().cpu())
    perplexity, used = code_usage(torch.cat(codes_seen) if codes_seen else torch.zeros(0, dtype=torch.long),
                                  dvae.cfg.n_codes)
    return {"psnr": float(torch.cat(psnrs).mean()) if psnrs else float("nan"), "perplexity": perplexity,
            "codes_used": used, "n": n}

