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

--counts C changes the mix: a share C of each batch is drawn from count scenes only, SHARE from two-object
scenes only, and the rest from single-object scenes only (so the two-object share comes from single
objects, and counts keep C; the ordinary mix has 15%). --init starts from another transformer file (a
checkpoint of an earlier run) instead of the weights folder's; --first-index moves the unseen index streams
so that a second run does not reuse the scenes of the first.

Usage: PYTHONPATH=src python bench/finetune_transformer.py --out /tmp/ft/a [--weights weights] [--steps 260]
           [--lr 1e-4] [--share 0.4] [--counts C] [--init FILE] [--first-index 20000000] [--batch 32] [--threads 2]
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
STREAM_GAP = 20_000_000  # unseen world:train indices from --first-index: the ordinary mix (or single objects),
# two-object scenes, count scenes, each stream STREAM_GAP apart


def kind_of(spec) -> int:
    """The stream a scene belongs to: 0 single object, 1 two objects, 2 a count."""
    return 1 if len(spec.objects) == 2 else 2 if spec.count > 1 else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--steps", type=int, default=260)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--share", type=float, default=0.4, help="share of each batch drawn from two-object scenes only")
    ap.add_argument("--counts", type=float, default=None,
                    help="share drawn from count scenes only; the rest then from single objects only")
    ap.add_argument("--init", default=None, help="transformer file to start from (default: the weights folder's)")
    ap.add_argument("--first-index", type=int, default=20_000_000, help="first unseen world:train index")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not 0 <= args.share + (args.counts or 0) <= 1:
        ap.error("--share plus --counts must lie in [0, 1]")
    torch.set_num_threads(args.threads)
    weights, out = Path(args.weights), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(weights / "tokenizer.json")
    dvae = load_model(weights / "dvae.safetensors", "dvae").eval()
    start = Path(args.init) if args.init else weights / "transformer.safetensors"
    model = load_model(start, "transformer").float().train()
    text_len = model.cfg.text_len
    empty = torch.tensor(tok.empty(text_len))
    cfg = TrainConfig(stage="transformer", data="world:train", lr=args.lr)  # its weight decay, cond_drop, grad_clip
    opt = make_optimizer(model, cfg)
    torch.manual_seed(0)
    rng = random.Random(0)
    nxt = [args.first_index + k * STREAM_GAP for k in range(3)]

    def take(kind: int) -> int:
        while True:
            i = nxt[kind]
            nxt[kind] += 1
            if kind_of(scene_caption("train", i)[1]) == kind:
                return i

    def draw() -> int:
        u = rng.random()
        if u < args.share:
            return take(1)
        if args.counts is not None:
            return take(2) if u < args.share + args.counts else take(0)
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
