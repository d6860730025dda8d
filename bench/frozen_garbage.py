"""What cli._imports_held's gc.freeze() keeps for good: torch's first import runs with the cyclic collector off, and
every object then tracked is frozen, the import's unreachable cycles (garbage a collection would free) among them.
In a fresh process (one thread): _imports_held("t2i_cli.pipeline") as generate calls it; then the frozen objects
are unfrozen and collected with gc.DEBUG_SAVEALL to count what was frozen unreachable (its shallow size, by
sys.getsizeof) and the CPU of that one full collection, the one a gc.collect() before freezing would cost. Then a
long process's work after the freeze: --cycles reference cycles of 1 KiB each made and dropped, the peak RSS before
and after (the collector frees them: the freeze is once, and what comes after is collected as before).

Usage: PYTHONPATH=src python bench/frozen_garbage.py [--cycles 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = r"""
import gc, resource, sys, time
import t2i_cli.cli as cli

cycles = int(sys.argv[1])
cli._imports_held("t2i_cli.pipeline")
frozen = gc.get_freeze_count()
print(f"frozen by _imports_held: {frozen:,} objects; collector enabled after: {gc.isenabled()}")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for i in range(cycles):  # a long process's garbage: cycles made and dropped
    a = [bytearray(1024)]
    a.append(a)
    del a
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{cycles:,} cycles of 1 KiB made and dropped after the freeze: peak RSS {rss / 1024:.0f} -> "
      f"{after / 1024:.0f} MB")
gc.collect()  # (the loop's last cycles, not yet collected: not the freeze's)
gc.unfreeze()
gc.set_debug(gc.DEBUG_SAVEALL)
t = time.process_time()
found = gc.collect()
t = time.process_time() - t
size = sum(sys.getsizeof(o) for o in gc.garbage)
print(f"of them unreachable (kept for good by the freeze): {found:,} objects, {size / 2**20:.2f} MiB shallow")
print(f"one full collection of them all: {t:.3f} s CPU")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=100_000)
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, str(args.cycles)], env=env, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
