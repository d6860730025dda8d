"""Which dVAE reconstruction loss learns, on the procedural world and on real pictures?

For every (data source, --recon-loss) pair this runs the real training command,
`t2i train --stage dvae --preset default --data SRC --recon-loss LOSS --steps N`, and reports what the run
logged on its validation split at the end (reconstruction from argmax codes, as at inference): PSNR, L1,
codebook perplexity and codes used, the decoder's output spread on the last training batch, the watchdog's
warnings and the wall time.

Usage: python bench/dvae_losses.py --data world:train /tmp/emoji --losses l1 mse logit_laplace --steps 400
(/tmp/emoji: python bench/make_emoji_folder.py /tmp/emoji)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(data: str, loss: str, steps: int, out: Path, extra: list[str]) -> dict:
    """Run one training and return its last validation line, its last training line and its warnings."""
    cmd = [sys.executable, "-m", "t2i_cli", "train", "--stage", "dvae", "--preset", "default", "--data", data,
           "--recon-loss", loss, "--steps", str(steps), "--sample-every", str(steps), "--log-every", "25",
           "--out", str(out), "-q", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [row for row in rows if "val_psnr" in row][-1]
    last = [row for row in rows if "loss" in row][-1]
    warnings = [row["warning"] for row in rows if "warning" in row]
    return {"val": val, "last": last, "warnings": warnings, "seconds": seconds}


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
                name = f"{Path(data).name or data}-{loss}".replace(":", "-")
                out = (args.keep or Path(tmp)) / name
                if out.exists():
                    shutil.rmtree(out)
                res = train(data, loss, args.steps, out, args.extra)
                v, last = res["val"], res["last"]
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
        print(f"| {r['data']} | {r['loss']} | {r['steps']} | {r['val_psnr']:.2f} | {r['val_l1']:.4f} | "
              f"{r['val_perplexity']:.1f} | {r['val_codes_used']:.0%} | {r['train_kl']:.4f} | "
              f"{r['train_out_std']:.4f} | {len(r['warnings'])} warning(s) | {r['seconds']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
