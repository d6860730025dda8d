"""Continue a trained transformer on the CPU with more two-object scenes (issue 15).

The shipped transformer saw 716,800 `world:train` scenes, 30% of them two objects in a relation; at one
draw it draws both objects of a two-object prompt about a third of the time. This continues it from the
weights folder's own transformer (fp16 file -> fp32), on scenes it never saw (world:train indices from
20,000,000 on), with a share SHARE of each batch drawn only from two-object scenes and the rest from the
ordinary mix (so 0.4 gives 58% two-object scenes, 33% single objects, 9% counts). Everything else is the
transformer stage's: AdamW (0.9, 0.95) with its weight decay, gradient clipping at 1, 10% of captions
replaced by the empty prompt (for classifier-free guidance), the weights folder's tokenizer and dVAE
(whose encoder made the original codes: the decoder fine-tune kept it). lr: linear warm-up over 20
steps to LR, then cosine to LR / 10 (train.lr_at's schedule, except that its decay runs one step behind
this one's; kept so that this reproduces the recorded run). Checkpoints every 50 steps and at the end, fp16
(as `t2i export --half`), to OUT/transformer-STEP.safetensors; put one into a copy of the weights folder to
evaluate it.

Usage: PYTHONPATH=src python bench/finetune_transformer.py --out /tmp/ft/a [--weights weights] [--steps 260]
           [--lr 1e-4] [--share 0.4] [--batch 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import torch

from t2i_cli.images import tensor_from_image
from t2i_cli.stages import encode_captions
from t2i_cli.train import TrainConfig, make_optimizer
from t2i_cli.weights import load_model, load_tokenizer, save_model
from t2i_cli.world.splits import scene, scene_caption

WARMUP = 20
STREAMS = (20_000_000, 40_000_000)  # unseen world:train indices: the ordinary mix; two-object scenes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--steps", type=int, default=260)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--share", type=float, default=0.4, help="share of each batch drawn from two-object scenes only")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    weights, out = Path(args.weights), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(weights / "tokenizer.json")
    dvae = load_model(weights / "dvae.safetensors", "dvae").eval()
    model = load_model(weights / "transformer.safetensors", "transformer").float().train()
    text_len = model.cfg.text_len
    empty = torch.tensor(tok.empty(text_len))
    cfg = TrainConfig(stage="transformer", data="world:train", lr=args.lr)  # its weight decay, cond_drop, grad_clip
    opt = make_optimizer(model, cfg)
    torch.manual_seed(0)
    rng = random.Random(0)
    nxt = list(STREAMS)

    def draw() -> int:
        if rng.random() < args.share:
            while True:
                i = nxt[1]
                nxt[1] += 1
                if len(scene_caption("train", i)[1].objects) == 2:
                    return i
        nxt[0] += 1
        return nxt[0] - 1

    t0 = time.time()
    for step in range(1, args.steps + 1):
        if step <= WARMUP:
            lr = args.lr * step / WARMUP
        else:
            lr = args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * (step - WARMUP) / (args.steps - WARMUP))))
        for group in opt.param_groups:
            group["lr"] = lr
        images, captions = [], []
        for _ in range(args.batch):
            image, caption, _ = scene("train", draw(), dvae.cfg.image_side)
            images.append(tensor_from_image(image))
            captions.append(caption)
        with torch.no_grad():
            codes = dvae.codes_from_image(torch.stack(images)).flatten(1)
        text = encode_captions(tok, captions, text_len)
        text[torch.rand(args.batch) < cfg.cond_drop] = empty
        _, loss = model(text, codes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        print(f"step {step} lr {lr:.2e} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        if step % 50 == 0 or step == args.steps:
            save_model(model, out / f"transformer-{step:04d}.safetensors", "transformer", half=True, step=step)


if __name__ == "__main__":
    main()
