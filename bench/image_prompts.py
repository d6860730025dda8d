"""Image prompts on the shipped weights: kept-region PSNR, clash (fit of the kept codes after an inpainted
region) with and without --redraws, the variation strength curve, and docs/image-prompts.png.

Sources are world scenes that t2i renders (the shipped model knows only the world). For each source and
seed: inpainting of a centre box (8 x 8 of the 16 x 16 cells) with --redraws 1 and 4; variations at
several strengths. Numbers are means over sources x seeds x --n images.

Usage: PYTHONPATH=src python bench/image_prompts.py [--weights weights] [--n 4] [--seeds 0 1]
                                                    [--sheet docs/image-prompts.png]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from t2i_cli import images, world
from t2i_cli.image_prompt import ImagePrompt, build, keep_top_cells
from t2i_cli.models.dvae import psnr
from t2i_cli.pipeline import TextToImage
from t2i_cli.world import ObjectSpec as O
from t2i_cli.world import SceneSpec as S

SOURCES = [
    S((O("bird", "red", "big"),), background="sky"),
    S((O("cat", "black", "medium"), O("tree", "green", "medium")), relation="left of"),
    S((O("fish", "orange", "medium"),), count=3, background="blue"),
    S((O("house", "white", "big"),), background="grass"),
]
STRENGTHS = (0.1, 0.25, 0.5, 0.75, 1.0)
BITS = 1 / 0.6931471805599453  # nats -> bits


def centre_box_mask(side: int, path: Path) -> Path:
    """A mask marking the centre half of the picture (an 8 x 8 block of a 16 x 16 grid at 128 px)."""
    m = Image.new("L", (side, side), 0)
    m.paste(255, (side // 4, side // 4, 3 * side // 4, 3 * side // 4))
    m.save(path)
    return path


def pixel_keep(keep: torch.Tensor, grid: int, side: int) -> torch.Tensor:
    """(N,) kept cells -> (side, side) kept pixels."""
    cell = side // grid
    return keep.view(grid, grid).repeat_interleave(cell, 0).repeat_interleave(cell, 1)


def masked_psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    """PSNR (dB) of images (3, H, W) over the pixels where `where` (H, W) is True."""
    mse = ((a - b) ** 2).mean(dim=0)[where].mean().clamp(min=1e-10)
    return float(10 * torch.log10(1 / mse))


def source_fit(pipe: TextToImage, prompt: str, codes: torch.Tensor, keep: torch.Tensor) -> float:
    """Mean log-probability (nats) of the kept codes after the box when the box holds the source's own codes:
    the fit of an inpainting that changed nothing (teacher forcing, the same guidance as sampling)."""
    m = pipe.bundle.transformer
    text = torch.tensor([pipe.request(prompt).encoded.ids, pipe.bundle.tokenizer.empty(pipe.text_len)])
    with torch.inference_mode():
        logits, _ = m(text, codes.view(1, -1).expand(2, -1))
    guided = logits[1] + 3.0 * (logits[0] - logits[1])
    logp = torch.log_softmax(guided.float(), dim=-1).gather(1, codes.view(-1, 1)).squeeze(1)
    after = ((~keep).int().cumsum(0) > 0) & keep
    return float(logp[after].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--n", type=int, default=4, help="images per source, seed and setting")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--sheet", default="docs/image-prompts.png")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu")
    dvae, grid = pipe.bundle.dvae, pipe.bundle.dvae.cfg.grid
    side = dvae.cfg.image_side
    tmp = Path(tempfile.mkdtemp())
    mask_path = centre_box_mask(side, tmp / "mask.png")
    rows: dict[str, list[float]] = {}
    sheet_pics, sheet_labels = [], []

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    for j, spec in enumerate(SOURCES):
        prompt = world.caption_for(spec, random.Random(j))
        src_path = tmp / f"src{j}.png"
        images.save_png(world.render(spec, seed=j, side=side), src_path)
        src = images.tensor_from_image(images.load_rgb(src_path, side))
        with torch.inference_mode():
            codes = dvae.codes_from_image(src.unsqueeze(0))
            round_trip = dvae.image_from_codes(codes).float()[0]
        add("round trip PSNR to source (dB)", float(psnr(round_trip.unsqueeze(0), src.unsqueeze(0))[0]))
        request = pipe.request(prompt)
        inpaint = {k: build(dvae, src_path, mask=mask_path, redraws=k) for k in (1, 4)}
        keep_px = pixel_keep(inpaint[1].keep, grid, side)
        add("source's own codes in the box: NLL of the kept codes after it (bits/code)",
            -source_fit(pipe, prompt, inpaint[1].codes, inpaint[1].keep) * BITS)
        for seed in args.seeds:
            for k, image in inpaint.items():
                t = time.perf_counter()
                got = [g for b in pipe.batches(request, args.n, seed, None, image) for g in b]
                add(f"inpaint --redraws {k}: seconds per image", (time.perf_counter() - t) / args.n)
                for g in got:
                    add(f"inpaint --redraws {k}: kept-region PSNR to round trip (dB)",
                        masked_psnr(g.image, round_trip, keep_px))
                    add(f"inpaint --redraws {k}: kept-region PSNR to source (dB)", masked_psnr(g.image, src, keep_px))
                    add(f"inpaint --redraws {k}: NLL of the kept codes after the box (bits/code)", -g.fit * BITS)
                if j == 0 and seed == args.seeds[0] and k == 4:
                    sheet_pics += [images.image_from_tensor(src), images.image_from_tensor(round_trip),
                                   Image.open(mask_path).convert("RGB")]
                    sheet_labels += ["source", "dVAE round trip", "mask"]
                    sheet_pics += [images.image_from_tensor(g.image) for g in got[:3]]
                    sheet_labels += ["inpaint"] * 3
            for s in STRENGTHS:
                image = build(dvae, src_path, strength=s)
                got = [g for b in pipe.batches(request, args.n, seed, None, image) for g in b]
                for g in got:
                    add(f"vary --strength {s}: PSNR to source (dB)", float(psnr(g.image.unsqueeze(0),
                                                                              src.unsqueeze(0))[0]))
                if j == 0 and seed == args.seeds[0] and s in (0.25, 0.5, 1.0):
                    sheet_pics += [images.image_from_tensor(g.image) for g in got[:2]]
                    sheet_labels += [f"vary {s}"] * 2
            if j == 0 and seed == args.seeds[0]:
                image = ImagePrompt("complete", inpaint[1].codes, "", keep=keep_top_cells(grid, 0.25), keep_top=0.25)
                for p, label in ((prompt, "top 1/4 kept"), ("a yellow bird", "top 1/4, 'yellow bird'")):
                    got = [g for b in pipe.batches(pipe.request(p), 3, seed, None, image) for g in b]
                    sheet_pics += [images.image_from_tensor(g.image) for g in got]
                    sheet_labels += [label] * 3
    # quality: the mean over images; time: the median over the runs (one run = --n images of one source and seed)
    table = {k: ((statistics.median if "seconds" in k else statistics.mean)(v), len(v)) for k, v in rows.items()}
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights={args.weights} n={args.n} "
          f"seeds={args.seeds} sources={len(SOURCES)} ({time.time() - t0:.0f} s)")
    print("| measure | mean (time: median) | images (time: runs) |")
    print("|---|---:|---:|")
    for k, (mean, count) in table.items():
        print(f"| {k} | {mean:.2f} | {count} |")
    if args.sheet:
        sheet = images.contact_sheet(sheet_pics, sheet_labels, columns=6, label_height=14)
        images.save_png(sheet, Path(args.sheet))
        print(f"wrote {args.sheet}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: m for k, (m, _) in table.items()}, indent=2))


if __name__ == "__main__":
    main()
