"""The small parts of a decode step (bench/decode_step_parts.py: nothing but the attention and the linear layers is
above 2.5% of it) made as cheap as they go without changing a byte, against draw_codes as shipped: does it pay?
The default `generate "a red bird"` decode (4 candidates with guidance, 8 rows, bf16 packed), one process, arms
alternating, median of --rounds, in process CPU seconds (time.process_time) at --threads (default 1).

    PYTHONPATH=src python bench/decode_small_parts_ab.py [--rounds 7] [--threads 1]

The "small parts" arm is draw_codes' loop for plain guided decoding with: the code's embedding row by index_select
(aten::index: 26 us a step), the drawn code written to every row of its image through a view (no repeat: 47 us),
no division of the logits by a temperature of 1, and decode_step's per-layer modules read once per image instead of
through nn.Module attribute lookups every step. The script checks both arms draw the same codes.
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
from t2i_cli.sampling import SamplingConfig, _guided, draw_codes  # noqa: E402


def step(m, plan, code: torch.Tensor, cache: KVCache) -> torch.Tensor:
    cfg, t = m.cfg, cache.length
    B, C, H = code.shape[0], cfg.n_embd, cfg.n_head
    j = t - cfg.text_len
    x = m.image_emb.weight.index_select(0, code) + m.row_emb.weight[j // cfg.grid] + m.col_emb.weight[j % cfg.grid]
    kd = cache.k.dtype
    for i, (w1, b1, e1, qkvm, projm, w2, b2, e2, fc, pr) in enumerate(plan):
        qkv = linear(qkvm, F.layer_norm(x, (C,), w1, b1, e1))
        q, k, v = qkv.view(B, 3, H, C // H).unbind(1)
        ck, cv = cache.k[i], cache.v[i]
        ck[:, :, t] = k
        cv[:, :, t] = v
        y = F.scaled_dot_product_attention(q.unsqueeze(2).to(kd), ck[:, :, :t + 1], cv[:, :, :t + 1])
        x = x + linear(projm, y.reshape(B, C).to(x.dtype))
        x = x + linear(pr, linear_gelu(fc, F.layer_norm(x, (C,), w2, b2, e2)))
    cache.length = t + 1
    return linear(m.image_head, F.layer_norm(x, (C,), m.ln_f.weight, m.ln_f.bias, m.ln_f.eps))


@torch.inference_mode()
def small_parts(m, ids: torch.Tensor, uncond: torch.Tensor, B: int) -> torch.Tensor:
    cfg = SamplingConfig()
    gen = torch.Generator().manual_seed(0)
    text = torch.cat([ids.expand(B, -1), uncond.expand(B, -1)])
    rows, N = text.shape[0], m.cfg.n_image
    plan = [(b.ln1.weight, b.ln1.bias, b.ln1.eps, b.attn.qkv, b.attn.proj, b.ln2.weight, b.ln2.bias, b.ln2.eps,
             b.mlp[0], b.mlp[2]) for b in m.blocks]
    cache = KVCache.for_model(m, rows, text.device)
    codes = torch.zeros(rows, N, dtype=torch.long)
    per_image = codes.view(rows // B, B, N)
    for i in range(N):
        logits = m.image_logits(text, codes[:, :0], cache) if i == 0 else step(m, plan, codes[:, i - 1], cache)
        logits = _guided(logits[:, None], B, cfg, cfg.guidance_at(i, N))[:, 0]
        probs = torch.softmax(logits.float(), dim=-1)  # temperature 1, no top-k, no top-p: distribution()
        per_image[:, :, i] = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
    return codes[:B]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision="bf16")
    m, B = pipe.bundle.transformer, 4
    ids = torch.tensor(pipe.request("a red bird").encoded.ids)
    uncond = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
    arms = {"draw_codes as shipped": lambda: draw_codes(m, ids.expand(B, -1), uncond, SamplingConfig(),
                                                         torch.Generator().manual_seed(0))[0],
            "small parts": lambda: small_parts(m, ids, uncond, B)}
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, {args.threads} thread(s), "
          f"{args.rounds} alternating rounds after a warm-up, process CPU s, load {os.getloadavg()[0]:.2f}")
    codes = {name: fn() for name, fn in arms.items()}  # warm-up
    if not torch.equal(*codes.values()):
        raise SystemExit("the arms drew other codes")
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, fn in arms.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    a, b = (statistics.median(v) for v in times.values())
    print(f"# load at end {os.getloadavg()[0]:.2f}; same codes in both arms")
    print("| arm | CPU s per image (median) | all rounds |")
    print("|---|---:|---|")
    for name, v in times.items():
        print(f"| {name} | {statistics.median(v):.3f} | {' '.join(f'{x:.2f}' for x in v)} |")
    print(f"| shipped / small parts | {a / b:.3f}x | |")


if __name__ == "__main__":
    main()
