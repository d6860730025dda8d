"""dVAE variants side by side: the bottleneck (Gumbel-softmax or FSQ), the codebook size, the schedule.

Each variant is the real command, `t2i train --stage dvae --preset default --data SRC --steps N ARGS`,
run one after another in this process's machine (run nothing else beside it: the wall times compare). It
reports what each run logged on its validation split (reconstruction from the inference codes): PSNR at
every validation, codebook perplexity and codes used, the watchdog's warnings, and seconds per step.

Usage:
  python bench/dvae_variants.py --data /tmp/emoji --steps 400 \\
      --variant fsq1000="--model fsq_levels=8,5,5,5" --variant gumbel512="--model fsq_levels= --model n_codes=512"
(name the bottleneck: the default preset's own dVAE is FSQ on a folder and Gumbel-softmax 512 on the world)
(/tmp/emoji: python bench/make_emoji_folder.py /tmp/emoji)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(data: str, steps: int, out: Path, extra: list[str], val_every: int) -> dict:
    """Run one training; its validation lines, its last training line, its warnings and its wall time."""
    cmd = [sys.executable, "-m", "t2i_cli", "train", "--stage", "dvae", "--preset", "default", "--data", data,
           "--steps", str(steps), "--sample-every", str(val_every), "--log-every", "25", "--out", str(out), "-q",
           *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{r.stderr}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"val": [row for row in rows if "val_psnr" in row], "last": [row for row in rows if "loss" in row][-1],
            "warnings": [row["warning"] for row in rows if "warning" in row], "seconds": seconds,
            "command": shlex.join(["t2i", *cmd[3:]])}


def fresh_run_dir(root: Path, data: str, name: str) -> Path:
    """root/DATA-NAME for one run, emptied of an earlier run's files."""
    out = root / f"{Path(data).name or data}-{name}".replace(":", "-")
    if out.exists():
        shutil.rmtree(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["world:train"])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--val-every", type=int, default=0, help="validate every N steps (default: at the end)")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=ARGS",
                    help="a name and the extra `t2i train` options of one run (empty: the preset as it is)")
    ap.add_argument("--keep", type=Path, help="keep the run folders here (samples, loss.png)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    variants = [(name, shlex.split(rest)) for name, _, rest in (v.partition("=") for v in args.variant)]
    print(f"# {os.uname().nodename} {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {args.steps} steps", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.data:
            for name, extra in variants:
                out = fresh_run_dir(args.keep.absolute() if args.keep else Path(tmp), data, name)
                res = train(data, args.steps, out, extra, args.val_every or args.steps)
                v = res["val"][-1]
                row = {"data": data, "variant": name, "command": res["command"],
                       "val_psnr": [(r["step"], round(r["val_psnr"], 2)) for r in res["val"]],
                       "val_perplexity": v["val_perplexity"], "val_codes_used": v["val_codes_used"],
                       "warnings": res["warnings"], "seconds": res["seconds"]}
                results.append(row)
                print(json.dumps(row), flush=True)
    print("\n| data | variant | val PSNR (dB) by step | val perplexity | codes used | watchdog | s/step |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        curve = " / ".join(f"{p:.2f}" for _, p in r["val_psnr"])
        print(f"| {r['data']} | {r['variant']} | {curve} | {r['val_perplexity']:.1f} | {r['val_codes_used']:.0%} | "
              f"{len(r['warnings'])} warning(s) | {r['seconds'] / args.steps:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
