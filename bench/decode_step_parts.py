"""Where one decode step of the default `t2i generate "a red bird"` goes, part by part, against the bytes it
must read (issue 14). The shipped weights at `--precision bf16` (oneDNN-packed linear layers, the fp32 KV cache of
a CPU without AMX), 4 candidates with guidance (8 rows), plain decoding of 256 codes, seed 0.

    PYTHONPATH=src python bench/decode_step_parts.py [--threads 1 2] [--reps 5] [--weights weights]

1. Bandwidth: a 256 MB fp32 copy (2 x bytes / s) and a 256 MB fp32 sum (bytes / s), best of 7, per thread count;
   and the bytes a step must read: the bf16 linear weights of the blocks and the image head, and the KV cache
   (8 rows, fp32) at the average position. floor = bytes / the better of the two bandwidths.
2. The parts: an instrumented copy of decode_step and of draw_codes' loop (checked to draw the very codes
   draw_codes draws) with a perf_counter mark after each part; ms per step summed over the 255 cached steps of
   one image, median of --reps images (after one warm-up). Marks cost about 0.1 us each (about 15 us a step).
   --clock cpu marks this thread's CPU time instead of the wall (time.thread_time: with one thread every op runs
   in it; on a shared machine the wall counts the time other processes held the core; a mark costs about 1 us).
3. torch.profiler's ops over one image (self CPU time, top ops), for the counts of calls.

OpenMP's spinning is bounded as `t2i generate` bounds it on a quiet machine (GOMP_SPINCOUNT=10000) unless the
environment sets it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as cli.bound_spinning, before torch loads

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from t2i_cli.models.transformer import KVCache, linear, linear_gelu  # noqa: E402
from t2i_cli.pipeline import TextToImage  # noqa: E402
from t2i_cli.sampling import SamplingConfig, _guided, draw_codes, sample_next  # noqa: E402

PARTS = ("embed", "ln1", "qkv", "cache write", "attention", "proj + add", "ln2", "fc + gelu", "fc2 + add",
         "ln_f + head", "guidance", "sample", "codes write", "loop")


def best_of(fn, reps: int = 7) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bandwidth() -> tuple[float, float]:
    """(copy, read) bytes per second over 256 MB of fp32."""
    src = torch.ones(64 * 1024 * 1024)
    dst = torch.empty_like(src)
    dst.copy_(src)  # the pages faulted in
    copy = 2 * src.numel() * 4 / best_of(lambda: dst.copy_(src))
    read = src.numel() * 4 / best_of(lambda: src.sum())
    return copy, read


def step_bytes(pipe: TextToImage, rows: int) -> tuple[float, float]:
    """(linear weights, KV cache at the average position) bytes one cached step reads."""
    m = pipe.bundle.transformer
    c = m.cfg
    weights = 0
    for b in m.blocks:
        for lin in (b.attn.qkv, b.attn.proj, b.mlp[0], b.mlp[2]):
            weights += 2 * lin.in_features * lin.out_features + 2 * lin.out_features  # bf16 weight and bias
    weights += 2 * c.n_embd * c.image_vocab  # the image head
    avg = c.text_len + c.n_image / 2
    kv = 4 * 2 * c.n_layer * rows * avg * c.n_embd  # fp32 K and V of every layer and row
    return weights, kv


CLOCK = time.perf_counter  # or time.thread_time (--clock cpu)


def timed_step(m, code: torch.Tensor, cache: KVCache, acc: dict[str, float]) -> torch.Tensor:
    """Transformer.decode_step with a mark after each part (the same ops, in the same order)."""
    clock = CLOCK
    cfg, t = m.cfg, cache.length
    B, C, H = code.shape[0], cfg.n_embd, cfg.n_head
    j = t - cfg.text_len
    t0 = clock()
    x = m.image_emb.weight[code] + m.row_emb.weight[j // cfg.grid] + m.col_emb.weight[j % cfg.grid]
    t1 = clock()
    acc["embed"] += t1 - t0
    for i, blk in enumerate(m.blocks):
        ln1, ln2, attn, fc, proj = blk.ln1, blk.ln2, blk.attn, blk.mlp[0], blk.mlp[2]
        t0 = clock()
        a = F.layer_norm(x, (C,), ln1.weight, ln1.bias, ln1.eps)
        t1 = clock()
        qkv = linear(attn.qkv, a)
        t2 = clock()
        q, k, v = qkv.view(B, 3, H, C // H).unbind(1)
        cache.k[i, :, :, t] = k
        cache.v[i, :, :, t] = v
        t3 = clock()
        y = F.scaled_dot_product_attention(q.unsqueeze(2).to(cache.k.dtype), cache.k[i, :, :, :t + 1],
                                           cache.v[i, :, :, :t + 1])
        t4 = clock()
        x = x + linear(attn.proj, y.reshape(B, C).to(x.dtype))
        t5 = clock()
        a = F.layer_norm(x, (C,), ln2.weight, ln2.bias, ln2.eps)
        t6 = clock()
        h = linear_gelu(fc, a)
        t7 = clock()
        x = x + linear(proj, h)
        t8 = clock()
        for part, d in zip(PARTS[1:9], (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7),
                           strict=True):
            acc[part] += d
    cache.length = t + 1
    t0 = clock()
    out = linear(m.image_head, F.layer_norm(x, (C,), m.ln_f.weight, m.ln_f.bias, m.ln_f.eps))
    acc["ln_f + head"] += clock() - t0
    return out


@torch.inference_mode()
def timed_image(pipe: TextToImage, ids: torch.Tensor, uncond: torch.Tensor, B: int) -> tuple[torch.Tensor, dict]:
    """draw_codes' loop for plain guided decoding (no image prompt, no regions), marked part by part."""
    m, cfg = pipe.bundle.transformer, SamplingConfig()
    gen = torch.Generator().manual_seed(0)
    text = torch.cat([ids.expand(B, -1), uncond.expand(B, -1)])
    rows, N = text.shape[0], m.cfg.n_image
    cache = KVCache.for_model(m, rows, text.device)
    codes = torch.zeros(rows, N, dtype=torch.long)
    acc = dict.fromkeys(PARTS, 0.0)
    clock = CLOCK
    for i in range(N):
        t0 = clock()
        if i == 0:
            logits = m.image_logits(text, codes[:, :0], cache)  # the prefill: not counted
            t1 = t0 = clock()
        else:
            logits = timed_step(m, codes[:, i - 1], cache, acc)
            t1 = clock()
        logits = _guided(logits[:, None], B, cfg, cfg.guidance_at(i, N))[:, 0]
        t2 = clock()
        nxt = sample_next(logits, cfg, gen)
        t3 = clock()
        codes[:, i] = nxt.repeat(rows // B)
        t4 = clock()
        if i:
            acc["guidance"] += t2 - t1
            acc["sample"] += t3 - t2
            acc["codes write"] += t4 - t3
            acc["loop"] += t4 - t0
    acc["loop"] -= sum(v for k, v in acc.items() if k != "loop")  # what no mark covers
    return codes[:B], {k: 1000 * v / (N - 1) for k, v in acc.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    if args.clock == "cpu":
        if args.threads != [1]:
            raise SystemExit("--clock cpu measures the calling thread alone: give --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision="bf16")
    B = args.candidates
    ids = torch.tensor(pipe.request("a red bird").encoded.ids)
    uncond = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
    weights, kv = step_bytes(pipe, 2 * B)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, {B} candidates with guidance "
          f"({2 * B} rows), bf16 packed, {KVCache.for_model(pipe.bundle.transformer, 1, 'cpu').k.dtype} KV cache, "
          f"GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}, clock {args.clock}, load {os.getloadavg()[0]:.2f}")
    print(f"# bytes a step reads: linear weights {weights / 1e6:.1f} MB, KV cache at the average position "
          f"{kv / 1e6:.1f} MB")
    for threads in args.threads:
        torch.set_num_threads(threads)
        copy, read = bandwidth()
        floor = (weights + kv) / max(copy, read) * 1000
        reference = draw_codes(pipe.bundle.transformer, ids.expand(B, -1), uncond, SamplingConfig(),
                               torch.Generator().manual_seed(0))[0]
        timed_image(pipe, ids, uncond, B)  # warm-up
        runs = []
        for _ in range(args.reps):
            codes, parts = timed_image(pipe, ids, uncond, B)
            if not torch.equal(codes, reference):
                raise SystemExit("the instrumented loop drew other codes than draw_codes: it is not the same work")
            runs.append(parts)
        med = {p: statistics.median(r[p] for r in runs) for p in PARTS}
        total = statistics.median(sum(r.values()) for r in runs)
        print(f"\n## {threads} thread(s), load {os.getloadavg()[0]:.2f}: copy {copy / 1e9:.1f} GB/s, read "
              f"{read / 1e9:.1f} GB/s; floor {floor:.2f} ms a step (weights {weights / max(copy, read) * 1000:.2f} "
              f"+ KV {kv / max(copy, read) * 1000:.2f}); measured {total:.2f} ms a step "
              f"({total / floor:.2f}x the floor), same codes as draw_codes")
        print("| part | ms a step | share |")
        print("|---|---:|---:|")
        for p in PARTS:
            print(f"| {p} | {med[p]:.3f} | {100 * med[p] / total:.1f}% |")
    if not args.no_profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            timed_image(pipe, ids, uncond, B)
        print(f"\n## torch.profiler, one image, {torch.get_num_threads()} thread(s)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=16))


if __name__ == "__main__":
    main()
