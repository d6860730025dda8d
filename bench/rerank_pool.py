"""Compare rerankers on a candidate pool (bench/candidate_pool.py) and on world hard negatives.

For each CLIP file given: (1) `t2i eval` accuracy per task when the reranker keeps its favourite of the first
K candidates (K = 1 is the first candidate, unranked), beside the oracle (any of the first K passes);
(2) its retrieval accuracy on hard negatives: for N world val scenes of each kind of twin (the first val
scenes whose twin is of that kind), how often the scene's image scores higher than its twin's image
(world.negatives) for the scene's caption.

With --generator WEIGHTS (a pool that kept its codes), also the generator's own scores of each candidate's codes,
teacher-forced: "lik" = log p(codes | prompt), "pmi" = log p(codes | prompt) - log p(codes | empty prompt) (the
pointwise mutual information of image and prompt under the transformer, in nats; the implicit classifier that
classifier-free guidance steers by), and the first CLIP plus w * pmi / N for each --pmi-weights w (N codes).

Usage: PYTHONPATH=src python bench/rerank_pool.py --pool /tmp/pool/pool-seed0 --clip weights/clip.safetensors \
           RUN/clip.safetensors [--names shipped new] [--ks 1 2 4 8] [--hard 500] [--generator weights]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from candidate_pool import load_pool, pool_header  # the pool's reader (bench/ is the script's folder)
from t2i_cli.stages import hard_negative_accuracy
from t2i_cli.weights import load_model, load_tokenizer
from t2i_cli.world.negatives import NEGATIVE_KINDS, twin_caption


@torch.inference_mode()
def pool_scores(clip, tok, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Scores (P, K) of every candidate against its prompt."""
    out = []
    for p in range(len(prompts)):
        ids = torch.tensor([tok.encode(prompts[p], clip.cfg.text_len).ids])
        out.append(clip.score(images[p].float() / 255, ids))
    return torch.stack(out)


@torch.inference_mode()
def generator_scores(folder: Path, codes: torch.Tensor, prompts: list[str], identity: str,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(codes | prompt), log p(codes | empty prompt)), each (P, K) in nats, under the folder's transformer."""
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig

    pipe = TextToImage.from_folder(folder, "cpu")
    if pipe.bundle.identity != identity:
        raise SystemExit(f"--generator {folder} is weights {pipe.bundle.identity}; the pool was drawn by {identity}")
    model = pipe.bundle.transformer
    empty = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
    cond, uncond = [], []
    for p, prompt in enumerate(prompts):
        c = codes[p].long()  # (K, N)
        ids = torch.tensor(pipe.request(prompt, SamplingConfig()).encoded.ids)
        for text, out in ((ids, cond), (empty, uncond)):
            logits, _ = model(text.expand(len(c), -1), c)
            out.append(torch.log_softmax(logits.float(), -1).gather(-1, c[..., None])[..., 0].sum(1))
    return torch.stack(cond), torch.stack(uncond)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True, help="OUT/pool-seedS (without suffix)")
    ap.add_argument("--clip", type=Path, nargs="+", required=True)
    ap.add_argument("--names", nargs="+")
    ap.add_argument("--tokenizer", type=Path, default=Path("weights/tokenizer.json"))
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--hard", type=int, default=200, help="val scenes per kind of twin (retrieval accuracy)")
    ap.add_argument("--generator", type=Path, help="weights folder whose transformer scores the pool's codes")
    ap.add_argument("--pmi-weights", type=float, nargs="+", default=[0.5, 1, 2, 4])
    args = ap.parse_args()
    names = args.names or [p.parent.name for p in args.clip]
    t0 = time.time()
    tensors, meta = load_pool(args.pool)
    images, passed = tensors["images"], tensors["passed"]
    rows, tok = meta["rows"], load_tokenizer(args.tokenizer)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    print(pool_header(args.pool, meta))
    table: dict[str, dict[str, float]] = {}
    for k in args.ks:
        table[f"oracle@{k}"] = {t: float(passed[[i for i, r in enumerate(rows) if r["task"] == t], :k].any(1)
                                         .float().mean()) for t in tasks}
    hard, by_kind = {}, {}
    i = 0
    while args.hard and (len(by_kind) < len(NEGATIVE_KINDS) or min(map(len, by_kind.values())) < args.hard):
        kind = twin_caption("val", i)[2]
        if len(by_kind.setdefault(kind, [])) < args.hard:
            by_kind[kind].append(i)
        i += 1
    hard_indices = sorted(j for v in by_kind.values() for j in v)
    def record(name: str, scores: torch.Tensor) -> None:
        for k in args.ks:
            best = scores[:, :k].argmax(1)
            got = passed[torch.arange(len(rows)), best].float()
            table[f"{name}@{k}"] = {t: float(got[[i for i, r in enumerate(rows) if r["task"] == t]].mean())
                                    for t in tasks}

    first_clip = None
    for name, path in zip(names, args.clip, strict=True):
        clip = load_model(path, "clip")
        scores = pool_scores(clip, tok, images, [r["prompt"] for r in rows])
        first_clip = scores if first_clip is None else first_clip
        record(name, scores)
        if args.hard:
            hard[name] = hard_negative_accuracy(clip, tok, clip.cfg.text_len, clip.cfg.image_side, hard_indices,
                                                "cpu")
    if args.generator:
        if "codes" not in tensors:
            raise SystemExit(f"{args.pool}: this pool has no codes (made before candidate_pool.py kept them)")
        cond, uncond = generator_scores(args.generator, tensors["codes"], [r["prompt"] for r in rows], meta["weights"])
        pmi = cond - uncond
        record("lik", cond)
        record("pmi", pmi)
        for w in args.pmi_weights:
            record(f"{names[0]}+{w:g}pmi", first_clip + w * pmi / tensors["codes"].shape[-1])
    print("\n| reranker @ K | " + " | ".join(tasks) + " | overall |")
    print("|---|" + "---:|" * (len(tasks) + 1))
    for key, accs in sorted(table.items(), key=lambda kv: (int(kv[0].split("@")[1]), kv[0])):
        print(f"| {key} | " + " | ".join(f"{100 * accs[t]:.0f}%" for t in tasks)
              + f" | {100 * sum(accs.values()) / len(accs):.1f}% |")
    if hard:
        kinds = sorted({k for h in hard.values() for k in h["kinds"]})
        print(f"\nHard-negative retrieval, {args.hard} world val scenes per kind of twin (the scene's image scores "
              f"above its twin's for the scene's caption):\n")
        print("| reranker | " + " | ".join(kinds) + " | all |")
        print("|---|" + "---:|" * (len(kinds) + 1))
        for name, h in hard.items():
            print(f"| {name} | " + " | ".join(f"{100 * h['kinds'][k]['accuracy']:.1f}% (n={h['kinds'][k]['n']})"
                                              for k in kinds) + f" | {100 * h['accuracy']:.1f}% |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
