"""Batch-1 and batch-8 decode of the shipped transformer in each inference format, plain and with speculative
Jacobi decoding, against Hugging Face GPT-2 `generate()` of the same width and depth and the memory floor of
each format, all in one run (issue 14's targets). Prints markdown.

    .venv-bench/bin/python bench/decode_formats.py [--threads 1] [--reps 5] [--window 16]

Sampling as in bench/bench_decode.py (top_k 32, top_p 0.95, guidance 1: HF has no classifier-free guidance),
one prompt ("a red bird") of the shipped tokenizer. The shipped weights, not random ones: how often Jacobi's
drafts are kept depends on what the model learned. ms per code = seconds / (batch x 256 codes). The floor
of a format is the bytes its weights stream per forward pass (fp32 4, bf16 2, int8 1 per parameter of
the blocks and the image head) over the measured copy bandwidth, per code of plain decoding.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_decode as bd  # noqa: E402  (its HF GPT-2 runner, timing helpers and copy bandwidth)
from t2i_cli.pipeline import TextToImage  # noqa: E402
from t2i_cli.sampling import SamplingConfig, draw_codes  # noqa: E402

BYTES = {"fp32": 4, "bf16": 2, "int8": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--weights", default=str(Path(__file__).resolve().parents[1] / "weights"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), median of {args.reps}")
    bandwidth = bd.copy_bandwidth()
    rows, times = [], {}
    for fmt in ("fp32", "bf16", "int8"):
        pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision=fmt)
        model = pipe.bundle.transformer
        n_image = model.cfg.n_image
        streamed = sum(p.numel() for n, p in bd.build_model().named_parameters()
                       if n.startswith("blocks.") or n.startswith("image_head."))
        floor_ms = streamed * BYTES[fmt] / bandwidth * 1000
        empty = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
        for window in (0, args.window):
            cfg = SamplingConfig(top_k=bd.TOP_K, top_p=bd.TOP_P, guidance=1.0, jacobi=window)
            for b in (1, 8):
                ids = torch.tensor([pipe.request("a red bird").encoded.ids] * b)
                stats: dict = {}

                def run(ids=ids, cfg=cfg, stats=stats, model=model, empty=empty) -> None:
                    with torch.inference_mode():
                        draw_codes(model, ids, empty, cfg, torch.Generator().manual_seed(0), stats=stats)

                run()
                s = bd.med(bd.timed(run, args.reps))
                times[(fmt, window, b)] = s
                ms = s * 1000 / (b * n_image)
                rows.append((fmt, window, b, stats["passes"], s, ms, floor_ms / b))
                bd.note(f"{fmt} jacobi {window} batch {b}: {s:.2f} s")
    hf = bd.hf_gpt2((1, 8), args.reps)
    hf_s = {b: bd.med(hf[b]) for b in (1, 8)} if isinstance(hf, dict) else {}
    print(f"- copy bandwidth {bandwidth / 1e9:.1f} GB/s; HF: {hf if isinstance(hf, str) else 'transformers ' + hf[-1]}")
    print()
    print("| format | --jacobi | batch | passes | s per batch | ms per code | floor ms per code (plain) | "
          "x floor | vs HF GPT-2 generate() |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fmt, window, b, passes, s, ms, floor in rows:
        vs = f"{hf_s[b] / s:.2f}x" if hf_s else "-"
        print(f"| {fmt} | {window or 'off'} | {b} | {passes} | {s:.2f} | {ms:.2f} | {floor:.2f} | {ms / floor:.2f} | "
              f"{vs} |")
    if hf_s:
        for b in (1, 8):
            print(f"| HF GPT-2 fp32 | - | {b} | 256 | {hf_s[b]:.2f} | {hf_s[b] * 1000 / (b * 256):.2f} | | | 1.00x |")


if __name__ == "__main__":
    main()
