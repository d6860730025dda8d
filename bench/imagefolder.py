"""A Hugging Face imagefolder read as a folder source (t2i 0.15.0): the same real pictures and captions laid out
six ways, and what t2i reads of each.

From a folder of pictures with .txt captions (bench/make_icon_folder.py's GNOME icons: real pictures t2i did not
draw), split by a hash of each name into two sub-folders (`a/`, `b/`, as a dataset's train/test folders):
  txt    sub/NAME.png + sub/NAME.txt (the layout t2i always read)
  jsonl  sub/NAME.png + sub/metadata.jsonl of {"file_name": "NAME.png", "text": caption} (imagefolder's layout)
  csv    NAME.png in the sub-folders + one metadata.csv at the top naming "sub/NAME.png" (file_name,text)
  both   the txt layout and the jsonl manifests, the same captions in both places
  caption  sub/metadata.csv of file_name,caption (the caption column diffusers' scripts also write; read since
         0.16.0)
  prompt   sub/metadata.jsonl of {"file_name", "prompt"} (diffusers' convert_to_imagefolder.py; since 0.16.0)
For each: the pairs data.open_source reads (picture path relative to the folder, captions) against txt's, the
validation split against txt's, the warning, the median time to open the folder (in this process), and, with
--steps, a `t2i train --stage dvae --preset tiny` run of that many steps (the CLI in a subprocess): its logged
losses and a hash of its weights' values against txt's run; with --rerank, `t2i rerank FOLDER` (the shipped weights,
each picture scored against its own caption: a manifest's since 0.16.0, .txt only before) on a copy of each layout:
its pictures ranked and their prompts and scores against txt's.

Usage: python bench/imagefolder.py ICONS OUT [--reps 3] [--steps 40] [--rerank]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from t2i_cli import data


def layouts(icons: Path, out: Path) -> dict[str, Path]:
    pictures = sorted(p for p in icons.glob("*.png") if p.with_suffix(".txt").is_file())
    if out.exists():
        shutil.rmtree(out)
    made = {kind: out / kind for kind in ("txt", "jsonl", "csv", "both", "caption", "prompt")}
    rows: dict[str, list[tuple[str, str]]] = {"a": [], "b": []}
    for p in pictures:
        sub = "ab"[hashlib.sha256(p.stem.encode()).digest()[0] & 1]
        caption = p.with_suffix(".txt").read_text(encoding="utf-8").strip()
        rows[sub].append((p.name, caption))
        for kind, folder in made.items():
            (folder / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, folder / sub / p.name)
            if kind in ("txt", "both"):
                (folder / sub / p.with_suffix(".txt").name).write_text(caption + "\n", encoding="utf-8")
    for sub, items in rows.items():
        for kind in ("jsonl", "both"):
            with open(made[kind] / sub / "metadata.jsonl", "w", encoding="utf-8") as f:
                for name, caption in items:
                    f.write(json.dumps({"file_name": name, "text": caption}) + "\n")
        with open(made["prompt"] / sub / "metadata.jsonl", "w", encoding="utf-8") as f:
            for name, caption in items:
                f.write(json.dumps({"file_name": name, "prompt": caption}) + "\n")
        with open(made["caption"] / sub / "metadata.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file_name", "caption"])
            w.writerows(items)
    with open(made["csv"] / "metadata.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "text"])
        for sub, items in rows.items():
            w.writerows((f"{sub}/{name}", caption) for name, caption in items)
    return made


def read(folder: Path, part: str) -> tuple[list[tuple[str, tuple[str, ...]]], str | None]:
    ds = data.open_source(str(folder), 64, part=part)
    pairs = [(os.path.relpath(ds.file_of(i), folder), tuple(ds.captions_at(i))) for i in range(len(ds))]
    return pairs, ds.skipped_message()


def losses(folder: Path, out: Path, steps: int) -> tuple[list[float], str]:
    run = out / f"run-{folder.name}"
    cmd = [sys.executable, "-m", "t2i_cli", "train", "--stage", "dvae", "--data", str(folder), "--preset", "tiny",
           "--steps", str(steps), "--out", str(run), "--quiet", "--workers", "0"]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(run / "metrics.jsonl", encoding="utf-8") as f:
        logged = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    from safetensors.torch import load_file

    tensors = load_file(run / "dvae.safetensors")
    digest = hashlib.sha256(b"".join(tensors[k].float().numpy().tobytes() for k in sorted(tensors))).hexdigest()
    return logged, digest[:16]


def reranked(folder: Path, out: Path) -> tuple[list[tuple[str, str, float]], str]:
    copy = out / f"rerank-{folder.name}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(folder, copy)
    done = subprocess.run([sys.executable, "-m", "t2i_cli", "rerank", str(copy), "--quiet"], capture_output=True,
                          text=True)
    if done.returncode != 0:
        return [], (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1][:200]
    rows = []
    for sub in sorted(copy.rglob("ranking.json")):
        rows += [(os.path.relpath(copy / sub.parent / r["file"], copy), r["prompt"], r["score"])
                 for r in json.loads(sub.read_text(encoding="utf-8"))]
    return sorted(rows), ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("icons", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rerank", action="store_true")
    a = ap.parse_args()
    made = layouts(a.icons, a.out)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}, {a.icons}, reps {a.reps}, dVAE steps {a.steps}")
    base_all, _ = read(made["txt"], "all")
    base_val, _ = read(made["txt"], "val")
    base_losses = losses(made["txt"], a.out, a.steps) if a.steps else ([], "")
    base_ranked = reranked(made["txt"], a.out)[0] if a.rerank else []
    for kind, folder in made.items():
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            pairs, said = read(folder, "all")
            times.append(time.perf_counter() - t)
        val, _ = read(folder, "val")
        print(f"{kind:7}: {len(pairs)} pairs, the same as txt's: {pairs == base_all}; validation {len(val)}, the "
              f"same: {val == base_val}; open median {statistics.median(times):.3f} s "
              f"({', '.join(f'{x:.3f}' for x in times)})")
        print(f"       warning: {said}")
        if a.steps:
            got = base_losses if kind == "txt" else losses(folder, a.out, a.steps)
            print(f"       dVAE {a.steps} steps: logged losses {', '.join(f'{x:.4f}' for x in got[0])}, weights "
                  f"{got[1]}; the same as txt's run: {got == base_losses}")
        if a.rerank:
            ranked, failed = (base_ranked, "") if kind == "txt" else reranked(folder, a.out)
            print(f"       rerank: {len(ranked)} pictures scored against their captions, the same files, prompts and "
                  f"scores as txt's: {ranked == base_ranked}" + (f"; {failed}" if failed else ""))


if __name__ == "__main__":
    main()
