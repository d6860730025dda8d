"""A researcher's journey through the Python API alone (no command), on real pictures t2i did not draw: train a
tiny model of each stage on a captioned folder, export it, draw with each sampling knob, rerank, read an image's
codes, a step's logits, each code's bits and where each word looks, evaluate on the held-out pictures, and save and
load a model. Every call is one the README's "Python API" names; a failing one stops the script with its traceback.
One thread by default, so it can share a machine.

Usage: PYTHONPATH=src python bench/api_journey.py FOLDER [--work DIR] [--steps N]
  FOLDER: pictures with NAME.txt captions (bench/make_games_folder.py OUT, or a copy of an icon folder)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from t2i_cli import image_prompt, stages  # noqa: E402
from t2i_cli.data_eval import evaluate_data  # noqa: E402
from t2i_cli.images import load_rgb, tensor_from_image  # noqa: E402
from t2i_cli.pipeline import TextToImage  # noqa: E402
from t2i_cli.rerank import explain  # noqa: E402
from t2i_cli.sampling import SamplingConfig  # noqa: E402
from t2i_cli.train import TrainConfig, export_runs  # noqa: E402
from t2i_cli.weights import load_model, save_model  # noqa: E402

KNOBS = [{}, {"temperature": 0.7}, {"top_k": 8}, {"top_p": 0.9}, {"guidance": 1.0}, {"guidance_start": 1.0},
         {"guidance_stop": 0.5}, {"jacobi": 4}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    ap.add_argument("--steps", type=int, default=60, help="steps of the dVAE, transformer and CLIP stages")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="t2i-api-"))
    data, runs = str(args.folder), work / "run"
    warnings.simplefilter("ignore")  # (PromptWarning, TrainingWarning: a tiny model knows few words)
    start = time.perf_counter()
    for stage in ("tokenizer", "dvae", "transformer", "clip"):
        over = {"num_workers": 0, "steps": args.steps}
        if stage in ("transformer", "clip"):
            over["tokenizer"] = str(runs / "tokenizer" / "tokenizer.json")
        if stage == "transformer":
            over["dvae"] = str(runs / "dvae" / "dvae.safetensors")
        cfg = TrainConfig(stage=stage, data=data, **stages.apply_preset(stage, "tiny", over, data))
        done = stages.run_stage(cfg, runs / stage, device="cpu")
        print(f"{stage}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in done.items() if v is not None))
    weights = work / "weights"
    export_runs([runs / s for s in ("tokenizer", "dvae", "transformer", "clip")], weights)
    print(f"trained and exported in {time.perf_counter() - start:.1f} s")

    pipe = TextToImage.from_folder(weights, "cpu")
    prompt = next(iter(sorted(args.folder.rglob("*.txt")))).read_text(encoding="utf-8").splitlines()[0]
    print(f"prompt {prompt!r}: the model reads {pipe.request(prompt).encoded}")
    for knobs in KNOBS:
        drawn = pipe(prompt, n=2, seed=0, sampling=SamplingConfig(**knobs))
        again = pipe(prompt, n=2, seed=0, sampling=SamplingConfig(**knobs))
        same = all(torch.equal(a.codes, b.codes) for a, b in zip(drawn, again, strict=True))
        print(f"  {knobs or 'defaults'}: codes {drawn[0].codes[:6].tolist()}..., same seed same codes: {same}")
    for precision in ("bf16", "int8"):
        other = TextToImage.from_folder(weights, "cpu", precision=precision)
        print(f"  precision {precision}: codes {other(prompt, 1, 0)[0].codes[:6].tolist()}...")
    best = pipe.rerank(pipe(prompt, n=4, seed=1), 2)
    print(f"rerank: best 2 of 4 are images {[g.index for g in best]}, scores {[round(g.score, 4) for g in best]}")
    negative = [g for batch in pipe.batches(pipe.request(prompt, negative="a photo"), 1, 0) for g in batch]
    print(f"negative prompt: codes {negative[0].codes[:6].tolist()}...")

    picture = sorted(p for p in args.folder.rglob("*.png"))[0]
    dvae, transformer = pipe.bundle.dvae, pipe.bundle.transformer
    with torch.inference_mode():
        x = tensor_from_image(load_rgb(picture, dvae.cfg.image_side))[None]
        codes = dvae.codes_from_image(x)  # (1, grid, grid)
        text = torch.tensor([pipe.request(prompt).encoded.ids])
        logits, _ = transformer(text, codes)  # (1, N, V)
        step = transformer.image_logits(text, codes.flatten(1)[:, :3])  # code 3's logits given the first 3
    bits = pipe.bits([prompt], codes)
    print(f"{picture.name}: codes {tuple(codes.shape)}, logits {tuple(logits.shape)}, step logits "
          f"{tuple(step.shape)}, {bits.mean():.3f} bits per code")
    completed = pipe(prompt, 1, 0, image=image_prompt.build(dvae, picture, keep_top=0.5))[0]
    varied = pipe(prompt, 1, 0, image=image_prompt.build(dvae, picture, strength=0.5))[0]
    print(f"completion keeps the top rows: {torch.equal(completed.codes[:2], codes.flatten()[:2])}; "
          f"variation fit {varied.fit:.3f} nats")
    print("each word's score delta: " + ", ".join(f"{w} {d:+.3f}" for w, d in explain(pipe, best[0].image, prompt)))

    result = evaluate_data(pipe, args.folder, 4, 0)
    print(f"evaluate_data: {result['n']} of {result['val_size']} val pictures, dVAE PSNR {result['dvae']['psnr']:.2f} "
          f"dB, bits per code {result['transformer']['bits_per_code']:.3f}")
    save_model(transformer, work / "transformer-copy.safetensors", "transformer")
    loaded = load_model(work / "transformer-copy.safetensors", "transformer")
    same = all(torch.equal(a, b) for a, b in zip(transformer.state_dict().values(), loaded.state_dict().values(),
                                                  strict=True))
    print(f"save_model / load_model round trip: same tensors {same}; the whole journey took "
          f"{time.perf_counter() - start:.1f} s in {work}")


if __name__ == "__main__":
    main()
