"""`make weights`: train every stage of a model from scratch, evaluate it (both eval seeds), export it to
RUNS/weights (runs/PRESET/weights by default; the shipped weights/ only when named: --to weights).

Each stage is one `t2i` command (printed before it runs, so the model card's recipe is exact), run in
RUNS/<stage>. A stage whose run folder already finished is skipped; an unfinished one resumes. Wall time
per stage goes to RUNS/timings.json for the model card.

    python bench/make_weights.py                       # the CPU recipe: preset default, one stage at a time
    python bench/make_weights.py --preset large --device cuda --workers 11 --side-workers 4 --parallel \
        --budget dvae=270 --budget transformer=690 --to weights   # how the shipped weights were trained

--parallel trains CLIP beside the dVAE and the decoder fine-tune beside the transformer (each needs only
what is already trained); --side-workers is the DataLoader workers of those side stages. --budget
STAGE=SECONDS first runs a short probe of that stage and sets its steps to what fits the seconds at the
measured rate (rounded down to 100; the printed command carries the explicit --steps). The recipe trains
two rerankers, the CLIP stage and the same command from seed 1 (stage clip-2), and exports both (the second as
clip-2.safetensors, averaged with the first); --clips 1 trains and exports the first alone. --clip FILE,
given once per reranker, skips the CLIP stages and exports those rerankers instead: the CLIP stage is the
same for every preset, so rerankers this recipe already trained (the shipped weights/clip.safetensors and
clip-2.safetensors, on the same tokenizer) save 13-18 minutes of CPU each; the tokenizer file must be byte
for byte the one they were trained with.
--stage-args "STAGE=ARGS" appends t2i train arguments to one stage's command (a later --model wins), e.g.
the recipe with the FSQ dVAE the default preset trains on a folder, instead of the Gumbel-softmax codebook it
trains on the world (BENCHMARKS.md "The CPU recipe: FSQ against Gumbel-softmax"):

    python bench/make_weights.py --runs /tmp/fsq --to /tmp/fsq/weights --clip weights/clip.safetensors \
        --clip weights/clip-2.safetensors --stage-args "dvae=--model fsq_levels=8,5,5,5"
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T2I = [sys.executable, "-m", "t2i_cli"]
PROBE_STEPS = 150
FT_STEPS = {"default": ("1000", "5e-4"), "large": ("3000", "5e-4")}


def stage_args(runs: Path, preset: str) -> dict[str, list[str]]:
    """The t2i train arguments of each stage (without --out, --device, --workers)."""
    ft_steps, ft_lr = FT_STEPS.get(preset, FT_STEPS["default"])
    common = ["--data", "world:train", "--preset", preset]
    return {
        "tokenizer": ["train", "--stage", "tokenizer", *common],
        # On the world the default preset's dVAE is DALL-E's Gumbel-softmax codebook of 512 (stages.ON_WORLD; on a
        # folder it is FSQ): in the same recipe, FSQ's better dVAE gave a lower `t2i eval` on both seeds
        # (BENCHMARKS.md "The CPU recipe: FSQ against Gumbel-softmax").
        "dvae": ["train", "--stage", "dvae", *common, "--sample-every", "500"],
        "transformer": ["train", "--stage", "transformer", *common, "--sample-every", "1000",
                        "--dvae", str(runs / "dvae"), "--tokenizer", str(runs / "tokenizer")],
        # The reranker (the same for every preset): a word-region CLIP at 64 px trained against hard
        # negatives (13 minutes on 2 CPU cores; weights/README.md).
        "clip": ["train", "--stage", "clip", *common, "--tokenizer", str(runs / "tokenizer"), "--image-side", "64",
                 "--hard-negatives", "--model", "word_region=true", "--steps", "2400", "--batch-size", "64",
                 "--sample-every", "400"],
        # "clip-2", the second reranker, is the same command (with its --stage-args and --budget) from seed 1:
        # main() makes it; reranking averages the two (weights/README.md).
        # The decoder alone, on the frozen encoder's codes: sharper images, and the transformer stays valid.
        "dvae-decoder": ["train", "--stage", "dvae", "--finetune-decoder", "--dvae", str(runs / "dvae"),
                         "--steps", ft_steps, "--lr", ft_lr, "--sample-every", "500", *common],
    }


def merged(args: list[str], more: list[str]) -> list[str]:
    """args with more's options after them, the later value winning: t2i refuses an option given twice with
    different values (`--sample-every 500 ... --sample-every 0`), so one already there takes the new value in
    place; a flag already there is kept once; --model, which t2i takes many times, is added."""
    out, i = list(args), 0
    while i < len(more):
        name = more[i]
        value = more[i + 1] if i + 1 < len(more) and not more[i + 1].startswith("--") else None
        i += 1 if value is None else 2
        if name.startswith("--") and name != "--model" and name in out:
            at = out.index(name)
            if value is not None and at + 1 < len(out):
                out[at + 1] = value
            continue
        out += [name] if value is None else [name, value]
    return out


def finished(run: Path, stage: str) -> bool:
    """A stage is done when its final model (or tokenizer) is written and its last step logged."""
    if stage == "tokenizer":
        return (run / "tokenizer.json").is_file()
    cfg_path, metrics = run / "train_config.json", run / "metrics.jsonl"
    if not (cfg_path.is_file() and metrics.is_file() and metrics.read_text().strip()):
        return False
    last = json.loads(metrics.read_text().strip().splitlines()[-1])
    return last["step"] >= json.loads(cfg_path.read_text())["steps"]


def start(args: list[str], log: Path | None = None) -> subprocess.Popen:
    """Start one t2i command, echoing it; its output goes to log when given."""
    print("+ t2i " + " ".join(args), flush=True)
    out = open(log, "a") if log else None
    return subprocess.Popen(T2I + args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if out else None)


def wait(proc: subprocess.Popen, what: str) -> None:
    if proc.wait() != 0:
        raise SystemExit(f"make_weights: {what} failed (exit {proc.returncode})")


def probe_rate(args: list[str], probe_dir: Path, extra: list[str]) -> float:
    """Steps per second of a stage, from a short run's metrics.jsonl timestamps (first logged step on)."""
    shutil.rmtree(probe_dir, ignore_errors=True)
    wait(start(merged(args + extra, ["--steps", str(PROBE_STEPS), "--log-every", "25", "--sample-every", "0",
                                     "--ckpt-every", str(PROBE_STEPS), "--out", str(probe_dir)])), "probe")
    rows = [json.loads(x) for x in (probe_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if "loss" in r]  # training steps only (since 0.12.0 a start writes its precision first)
    rate = (rows[-1]["step"] - rows[0]["step"]) / max(1e-6, rows[-1]["time"] - rows[0]["time"])
    shutil.rmtree(probe_dir, ignore_errors=True)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--runs", type=Path, default=None, help="run folders (default runs/PRESET)")
    ap.add_argument("--to", type=Path, default=None,
                    help="weights folder to export to (default RUNS/weights; --to weights replaces the shipped model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers of the main stages")
    ap.add_argument("--side-workers", type=int, default=1, help="DataLoader workers of the side stages")
    ap.add_argument("--parallel", action="store_true",
                    help="CLIP beside the dVAE, decoder fine-tune beside the transformer")
    ap.add_argument("--budget", action="append", default=[], help="STAGE=SECONDS: set that stage's steps by a probe")
    ap.add_argument("--no-eval", action="store_true", help="export, but do not run t2i eval")
    ap.add_argument("--clips", type=int, choices=(1, 2), default=2, help="rerankers to train and export")
    ap.add_argument("--clip", type=Path, action="append", default=[],
                    help="export this trained CLIP instead of training one (same tokenizer); once per reranker")
    ap.add_argument("--stage-args", action="append", default=[],
                    help="STAGE=ARGS: more t2i train arguments for one stage (shell-quoted)")
    opts = ap.parse_args()
    runs = opts.runs or ROOT / "runs" / opts.preset
    runs.mkdir(parents=True, exist_ok=True)
    opts.to = opts.to or runs / "weights"
    budgets = {k: float(v) for k, v in (b.split("=", 1) for b in opts.budget)}
    args = stage_args(runs, opts.preset)
    second: list[str] = []  # --stage-args of clip-2 alone
    for item in opts.stage_args:
        stage, sep, more = item.partition("=")
        if not sep or stage not in (*args, "clip-2"):
            raise SystemExit(f"make_weights: --stage-args {item!r}: expected STAGE=ARGS with STAGE in "
                             f"{sorted([*args, 'clip-2'])}")
        if stage == "clip-2":
            second += shlex.split(more)
        else:
            args[stage] = merged(args[stage], shlex.split(more))
    args["clip-2"] = merged(merged(args["clip"], ["--seed", "1"]), second)  # a later option wins: clip-2's own
    if "clip" in budgets:
        budgets.setdefault("clip-2", budgets["clip"])
    if opts.clip and len(opts.clip) != opts.clips:
        raise SystemExit(f"make_weights: give --clip once per reranker ({opts.clips}; --clips 1 for one), or not "
                         f"at all")
    timings_path = runs / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}

    def launch(stage: str, workers: int) -> tuple[str, subprocess.Popen, float] | None:
        out = runs / stage
        if finished(out, stage):
            print(f"= {stage}: already trained in {out}", flush=True)
            return None
        run_opts = [] if stage == "tokenizer" else ["--device", opts.device, "--quiet"]
        if (out / "train_config.json").is_file():  # a resumed run keeps its own config, workers included
            cmd = ["train", "--resume", str(out), *run_opts]
        else:
            extra = run_opts + (["--workers", str(workers)] if run_opts else [])
            cmd = args[stage] + extra
            if stage in budgets:
                rate = probe_rate(args[stage], runs / f"probe-{stage}", extra)
                steps = max(100, int(rate * budgets[stage] * 0.9) // 100 * 100)
                print(f"= {stage}: probe {rate:.2f} steps/s -> {steps} steps for {budgets[stage]:.0f} s", flush=True)
                cmd = merged(cmd, ["--steps", str(steps)])
            cmd += ["--out", str(out)]
        log = runs / f"{stage}.log" if opts.parallel else None
        return stage, start(cmd, log), time.time()

    def finish(job) -> None:
        if job is None:
            return
        stage, proc, t0 = job
        wait(proc, stage)
        timings[stage] = timings.get(stage, 0.0) + time.time() - t0
        timings_path.write_text(json.dumps(timings, indent=2))
        print(f"= {stage}: done in {time.time() - t0:.0f} s", flush=True)

    finish(launch("tokenizer", 0))
    clip_stages = ["clip", "clip-2"][:opts.clips]
    for file in opts.clip:
        tokenizer = runs / "tokenizer" / "tokenizer.json"
        beside = file.parent / "tokenizer.json"
        if not beside.is_file() or beside.read_bytes() != tokenizer.read_bytes():
            raise SystemExit(f"make_weights: --clip {file} was not trained on {tokenizer} ({beside} differs)")
    train_clips = [] if opts.clip else clip_stages
    if opts.parallel:
        side = launch("clip", opts.side_workers) if train_clips else None
        finish(launch("dvae", opts.workers))
        if side is None and "clip-2" in train_clips:  # the first reranker finished in an earlier run
            side = launch("clip-2", opts.side_workers)
        jobs = [side, launch("dvae-decoder", opts.side_workers), launch("transformer", opts.workers)]
        try:
            while any(jobs):  # each job's time taken when it ends; the second reranker starts when the first ends
                for i, job in enumerate(jobs):
                    if job is not None and job[1].poll() is not None:
                        jobs[i] = None
                        finish(job)
                        if job[0] == "clip" and "clip-2" in train_clips:
                            jobs[i] = launch("clip-2", opts.side_workers)
                time.sleep(1)
        finally:  # one failed: stop the others (each resumes from its checkpoint next time)
            for job in filter(None, jobs):
                job[1].terminate()
    else:
        for stage in ("dvae", "transformer", *train_clips, "dvae-decoder"):
            finish(launch(stage, opts.workers))
    # The fine-tuned decoder's dvae.safetensors is exported last, replacing the transformer run's copy; a second
    # CLIP run becomes clip-2.safetensors.
    export = ["export", str(runs / "transformer"), *(str(runs / c) for c in train_clips), str(runs / "dvae-decoder"),
              "--to", str(opts.to), "--half", "--force"]
    wait(start(export), "export")
    stale = opts.to / "clip-2.safetensors"
    if opts.clips == 1 and stale.is_file():  # an earlier recipe's second reranker would be averaged with this one
        print(f"+ rm {stale}", flush=True)
        stale.unlink()
    for file, name in zip(opts.clip, ("clip.safetensors", "clip-2.safetensors")[:len(opts.clip)], strict=True):
        print(f"+ cp {file} {opts.to / name}", flush=True)
        shutil.copyfile(file, opts.to / name)
    if not (opts.to / "judge.safetensors").is_file():  # the eval's independent judge
        shipped = ROOT / "weights" / "judge.safetensors"
        if shipped.is_file() and opts.to.resolve() != (ROOT / "weights").resolve():
            shutil.copyfile(shipped, opts.to / "judge.safetensors")
        else:
            print(f"+ python bench/validate_judge.py {opts.to}/judge.safetensors", flush=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / "validate_judge.py"),
                            str(opts.to / "judge.safetensors")],
                           check=True, cwd=ROOT)
    if not opts.no_eval:
        # both eval seeds in one run, as the shipped weights' eval.json (the card's tables need both)
        wait(start(["eval", "--weights", str(opts.to), "--seed", "0", "--seed", "1", "--json",
                    str(opts.to / "eval.json")]), "eval")
    print(f"stage wall times (s): {json.dumps(timings)}")


if __name__ == "__main__":
    main()
