"""Reranking by the transformer's own likelihood, compared on candidate pools (bench/candidate_pool.py).

The shipped reranker asks the CLIP. This asks the generator: for each candidate's image codes c, teacher-forced
(one forward pass over [text ; codes], no sampling), the mean log-probability per code under the prompt,
log p(c | prompt) / N, and under the empty prompt CFG uses, log p(c | "") / N. Their difference is the
pointwise mutual information of the codes and the prompt: how much more the prompt explains this image than
no prompt does. A candidate whose fish is a blob is likely without the word "fish"; one that drew the fish
is not. Candidates are ranked by:

- "pmi" alone, "loglik" (the conditional alone);
- "shipped + w x pmi z": the shipped score (pipeline.TextToImage.score: sentence + crop scores) plus w times
  the PMI standardised over the prompt's first K candidates (so w is in units of the candidates' spread),
  and the same for the shipped score standardised ("shipped z + w x pmi z"), for several w; and the shipped
  score standardised plus w times the conditional log-probability standardised ("shipped z + w x loglik z").

For each setting: the accuracy of the candidate it ranks first among the first K (as bench/rerank_pool.py),
beside the oracle. The shipped score is computed here with the shipped CLIP, as `t2i` computes it.

Usage: PYTHONPATH=src python bench/rerank_likelihood.py --pool /tmp/pool8r/pool-seed1 [--ks 4 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidate_pool import load_pool, pool_header  # noqa: E402  (the pool's reader)
from rerank_pooling import print_accuracy_table  # noqa: E402  (the shared accuracy table)
from t2i_cli.pipeline import TextToImage


@torch.inference_mode()
def code_logprobs(model, text: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Mean log-probability per code (B,) of codes (B, N) after text (B, T), teacher-forced in one pass."""
    logits, _ = model(text, codes)
    return -F.cross_entropy(logits.float().transpose(1, 2), codes.long(), reduction="none").mean(1)


def zscore(x: torch.Tensor) -> torch.Tensor:
    """Standardised along the last dimension (0 where all are equal)."""
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp(min=1e-6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True, help="OUT/pool-seedS (without suffix)")
    ap.add_argument("--weights", default="weights", help="the weights folder the pool was drawn with")
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--ws", type=float, nargs="+", default=[0.25, 0.5, 1, 2])
    ap.add_argument("--scores", type=Path, help="keep the per-candidate scores in this .safetensors file, and "
                    "read them from it when it exists (a second look costs no forward passes)")
    args = ap.parse_args()
    t0 = time.time()
    tensors, meta = load_pool(args.pool)
    passed, rows, codes = tensors["passed"], meta["rows"], tensors["codes"]
    P, K = passed.shape
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision="fp32")
    model, tok = pipe.bundle.transformer, pipe.bundle.tokenizer
    text_len = model.cfg.text_len
    empty = torch.tensor([tok.empty(text_len)] * K)
    if args.scores and args.scores.is_file():
        kept = load_file(str(args.scores))
        cond, unc, shipped = kept["cond"], kept["unc"], kept["shipped"]
    else:
        cond, unc, shipped = torch.empty(P, K), torch.empty(P, K), torch.empty(P, K)
        for p, row in enumerate(rows):
            text = torch.tensor([tok.encode(row["prompt"], text_len).ids] * K)
            c = codes[p].long()
            cond[p], unc[p] = code_logprobs(model, text, c), code_logprobs(model, empty, c)
            shipped[p] = pipe.score(tensors["images"][p].float() / 255, row["prompt"])
        if args.scores:
            save_file({"cond": cond, "unc": unc, "shipped": shipped}, str(args.scores))
    pmi = cond - unc
    print(f"{pool_header(args.pool, meta)}, transformer teacher-forced in fp32 ({time.time() - t0:.0f} s)")
    for k in args.ks:
        settings = {"first candidate": torch.zeros_like(shipped), "shipped": shipped[:, :k],
                    "pmi": pmi[:, :k], "loglik": cond[:, :k]}
        pz, sz = zscore(pmi[:, :k]), zscore(shipped[:, :k])
        for w in args.ws:
            settings[f"shipped + {w:g} x pmi z"] = shipped[:, :k] + w * pz
        for w in args.ws:
            settings[f"shipped z + {w:g} x pmi z"] = sz + w * pz
        lz = zscore(cond[:, :k])
        for w in args.ws:
            settings[f"shipped z + {w:g} x loglik z"] = sz + w * lz
        print_accuracy_table(f"reranker (K = {k})", settings, passed, rows, [k])
    ok = passed.bool()
    print(f"\nmean PMI (nats per code) of candidates the judge passes {float(pmi[ok].mean()):.4f}, "
          f"fails {float(pmi[~ok].mean()):.4f}; mean conditional log-probability passes "
          f"{float(cond[ok].mean()):.4f}, fails {float(cond[~ok].mean()):.4f}")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
