"""A run's validations from its metrics.jsonl, "step:value ..." and the best, on one line.

    python bench/run_vals.py RUN/metrics.jsonl val_bits_per_code   (lowest is best; val_psnr: highest)
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
key = sys.argv[2]
v = [(r["step"], r[key]) for r in rows if key in r]
best = (max if key == "val_psnr" else min)(v, key=lambda sv: sv[1])
print(" ".join(f"{s}:{x:.3f}" for s, x in v), f"| best {best[1]:.3f} at {best[0]}")
