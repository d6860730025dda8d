"""How well `t2i data caption` tells a random id from words in camel case (name_captions._random_id), this build
against an older one: the share of random ids caught (8 to 12 letters and digits, both cases and a digit among them,
as ShareX, YouTube and Unsplash make them; seeded) and the share of made-up names in camel case taken for ids (2 or 3
words of the picture file names under /usr/share and /usr/lib, capitalised, a number among them: "TicTacToe2"), each
build in a fresh process (the older build's source given as a folder, e.g. made with `git archive REV src | tar x -C
DIR`). Prints, per build, the shares, and the names on which the builds differ (up to --show).

Usage: python bench/random_ids.py OLD_SRC [--ids 10000] [--names 20000] [--seed 0] [--show 12]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from caption_speed import stems  # noqa: E402

CHILD = """
import json, sys
from t2i_cli.name_captions import _random_id
print(json.dumps([_random_id(p) for p in json.load(open(sys.argv[1]))]))
"""
MIXED = re.compile(r"(?=.*\d)(?=.*[a-z])(?=.*[A-Z])[0-9A-Za-z]{8,}")


def random_ids(n: int, rng: random.Random) -> list[str]:
    chars = string.ascii_letters + string.digits
    out: list[str] = []
    while len(out) < n:
        s = "".join(rng.choice(chars) for _ in range(rng.randrange(8, 13)))
        if MIXED.fullmatch(s):
            out.append(s)
    return out


def camel_names(n: int, rng: random.Random, vocab: list[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        k = rng.choice([2, 2, 3])
        parts = [rng.choice(vocab).capitalize() for _ in range(k)]
        parts.insert(rng.randrange(0, k + 1), str(rng.choice([2, 3, 4, 7, 10, 12, 64, 2023, 2024])))
        s = "".join(parts)
        if rng.random() < 0.3:
            s = s[0].lower() + s[1:]
        if MIXED.fullmatch(s):
            out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--ids", type=int, default=10000)
    ap.add_argument("--names", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=12)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    vocab = sorted({w for s in stems(["/usr/share", "/usr/lib"]) for w in re.findall("[a-z]+", s.lower())
                    if 2 <= len(w) <= 8})
    sets = {"random ids": random_ids(args.ids, rng), "camel-case names": camel_names(args.names, rng, vocab)}
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"random_ids_{os.getpid()}.json"
    print(f"# seed {args.seed}, {len(vocab)} words of picture file names for the camel-case names")
    try:
        for what, pieces in sets.items():
            work.write_text(json.dumps(pieces), encoding="utf-8")
            got = {}
            for build, src in (("old", str(Path(args.old_src).resolve())), ("new", str(ROOT / "src"))):
                out = subprocess.run([sys.executable, "-c", CHILD, str(work)], env=dict(os.environ, PYTHONPATH=src),
                                     check=True, capture_output=True, text=True).stdout
                got[build] = json.loads(out)
            shares = ", ".join(f"{b} {sum(v):,} ({100 * sum(v) / len(v):.1f}%)" for b, v in got.items())
            print(f"{what}: {len(pieces):,}; read as ids: {shares}")
            differ = [(p, o, n) for p, o, n in zip(pieces, got["old"], got["new"], strict=True) if o != n]
            for p, o, n in differ[:args.show]:
                print(f"  {p!r}: old {o}, new {n}")
    finally:
        work.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
