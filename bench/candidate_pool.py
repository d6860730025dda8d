"""Draw and keep the candidates `t2i eval --candidates K` would draw, so rerankers can be compared offline.

For every task of `t2i eval` and every prompt, the K candidates are drawn exactly as evaluate_model draws them
(`pipe(prompt, n=K, seed=image_seed(seed, task, i))`, default sampling unless given), and the judge's verdict on
each is kept. A reranker's accuracy at K' <= K candidates is then "did the judge pass the candidate it scored
highest among the first K'"; at K' = K it equals what `t2i eval --candidates K` reports with that reranker.
(The first K' of K are not the images `--candidates K'` draws, whose batch is smaller: same distribution,
other draws.)

Writes OUT/pool-seed{S}.safetensors (images uint8 (P, K, 3, H, W), passed (P, K), the image codes int32 (P, K, N))
and OUT/pool-seed{S}.json
(tasks, prompts, specs), read by bench/rerank_pool.py.

Usage: PYTHONPATH=src python bench/candidate_pool.py --out /tmp/pool [--weights weights] [--n 50] [--k 8] [--seed 0]
       [--precision fp32|auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from t2i_cli.pipeline import TextToImage
from t2i_cli.world.judge import load_judge
from t2i_cli.world.tasks import TASK_CHECKS, TASKS, image_seed, task_prompts


def load_pool(stem: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the JSON of a pool this script wrote (stem: OUT/pool-seedS, without suffix)."""
    return load_file(str(stem) + ".safetensors"), json.loads(Path(str(stem) + ".json").read_text())


def pool_header(stem: Path, meta: dict) -> str:
    """The first line the pool readers print: machine, date and what the pool holds."""
    return (f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} pool {stem.name} (weights {meta['weights']}, "
            f"seed {meta['seed']}, {len(meta['rows'])} prompts x {meta['k']} candidates)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--precision", default="fp32", help="the transformer's: fp32 (the pools before 2026-12-05), "
                    "or auto/bf16/int8 (auto: what `t2i eval` draws with by default)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision=args.precision)
    judge = load_judge(Path(args.weights) / "judge.safetensors")
    images, passed, codes, rows = [], [], [], []
    for task in args.tasks:
        for i, (prompt, spec) in enumerate(task_prompts(task, args.n, args.seed)):
            gens = pipe(prompt, n=args.k, seed=image_seed(args.seed, task, i))
            images.append(torch.stack([(g.image.clamp(0, 1) * 255).round().to(torch.uint8) for g in gens]))
            passed.append(torch.tensor([judge.passes(task, g.image, spec) for g in gens]))
            codes.append(torch.stack([g.codes.to(torch.int32) for g in gens]))
            rows.append({"task": task, "i": i, "prompt": prompt, "spec": spec.to_dict()})
        done = [p for p, r in zip(passed, rows, strict=True) if r["task"] == task]
        print(f"{task}: first {sum(bool(p[0]) for p in done)}/{len(done)}, any "
              f"{sum(bool(p.any()) for p in done)}/{len(done)} ({time.time() - t0:.0f} s)", flush=True)
    stem = args.out / f"pool-seed{args.seed}"
    save_file({"images": torch.stack(images).contiguous(), "passed": torch.stack(passed).contiguous(),
               "codes": torch.stack(codes).contiguous()},
              str(stem) + ".safetensors")
    meta = {"weights": pipe.bundle.identity, "seed": args.seed, "k": args.k, "n": args.n, "rows": rows,
            "precision": args.precision,
            "checks": {t: list(TASK_CHECKS[t]) for t in args.tasks}, "machine": platform.node(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": time.time() - t0}
    Path(str(stem) + ".json").write_text(json.dumps(meta))
    print(f"wrote {stem}.safetensors ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
