"""The judge on relation prompts of the position task ("a above b", ...): correct world renders, and renders
with the relation turned a quarter (the two objects on the other axis), seeds 0-4, 200 prompts each.

    PYTHONPATH=src python bench/judge_relations.py LABEL
"""

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from t2i_cli.world.judge import load_judge
from t2i_cli.world.render import render
from t2i_cli.world.spec import SceneSpec
from t2i_cli.world.tasks import image_seed, task_prompts

QUARTER = {"above": "left of", "below": "right of", "left of": "below", "right of": "above"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("label", nargs="?", default="", help="printed at the start of each line (e.g. the commit)")
    label = ap.parse_args().label
    judge = load_judge(Path(__file__).resolve().parents[1] / "weights" / "judge.safetensors")
    ok, turned, tot = Counter(), Counter(), Counter()
    for seed in range(5):
        for i, (_, spec) in enumerate(task_prompts("position", 200, seed)):
            if spec.relation is None:
                continue
            s = image_seed(seed, "position", i)
            tot[spec.relation] += 1
            ok[spec.relation] += judge.passes("position", np.asarray(render(spec, s, 128)), spec)
            t = SceneSpec(spec.objects, 1, QUARTER[spec.relation], spec.background)
            turned[spec.relation] += judge.passes("position", np.asarray(render(t, s, 128)), spec)
    for name, c in (("correct renders pass", ok), ("quarter-turned renders pass", turned)):
        print(label, name, {r: f"{c[r]}/{tot[r]}" for r in tot},
              f"all {sum(c.values())}/{sum(tot.values())}")


if __name__ == "__main__":
    main()
