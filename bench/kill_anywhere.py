"""Kill t2i anywhere: each command below is started, then stopped by SIGKILL or SIGINT (alternately) after a
random share (seeded) of the time it takes uninterrupted; then every file under its outputs is checked (a PNG
decodes, a .safetensors loads, a .json parses, a .jsonl's lines parse, a .txt is whole UTF-8 ending in a
newline), the temporaries it left (.NAME.XXXX.tmp) are counted, `t2i info` is asked about a run, and the next
run (the same command, or `train --resume`) must succeed and leave no temporary and no broken file behind.
A reader (data preview, rerank) is run on a folder while a killed write's temporary is in it. Then the chosen
moments: each command run with every atomic write slowed (its temporary held half written for 0.4 s) and SIGKILLed
once the nth temporary of a chosen file is on disk (the 2nd checkpoint.safetensors, a model file, metrics.jsonl,
the 5th caption .txt, a scene's spec, ranking.json, best/'s record, eval.json, an exported clip.safetensors).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/kill_anywhere.py [--trials 2] [--seed 0] [--only TEXT] [--aged]
        [ICONS]

ICONS: a folder of captioned pictures (default /tmp/icons), copied; nothing in it is changed. Prints one row per
command: kills (KILL/INT; chosen: those at a chosen write), files found broken after a kill, temporaries left by a
kill, exports cut between their renames (journal: `t2i info` must refuse the folder), next runs that failed,
temporaries and broken files after the next run, `t2i info` failures; then every problem seen, one a line.
--aged: the temporaries a kill left are made two minutes old (os.utime) before the next run, as if it came later (a
command removes another run's temporaries only once a minute old: one newer may be a write in progress; the next
run here starts within seconds), and the rows count them (aged) and those the next run removed (removed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def t2i(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "t2i_cli", *map(str, args)], capture_output=True, text=True, env=ENV, **kw)


def is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def broken(path: Path) -> str | None:
    """Why the file under its final name is not whole, or None."""
    try:
        s = path.suffix.lower()
        if s == ".png":
            from PIL import Image

            with Image.open(path) as im:
                im.load()
        elif s == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                for k in f.keys():
                    f.get_tensor(k)
        elif s == ".json":
            json.loads(path.read_bytes())
        elif s == ".jsonl":
            for line in path.read_bytes().splitlines():
                json.loads(line)
        elif s == ".txt":
            text = path.read_bytes().decode("utf-8")
            if not text.endswith("\n"):
                return "a .txt without its final newline"
        elif path.stat().st_size == 0:
            return "empty"
    except Exception as e:  # noqa: BLE001 (any failure to read is the finding)
        return f"{type(e).__name__}: {str(e)[:80]}"
    return None


def survey(roots: list[Path]) -> tuple[list[str], list[str]]:
    """(broken files, temporaries) under roots."""
    bad, temps = [], []
    for root in roots:
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = [p for p in root.rglob("*") if p.is_file()]
        else:
            continue
        for p in files:
            if is_temporary(p.name) or p.name.startswith(".t2i-probe-"):
                temps.append(str(p))
            elif (why := broken(p)) is not None:
                bad.append(f"{p}: {why}")
    return bad, temps


# t2i with every atomic write slowed (a slow disk): each temporary file is held half written for 0.4 s, so that a kill
# can be sent while a chosen file (a checkpoint, a caption, a record) is being written
SLOW = """
import sys, time
from t2i_cli import files
_finished = files._finished_temporary
def slow(path, write, shown=None):
    def halfway(tmp):
        write(tmp)
        data = tmp.read_bytes()
        tmp.write_bytes(data[: len(data) // 2])
        time.sleep(0.4)
        tmp.write_bytes(data)
    return _finished(path, halfway, shown)
files._finished_temporary = slow
import os
_replace = os.replace
def replace(src, dst, *a, **k):  # and each rename followed by 0.3 s (an export's set: a kill between two)
    _replace(src, dst, *a, **k)
    time.sleep(0.3)
os.replace = replace
from t2i_cli.__main__ import entry
sys.argv = ["t2i", *sys.argv[1:]]
entry()
"""


def run_killed_at(argv: list[str], roots: list[Path], name: str, nth: int, sig: int) -> tuple[int, str, bool]:
    """Run t2i (writes slowed) and send sig once the nth temporary file whose target name holds `name` appears
    under roots (=NAME: once a file NAME is there); (exit code, last stderr line, whether that moment came)."""
    p = subprocess.Popen([PY, "-c", SLOW, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    seen: set[str] = set()
    hit = False
    while p.poll() is None and not hit:
        for root in roots:
            try:
                files = root.rglob("*") if root.is_dir() else root.parent.glob("*")  # (a file: its folder's)
                found = [q for q in files if (q.name == name[1:] if name.startswith("=") else
                                              is_temporary(q.name) and name in q.name[1:])]
            except OSError:
                found = []
            seen |= {str(q) for q in found}
            if len(seen) >= nth:
                p.send_signal(sig)
                hit = True
                break
        time.sleep(0.02)
    out, err = p.communicate()
    return p.returncode, (err.strip().splitlines() or [""])[-1], hit


def run_killed(argv: list[str], after: float, sig: int) -> tuple[int, str]:
    p = subprocess.Popen([PY, "-m", "t2i_cli", *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    try:
        out, err = p.communicate(timeout=after)
    except subprocess.TimeoutExpired:
        p.send_signal(sig)
        out, err = p.communicate()
    return p.returncode, (err.strip().splitlines() or [""])[-1]


class Case:
    def __init__(self, name, fresh, argv, roots, again=None, info=None, reader=None, at=()):
        self.name, self.fresh, self.argv, self.roots, self.at = name, fresh, argv, roots, at
        self.again = again or argv  # the next run
        self.info, self.reader = info, reader
        self.row = dict(kills=0, chosen=0, broken=0, temps=0, journal=0, next_failed=0, temps_after=0,
                        broken_after=0, info_failed=0, aged=0, removed=0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("icons", nargs="?", default="/tmp/icons")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="only the commands whose row name holds this text")
    ap.add_argument("--aged", action="store_true", help="age the temporaries a kill left by two minutes before the "
                    "next run, and count those it removed")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    w = Path(tempfile.mkdtemp(prefix="kill-anywhere-"))
    problems: list[str] = []
    try:
        icons = w / "icons"
        shutil.copytree(a.icons, icons)
        base = w / "base"
        r = t2i("train", "--stage", "all", "--data", icons, "--preset", "tiny", "--steps", 20, "--out", base, "-q")
        if r.returncode:
            print("setup failed:", r.stderr[-400:])
            return 1
        tw = base / "weights"
        prompts = w / "prompts.txt"
        prompts.write_text("a red bird\na blue square\na green folder\n")
        src = w / "src"
        t2i("generate", "a red bird", "--n", 1, "--out", src, "--weights", tw, "--seed", 1)
        source = next(src.glob("*.png"))
        bare = w / "bare"  # pictures without captions
        gen, vary, prm = w / "gen", w / "vary", w / "prm"
        cases = [
            Case("generate --n 8 --grid --json", None,
                 ["generate", "a red bird", "--n", 8, "--grid", "--json", "--out", gen, "--weights", tw], [gen],
                 reader=["rerank", gen, "--weights", tw], at=[("a-red-bird-NNN.png", 3), ("grid-NNN.png", 1)]),
            Case("generate --prompts FILE", None,
                 ["generate", "--prompts", prompts, "--n", 3, "--grid", "--out", prm, "--weights", tw], [prm]),
            Case("vary --n 8", None, ["vary", source, "--n", 8, "--grid", "--out", vary, "--weights", tw], [vary],
                 at=[(".png", 2)]),
        ]
        for stage, steps in (("tokenizer", 1), ("dvae", 40), ("transformer", 40), ("clip", 40), ("all", 15)):
            run = w / f"run-{stage}"
            extra = [] if stage in ("tokenizer", "all") else (
                ["--dvae", base / "dvae", "--tokenizer", base / "tokenizer"] if stage == "transformer"
                else ["--tokenizer", base / "tokenizer"] if stage == "clip" else [])
            argv = ["train", "--stage", stage, "--data", icons, "--preset", "tiny", "--steps", steps, "--ckpt-every", 3,
                    "--log-every", 1, "--out", run, *extra]
            if stage == "tokenizer":
                argv = argv[:argv.index("--steps")] + ["--out", run]
            at = {"tokenizer": [("tokenizer.json", 1)],
                  "all": [("checkpoint.safetensors", 2), ("transformer.safetensors", 3)]}.get(
                stage, [("checkpoint.safetensors", 2), (f"{stage}.safetensors", 2)])
            cases.append(Case(f"train --stage {stage}", run, argv, [run], again=["train", "--resume", run], info=run,
                              at=at))
        res = w / "run-resume"
        cases.append(Case("train --resume --steps 60 (dvae)",
                          lambda res=res: (shutil.rmtree(res, ignore_errors=True),
                                           t2i("train", "--stage", "dvae", "--data", icons, "--preset", "tiny",
                                               "--steps", 10, "--ckpt-every", 3, "--out", res)),
                          ["train", "--resume", res, "--steps", 60, "--ckpt-every", 3], [res],
                          again=["train", "--resume", res], info=res, at=[("checkpoint.safetensors", 1)]))
        exp, other = w / "exported", w / "other"
        r = t2i("train", "--stage", "all", "--data", icons, "--preset", "tiny", "--steps", 8, "--seed", 5, "--out",
                other, "-q")
        cases.append(Case("export (all four, over an export)",
                          lambda: (shutil.rmtree(exp, ignore_errors=True), shutil.copytree(other / "weights", exp)),
                          ["export", *(base / s for s in ("tokenizer", "dvae", "transformer", "clip")), "--to",
                           exp, "--force"], [exp], at=[("clip.safetensors", 1), ("=.t2i-export.json", 1)]))
        cases.append(Case("data caption", lambda: (shutil.rmtree(bare, ignore_errors=True), bare.mkdir(),
                                                   [shutil.copy(p, bare) for p in sorted(icons.glob("*.png"))]),
                          ["data", "caption", bare], [bare],
                          reader=["data", "preview", bare, "--out", w / "preview-bare.png", "--force"],
                          at=[(".txt", 5)]))
        world = w / "world"
        cases.append(Case("data world --out", None, ["data", "world", "--n", 300, "--side", 32, "--out", world],
                          [world], reader=["data", "preview", world, "--out", w / "preview-world.png", "--force"],
                          at=[(".txt", 4), (".json", 4)]))
        ranked = w / "ranked"
        cases.append(Case("rerank --top 2 --link-best",
                          lambda: (shutil.rmtree(ranked, ignore_errors=True),
                                   shutil.copytree(gen, ranked) if gen.is_dir() else None),
                          ["rerank", ranked, "--top", 2, "--link-best", "--weights", tw], [ranked],
                          at=[("ranking.json", 1), ("ranking-top", 1), ("t2i-copies.json", 2)]))
        ev, evj = w / "eval-images", w / "eval.json"
        cases.append(Case("eval --json F --images DIR", None,
                          ["eval", "--weights", tw, "--data", icons, "--n", 16, "--json", evj, "--images", ev,
                           "--force"],
                          [ev, evj], at=[(".png", 3), ("eval.json", 1)]))
        cases = [c for c in cases if a.only in c.name]
        for c in cases:
            for root in c.roots:
                shutil.rmtree(root, ignore_errors=True) if root.is_dir() else None
            if callable(c.fresh):
                c.fresh()
            t0 = time.monotonic()
            r = t2i(*c.argv)
            took = time.monotonic() - t0
            if r.returncode:
                problems.append(f"{c.name}: uninterrupted run failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            moments = [(None, 0)] * a.trials + list(c.at)
            for i, (name, nth) in enumerate(moments):
                if c.info is not None or c.name.startswith(("data world", "eval")):
                    for root in c.roots:
                        shutil.rmtree(root, ignore_errors=True) if root.is_dir() else None
                if callable(c.fresh):
                    c.fresh()
                if name is None:
                    sig = signal.SIGKILL if i % 2 == 0 else signal.SIGINT
                    after = rng.uniform(0.3, took)
                    code, line = run_killed(c.argv, after, sig)
                    when = f"at {after:.2f}s of {took:.2f}s"
                else:
                    sig = signal.SIGKILL
                    code, line, hit = run_killed_at(c.argv, c.roots, name, nth, sig)
                    when = f"writing {name} (#{nth})"
                    if not hit:
                        problems.append(f"{c.name}: no write of {name} #{nth} seen (exit {code}: {line})")
                        continue
                    c.row["chosen"] += 1
                c.row["kills"] += 1
                bad, temps = survey(c.roots)
                c.row["broken"] += bool(bad)
                c.row["temps"] += bool(temps)
                journals = [j for root in c.roots if root.is_dir() for j in root.rglob(".t2i-export.json")]
                if journals:  # an export cut between its renames: its folder must be refused until finished
                    c.row["journal"] += 1
                    ri = t2i("info", journals[0].parent)
                    if ri.returncode == 0:
                        problems.append(f"{c.name}: t2i info took a folder an export was cut in as whole")
                what = f"{c.name} [{sig.name} {when}, exit {code}]"
                if sig == signal.SIGINT and code not in (0, 130):
                    problems.append(f"{what}: Ctrl-C's exit is not 130: {line}")
                problems += [f"{what}: broken after kill: {b}" for b in bad]
                if c.info is not None and Path(c.info).is_dir():
                    ri = t2i("info", c.info)
                    if ri.returncode:
                        c.row["info_failed"] += 1
                        problems.append(f"{what}: t2i info: {ri.stderr.strip().splitlines()[-1:]}")
                if c.reader is not None and temps:
                    rr = t2i(*c.reader)
                    if rr.returncode:
                        problems.append(f"{what}: reader {c.reader[:2]} with a temporary there: "
                                        f"{rr.stderr.strip().splitlines()[-1:]}")
                aged = []
                if a.aged:  # as if the next run came two minutes later: the kill's temporaries are no write now
                    old = time.time() - 120
                    for t in temps:
                        try:
                            os.utime(t, (old, old))
                            aged.append(t)
                        except OSError:
                            pass
                    c.row["aged"] += len(aged)
                # a new run stopped before its first checkpoint is undone (no folder): the same command again
                rn = t2i(*(c.again if c.info is None or Path(c.info).is_dir() else c.argv))
                if rn.returncode:
                    c.row["next_failed"] += 1
                    problems.append(f"{what}: next run {c.again[:2]}: {rn.stderr.strip().splitlines()[-1:]}")
                bad, temps_after = survey(c.roots)
                c.row["removed"] += sum(not os.path.lexists(t) for t in aged)
                c.row["temps_after"] += bool(temps_after)
                problems += [f"{c.name}: an export's journal left after the next run: {j}" for root in c.roots
                             if root.is_dir() for j in root.rglob(".t2i-export.json")]
                c.row["broken_after"] += bool(bad)
                problems += [f"{what}: after the next run: {b}" for b in bad]
                problems += [f"{what}: temporary left after the next run: {t}" for t in temps_after]
        cols = list(cases[0].row)
        print(f"{'command':36} " + " ".join(f"{k:>12}" for k in cols))
        for c in cases:
            print(f"{c.name:36} " + " ".join(f"{c.row[k]:>12}" for k in cols))
        print(f"problems seen: {len(problems)}")
        for p in problems:
            print(" ", p.replace(str(w), "W"))
    finally:
        shutil.rmtree(w, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
