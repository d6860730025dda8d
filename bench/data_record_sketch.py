"""What the data record's sketch (data.SKETCH_PAIRS: each pair's picture and captions, and the caption words, for
a resume's warning to say what changed) costs when a run starts: data.source_record with and without it, on the
captions of /tmp/icons (363 real captions) and on world captions (the procedural world's, n of them, a source
far past SKETCH_PAIRS whose vocabulary is small), median of --reps rounds; and the record's size as written.

Usage: python bench/data_record_sketch.py [--icons /tmp/icons] [--world 100000] [--reps 5]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

from t2i_cli import data
from t2i_cli.world.splits import scene_caption


def pairs_of(captions: list[str], base: Path) -> tuple[list, list[str]]:
    pairs = [(base / f"p{i:06d}.png", [c]) for i, c in enumerate(captions)]
    return pairs, [hashlib.sha256(str(i).encode()).hexdigest() for i in range(len(pairs))]


def timed(pairs, digests, base: Path, reps: int, sketch: bool) -> tuple[float, int, int]:
    real = data._sketch
    if not sketch:
        data._sketch = lambda *a: {}
    try:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            record = data.source_record(pairs, digests, base)
            times.append(time.perf_counter() - t)
    finally:
        data._sketch = real
    return statistics.median(times), len(json.dumps(record, indent=2, sort_keys=True)), len(record.get("words",
                                                                                                       "").split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--icons", default="/tmp/icons")
    ap.add_argument("--world", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    base = Path("/nonexistent/base")
    icons = [p.read_text().strip() for p in sorted(Path(a.icons).glob("*.txt"))]
    worlds = [scene_caption("train", i)[0] for i in range(a.world)]
    for name, captions in (("icons", icons), (f"world x{len(worlds):,}", worlds)):
        pairs, digests = pairs_of(captions, base)
        without, size0, _ = timed(pairs, digests, base, a.reps, False)
        with_, size1, words = timed(pairs, digests, base, a.reps, True)
        print(f"{name:>14}: {len(pairs):>7,} pairs  record {without * 1e3:8.1f} ms ({size0:,} bytes)  with sketch "
              f"{with_ * 1e3:8.1f} ms ({size1:,} bytes, {words:,} words)  sketch +{(with_ - without) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
