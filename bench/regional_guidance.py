"""Regional guidance for two-object prompts (issue 15): each object's own phrase guides its half of the grid.

`--regional W` (sampling.Regions, world.captions.region_prompts): a two-object prompt of the world's grammar
("a red bird and a small blue fish") also conditions two more rows of the batch on each object's own caption
at the place the world draws it ("a red bird on the left", "a small blue fish on the right"; "and" and "left
of" put the first on the left, "right of" on the right, "above" at the top, "below" at the bottom), and each
code's logits are u + g (c - u) + W (m_a (a - u) + m_b (b - u)), with m_a, m_b 1 in that object's half of the
grid. W = 0 is plain guidance. The first version of this script patched the decoder from outside; it now runs
the product's own code.

Each setting runs through the eval's own code (world.evaluate.evaluate_model: the same prompts, image seeds
and judge as `t2i eval`), on the tasks and seeds given, one candidate unless --candidates.

--unicode-names instead counts how many captions of the emoji folder (bench/make_emoji_folder.py: the Unicode
names of its code-point blocks, no font needed) regional guidance applies to.

Usage: PYTHONPATH=src python bench/regional_guidance.py [--weights weights] [--n 50] [--seeds 0 1]
           [--tasks two_objects colour_attribution] [--candidates 1] [--guidance 3] --regional 0 1 2
       PYTHONPATH=src python bench/regional_guidance.py --unicode-names
"""

from __future__ import annotations

import argparse
import platform
import time
import unicodedata
from pathlib import Path

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig
from t2i_cli.world.captions import region_prompts
from t2i_cli.world.evaluate import evaluate_model
from t2i_cli.world.judge import load_judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--tasks", nargs="+", default=["two_objects", "colour_attribution"])
    ap.add_argument("--regional", type=float, nargs="+", default=[0.0, 1.0, 2.0],
                    help="the regional weights to compare (0: plain guidance)")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--candidates", type=int, default=1, help="draw N per prompt, keep the reranker's pick")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--unicode-names", action="store_true", help="count the emoji captions that get regions")
    args = ap.parse_args()
    if args.unicode_names:
        from make_emoji_folder import BLOCKS

        names = [n.lower() for lo, hi in BLOCKS for c in range(lo, hi + 1) if (n := unicodedata.name(chr(c), ""))]
        hits = [n for n in names if region_prompts(n)]
        print(f"{len(names)} Unicode names in the emoji folder's blocks, {sum(' and ' in n for n in names)} with "
              f"'and'; regional guidance applies to {len(hits)}{': ' + ', '.join(hits[:10]) if hits else ''}")
        return
    t0 = time.time()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", need_clip=args.candidates > 1,
                                   precision=args.precision)
    judge = load_judge(Path(args.weights) / "judge.safetensors")
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights={pipe.bundle.identity} n={args.n} "
          f"seeds={args.seeds} candidates={args.candidates} guidance={args.guidance} precision={pipe.precision}")
    print("| regional | seed | " + " | ".join(args.tasks) + " | mean | seconds |")
    print("|---:|---|" + "---:|" * (len(args.tasks) + 2))
    for w in args.regional:
        sampling = SamplingConfig(guidance=args.guidance, regional=w)
        for seed in args.seeds:
            r = evaluate_model(pipe, judge, args.n, seed, sampling, args.candidates, tasks=tuple(args.tasks))
            accs = [r["tasks"][t]["accuracy"] for t in args.tasks]
            print(f"| {w:g} | {seed} | " + " | ".join(f"{100 * a:.0f}%" for a in accs)
                  + f" | {100 * sum(accs) / len(accs):.1f}% | {r['seconds']:.0f} |", flush=True)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
