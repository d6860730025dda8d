"""Each small part of a decode step that t2i 0.18.0 (a11df6c) did one way and now does another, timed apart: the
old and the new form of that part alone, on the shipped model's bf16 tensors and the default `generate`'s shapes
(4 candidates with guidance: 8 rows, the fp32 KV cache of a CPU without AMX, a step at the middle of the grid).
A whole image varies by 5-10% from round to round on a shared machine, more than any one part; a part alone, run
--reps times in a row, is timed to a microsecond. Arms alternate; median of --rounds, process CPU time.

    PYTHONPATH=src python bench/decode_small_parts_micro.py [--reps 2000] [--rounds 7] [--weights weights]

parts: "temperature": guided logits (4, V) / 1.0 (then softmax) against softmax alone; "codes write":
codes[:, i] = nxt.repeat(2) against a view's [:, :, i] = nxt; "embedding": weight[code] against
weight.index_select(0, code); "layers": what decode_step read of its 8 blocks besides the math (the modules
and parameters by nn.Module lookups, the cache's slices by 4-D indexing) against a tuple per block read once
and each layer's cache taken once. Each checks both forms give the same tensors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as cli.bound_spinning, before torch loads

import torch  # noqa: E402

from t2i_cli.models.transformer import KVCache  # noqa: E402
from t2i_cli.pipeline import TextToImage  # noqa: E402
from t2i_cli.sampling import SamplingConfig, sample_next  # noqa: E402


def old_layers(m, cache, k, v, t):
    out = []
    for i, blk in enumerate(m.blocks):
        ln1, ln2, attn, fc, proj = blk.ln1, blk.ln2, blk.attn, blk.mlp[0], blk.mlp[2]
        out.append((ln1.weight, ln1.bias, ln1.eps, attn.qkv, attn.proj, ln2.weight, ln2.bias, ln2.eps, fc, proj))
        cache.k[i, :, :, t] = k
        cache.v[i, :, :, t] = v
        out.append((cache.k[i, :, :, :t + 1], cache.v[i, :, :, :t + 1]))
    return out


def new_layers(layers, cache, k, v, t):
    out = []
    for i, (w1, b1, e1, qkv_m, proj_m, w2, b2, e2, fc, fc2) in enumerate(layers):
        out.append((w1, b1, e1, qkv_m, proj_m, w2, b2, e2, fc, fc2))
        ck, cv = cache.k[i], cache.v[i]
        ck[:, :, t] = k
        cv[:, :, t] = v
        out.append((ck[:, :, :t + 1], cv[:, :, :t + 1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    m = TextToImage.from_folder(Path(args.weights), "cpu", precision="bf16").bundle.transformer
    cfg, rows, B = m.cfg, 8, 4
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, cfg.image_vocab, generator=g)
    codes = torch.zeros(rows, cfg.n_image, dtype=torch.long)
    per_image = codes.view(rows // B, B, cfg.n_image)
    nxt = torch.randint(0, cfg.image_vocab, (B,), generator=g)
    code = nxt.repeat(2)
    w = m.image_emb.weight
    cache = KVCache.for_model(m, rows, torch.device("cpu"))
    t = cfg.text_len + cfg.n_image // 2
    H, D = cfg.n_head, cfg.n_embd // cfg.n_head
    k, v = torch.randn(rows, H, D, generator=g), torch.randn(rows, H, D, generator=g)
    i = cfg.n_image // 2
    parts = {
        "temperature": (lambda: torch.softmax(logits.float() / 1.0, dim=-1), lambda: torch.softmax(logits.float(), -1)),
        "codes write": (lambda: codes.__setitem__((slice(None), i), nxt.repeat(rows // B)),
                        lambda: per_image.__setitem__((slice(None), slice(None), i), nxt)),
        "embedding": (lambda: w[code], lambda: w.index_select(0, code)),
        "layers": (lambda: old_layers(m, cache, k, v, t), lambda: new_layers(m.decode_layers(), cache, k, v, t)),
    }
    # the same tensors from both forms
    same = torch.equal(parts["temperature"][0](), parts["temperature"][1]())
    same &= torch.equal(parts["embedding"][0](), parts["embedding"][1]())
    parts["codes write"][0]()
    a = codes.clone()
    codes.zero_()
    parts["codes write"][1]()
    same &= torch.equal(a, codes)
    layers = m.decode_layers()
    parts["layers"] = (parts["layers"][0], lambda: new_layers(layers, cache, k, v, t))  # read once per draw
    for x, y in zip(parts["layers"][0](), parts["layers"][1](), strict=True):
        same &= all(p is q or (torch.equal(p, q) if isinstance(p, torch.Tensor) else p == q)
                    for p, q in zip(x, y, strict=True))
    if not same:
        raise SystemExit("the old and new forms of a part gave other tensors")
    # Two more, not in src (asked whether they would pay): draw_codes calling the step through image_logits
    # (its checks, codes[:, :i], image[:, -1]) against calling decode_step itself, here a stub that returns at
    # once; and sample_next (distribution: temperature, top-k and top-p checks) against softmax and multinomial.
    text = torch.zeros(rows, cfg.text_len, dtype=torch.long)
    out = torch.zeros(rows, cfg.image_vocab)
    stub = type(m)(cfg)  # a small fp32 model (the stub replaces its step; its weights are not read)
    stub.decode_step = lambda code, c: out
    cache.length = t
    gen = torch.Generator().manual_seed(0)
    sc = SamplingConfig()
    extra = {
        "step call": (lambda: stub.image_logits(text, codes[:, :i], cache),
                      lambda: stub.decode_step(codes[:, i - 1], cache)),
        "sampler call": (lambda: sample_next(logits, sc, gen),
                         lambda: torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=gen).squeeze(-1)),
    }
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, 1 thread, {args.reps} calls a round, "
          f"{args.rounds} alternating rounds, process CPU, load {os.getloadavg()[0]:.2f}")
    print("| part | old us a step | new us a step | saved us a step | saved ms an image (255 steps) |")
    print("|---|---:|---:|---:|---:|")
    total = 0.0
    for name, (old, new) in parts.items():
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(args.rounds):
            for arm, fn in enumerate((old, new)):
                s = time.process_time()
                for _ in range(args.reps):
                    fn()
                times[arm].append((time.process_time() - s) / args.reps * 1e6)
        o, n = statistics.median(times[0]), statistics.median(times[1])
        total += o - n
        print(f"| {name} | {o:.1f} | {n:.1f} | {o - n:.1f} | {(o - n) * 255 / 1e3:.1f} |")
    print(f"| all four | | | {total:.1f} | {total * 255 / 1e3:.1f} |")
    for name, (old, new) in extra.items():
        times = ([], [])
        for _ in range(args.rounds):
            for arm, fn in enumerate((old, new)):
                s = time.process_time()
                for _ in range(args.reps):
                    fn()
                times[arm].append((time.process_time() - s) / args.reps * 1e6)
        o, n = statistics.median(times[0]), statistics.median(times[1])
        print(f"| (not in src) {name} | {o:.1f} | {n:.1f} | {o - n:.1f} | {(o - n) * 255 / 1e3:.1f} |")
    print(f"# load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
