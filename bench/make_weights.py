"""`make weights`: train every stage of the default model from scratch, evaluate it, write weights/.

Each stage is one `t2i` command (printed before it runs, so the model card's recipe is exact), run in
runs/default/<stage>. A stage whose run folder already finished is skipped; an unfinished one resumes.
Wall time per stage goes to runs/default/timings.json for the model card.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "default"
T2I = [sys.executable, "-m", "t2i_cli"]

STAGES = [
    ("tokenizer", ["train", "--stage", "tokenizer", "--data", "world:train"]),
    ("dvae", ["train", "--stage", "dvae", "--data", "world:train", "--sample-every", "250"]),
    ("transformer", ["train", "--stage", "transformer", "--data", "world:train", "--sample-every", "250",
                     "--dvae", str(RUNS / "dvae"), "--tokenizer", str(RUNS / "tokenizer")]),
    ("clip", ["train", "--stage", "clip", "--data", "world:train", "--tokenizer", str(RUNS / "tokenizer")]),
    # The decoder alone, on the frozen encoder's codes: sharper images, and the transformer stays valid.
    ("dvae-decoder", ["train", "--stage", "dvae", "--finetune-decoder", "--dvae", str(RUNS / "dvae"),
                      "--steps", "1000", "--lr", "5e-4", "--sample-every", "250", "--data", "world:train"]),
]


def finished(run: Path, stage: str) -> bool:
    """A stage is done when its final model (or tokenizer) is written and its last step logged."""
    if stage == "tokenizer":
        return (run / "tokenizer.json").is_file()
    cfg_path, metrics = run / "train_config.json", run / "metrics.jsonl"
    if not (cfg_path.is_file() and metrics.is_file() and metrics.read_text().strip()):
        return False
    last = json.loads(metrics.read_text().strip().splitlines()[-1])
    return last["step"] >= json.loads(cfg_path.read_text())["steps"]


def run(args: list[str]) -> None:
    """Run one t2i command, echoing it."""
    print("+ t2i " + " ".join(args), flush=True)
    subprocess.run(T2I + args, check=True, cwd=ROOT)


def main() -> None:
    timings_path = RUNS / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    for stage, args in STAGES:
        out = RUNS / stage
        if finished(out, stage):
            print(f"= {stage}: already trained in {out}", flush=True)
            continue
        start = time.time()
        run(["train", "--resume", str(out)] if (out / "train_config.json").is_file() else args + ["--out", str(out)])
        timings[stage] = timings.get(stage, 0.0) + time.time() - start
        RUNS.mkdir(parents=True, exist_ok=True)
        timings_path.write_text(json.dumps(timings, indent=2))
    # The fine-tuned decoder's dvae.safetensors is exported last, replacing the transformer run's copy.
    run(["export", str(RUNS / "transformer"), str(RUNS / "clip"), str(RUNS / "dvae-decoder"), "--to", "weights",
         "--half", "--force"])
    if not (ROOT / "weights" / "judge.safetensors").is_file():  # the eval's independent judge
        print("+ python bench/validate_judge.py weights/judge.safetensors", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "validate_judge.py"), "weights/judge.safetensors"],
                       check=True, cwd=ROOT)
    run(["eval", "--weights", "weights", "--json", "weights/eval.json"])
    print(f"stage wall times (s): {json.dumps(timings)}")


if __name__ == "__main__":
    main()
