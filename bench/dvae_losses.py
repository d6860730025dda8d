"""Which dVAE reconstruction loss learns, on the procedural world and on real pictures?

For every (data source, --recon-loss) pair this runs the real training command,
`t2i train --stage dvae --preset default --data SRC --recon-loss LOSS --steps N`, and reports what the run
logged on its validation split at the end (reconstruction from argmax codes, as at inference): PSNR, L1,
codebook perplexity and codes used, the decoder's output spread on the last training batch, the watchdog's
warnings and the wall time.

Usage: python bench/dvae_losses.py --data world:train /tmp/emoji --losses l1 mse logit_laplace --steps 400
(the default preset's dVAE is FSQ on a folder and Gumbel-softmax 512 on the world since 2026-12-02, so give the
bottleneck to compare both on the same one: BENCHMARKS.md's table, with Gumbel-softmax, is
`... --steps 400 -- --model fsq_levels= --model n_codes=512`; with FSQ, `-- --model fsq_levels=8,5,5,5`)
(/tmp/emoji: python bench/make_emoji_folder.py /tmp/emoji)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dvae_variants import fresh_run_dir, train  # noqa: E402  (the real `t2i train` command, and its folder)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["world:train"])
    ap.add_argument("--losses", nargs="+", default=["l1", "mse", "logit_laplace"])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--keep", type=Path, help="keep the run folders here (samples, loss.png)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("extra", nargs="*", help="more `t2i train` options, after --")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.data:
            for loss in args.losses:
                out = fresh_run_dir(args.keep.absolute() if args.keep else Path(tmp), data, loss)
                res = train(data, args.steps, out, ["--recon-loss", loss, *args.extra], args.steps)
                v, last = res["val"][-1], res["last"]
                row = {"data": data, "loss": loss, "steps": args.steps, "val_psnr": v["val_psnr"],
                       "val_l1": v["val_loss"], "val_perplexity": v["val_perplexity"],
                       "val_codes_used": v["val_codes_used"], "train_kl": last.get("kl"),
                       "train_out_std": last.get("out_std"), "warnings": res["warnings"],
                       "seconds": res["seconds"]}
                results.append(row)
                print(json.dumps(row), flush=True)
    print("\n| data | loss | steps | val PSNR (dB) | val L1 | val perplexity | codes used | KL (last) | "
          "output spread (last) | watchdog | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        kl = '-' if r['train_kl'] is None else f"{r['train_kl']:.4f}"  # FSQ has no KL
        print(f"| {r['data']} | {r['loss']} | {r['steps']} | {r['val_psnr']:.2f} | {r['val_l1']:.4f} | "
              f"{r['val_perplexity']:.1f} | {r['val_codes_used']:.0%} | {kl} | "
              f"{r['train_out_std']:.4f} | {len(r['warnings'])} warning(s) | {r['seconds']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
