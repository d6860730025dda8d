"""How the word-region reranker pools its per-word scores, compared on candidate pools (bench/candidate_pool.py).

The shipped reranker scores an image against a prompt as the sentence cosine plus the mean, over the prompt's
real tokens, of each token's word-region cosine (models/clip.word_region_scores). A missing object leaves
one noun without a matching region, and a mean over every token ("an", "image", "of", ...) dilutes that. This
scores the same pools with other poolings of the same per-token cosines (no retraining): the minimum, a soft
minimum -log(mean(exp(-g c))) / g, the mean plus the minimum, and the sentence cosine or the mean alone. For
each: the accuracy of the candidate it ranks first among the first K (as bench/rerank_pool.py).

Usage: PYTHONPATH=src python bench/rerank_pooling.py --pool /tmp/pool4/pool-seed2 [--clip weights/clip.safetensors]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from candidate_pool import load_pool, pool_header  # the pool's reader (bench/ is the script's folder)
from t2i_cli.weights import load_model, load_tokenizer


@torch.inference_mode()
def parts(clip, tok, images: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sentence cosines (P, K) and, per prompt, the per-token word-region cosines (K, T_real)."""
    sentence, words = [], []
    for p, prompt in enumerate(prompts):
        ids = torch.tensor([tok.encode(prompt, clip.cfg.text_len).ids])
        x = clip.fit_side(images[p].float() / 255)
        img, regions = clip.image_encoder.features(x)
        txt, w, real = clip.text_encoder.features(ids)
        sentence.append((F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t())[:, 0])
        r, w = F.normalize(regions, dim=-1), F.normalize(w[0][real[0]], dim=-1)  # (K, R, D), (T, D)
        attn = torch.softmax(clip.cfg.attn_sharpness * torch.einsum("td,krd->ktr", w, r), dim=-1)
        context = torch.einsum("ktr,krd->ktd", attn, r)
        words.append(F.cosine_similarity(context, w[None], dim=-1))  # (K, T)
    return torch.stack(sentence), words


def pooled(words: list[torch.Tensor], how: str) -> torch.Tensor:
    out = []
    for c in words:
        if how == "mean":
            out.append(c.mean(1))
        elif how == "min":
            out.append(c.amin(1))
        elif how.startswith("softmin"):
            g = float(how[len("softmin"):])
            out.append(-(torch.logsumexp(-g * c, dim=1) - torch.log(torch.tensor(float(c.shape[1])))) / g)
        else:
            raise ValueError(how)
    return torch.stack(out)


def print_accuracy_table(label: str, settings: dict[str, torch.Tensor], passed: torch.Tensor, rows: list[dict],
                         ks: list[int]) -> None:
    """A markdown table: per task, how often the candidate each setting's scores (P, K) rank first among the
    first k passes the judge, for each k, then the oracle (any of the first k passes)."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    of_task = {t: [i for i, r in enumerate(rows) if r["task"] == t] for t in tasks}
    print(f"\n| {label} @ K | " + " | ".join(tasks) + " | mean |")
    print("|---|" + "---:|" * (len(tasks) + 1))
    for k in ks:
        for name, scores in [*settings.items(), ("oracle", None)]:
            got = (passed[:, :k].any(1) if scores is None
                   else passed[torch.arange(len(rows)), scores[:, :k].argmax(1)]).float()
            accs = {t: float(got[of_task[t]].mean()) for t in tasks}
            print(f"| {name} @ {k} | " + " | ".join(f"{100 * accs[t]:.0f}%" for t in tasks)
                  + f" | {100 * sum(accs.values()) / len(accs):.1f}% |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True, help="OUT/pool-seedS (without suffix)")
    ap.add_argument("--clip", type=Path, default=Path("weights/clip.safetensors"))
    ap.add_argument("--tokenizer", type=Path, default=Path("weights/tokenizer.json"))
    ap.add_argument("--ks", type=int, nargs="+", default=[4])
    args = ap.parse_args()
    t0 = time.time()
    tensors, meta = load_pool(args.pool)
    passed, rows = tensors["passed"], meta["rows"]
    clip, tok = load_model(args.clip, "clip"), load_tokenizer(args.tokenizer)
    if not clip.cfg.word_region:
        raise SystemExit(f"{args.clip} has no word-region head: there are no per-word scores to pool")
    sentence, words = parts(clip, tok, tensors["images"], [r["prompt"] for r in rows])
    settings = {"sentence + mean (shipped)": sentence + pooled(words, "mean"), "sentence": sentence,
                "mean": pooled(words, "mean"), "sentence + min": sentence + pooled(words, "min"),
                "sentence + mean + min": sentence + pooled(words, "mean") + pooled(words, "min")}
    for g in (5, 10, 20):
        settings[f"sentence + softmin{g}"] = sentence + pooled(words, f"softmin{g}")
    print(f"{pool_header(args.pool, meta)} clip {args.clip}")
    print_accuracy_table("pooling", settings, passed, rows, args.ks)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
