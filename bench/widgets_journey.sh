#!/usr/bin/env bash
# A user's journey on the widgets folder (bench/make_widgets_folder.py: 874 uncaptioned pictures, Qt's Fluent widget
# skins in a light and a dark theme, Matplotlib's toolbar icons and sample pictures, Sphinx's theme images, Gmsh's
# documentation figures), following the README: `t2i data caption` (--dry-run first), `data preview`, one whole run
# of the tiny preset (wall and CPU time of each stage), `t2i info`, `t2i eval --data`, generate, rerank, vary,
# `generate --from`; the same whole run stopped by Ctrl-C (SIGINT) in its dVAE stage, resumed, and compared byte for
# byte; then a folder of the odd files a user's folder holds (a truncated PNG, an empty file, text and a web page
# under a picture's name, a Git LFS pointer, a 92-megapixel PNG, a 48-megapixel JPEG, a wholly transparent picture,
# a name with spaces and an emoji, an empty caption) through `data preview --list-skipped`, `vary` and `rerank`,
# and a read-only output folder. One thread, niced, so it can share a machine.
#   bench/widgets_journey.sh [STEPS=dvae=600,transformer=300,clip=200] [WHEELS=/opt/pypi/files] [WORK=mktemp]
set -eu -o pipefail
cd "$(dirname "$0")/.." || exit 1
STEPS=${1:-dvae=600,transformer=300,clip=200}
WHEELS=${2:-/opt/pypi/files}
work=${3:-$(mktemp -d)}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=src OMP_NUM_THREADS=1
t2i() { nice $PY -m t2i_cli "$@" 2>&1 | sed "s|$work/||g"; }
timed() {  # timed LABEL CMD...: the command's output, then its wall and CPU seconds
    local label=$1; shift
    /usr/bin/time -f "$label: wall %e s, CPU %U s user + %S s system" -o "$work/time" nice "$@" > "$work/out.log" 2>&1 \
        || true
    sed "s|$work/||g" "$work/out.log"; cat "$work/time"
}
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) steps=$STEPS;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc --all) CPUs"
[ -e "$work/ro" ] && { chattr -i "$work/ro" 2>/dev/null || true; chmod 755 "$work/ro"; }
rm -rf "$work/f" "$work/run" "$work/run-int" "$work/out" "$work/out2" "$work/odd" "$work/ro" "$work"/*.png
$PY bench/make_widgets_folder.py "$work/f" --wheels "$WHEELS" | sed "s|$work/||g"
echo "\$ t2i data caption f --dry-run   (a few of its lines)"
t2i data caption "$work/f" --dry-run | sed -n '1,3p;200p;430p;806,809p;$p' | sed 's|^f/||'
echo "\$ t2i data caption f"
t2i data caption "$work/f" | tail -1
echo "\$ t2i data preview f"
t2i data preview "$work/f" --out "$work/preview.png"
echo "\$ t2i train --stage all --preset tiny --data f --out run --steps $STEPS --sample-every 100 --threads 1 --quiet"
timed "whole run" $PY -m t2i_cli train --stage all --preset tiny --data "$work/f" --out "$work/run" --steps "$STEPS" \
    --sample-every 100 --threads 1 --quiet
echo "# each stage's wall time, from its metrics (first to last logged step)"
$PY - "$work/run" <<'PYEOF'
import json
import sys
from pathlib import Path

for stage in ("dvae", "transformer", "clip"):
    rows = [json.loads(line) for line in open(Path(sys.argv[1]) / stage / "metrics.jsonl")]
    times = [r["time"] for r in rows if "time" in r]
    steps = [r["step"] for r in rows if "step" in r]
    if times:
        print(f"  {stage}: steps {min(steps)}-{max(steps)} in {max(times) - min(times):.1f} s")
PYEOF
COLUMNS=120 t2i info "$work/run"
echo "\$ t2i eval --data f --weights run/weights --threads 1"
timed "eval --data" $PY -m t2i_cli eval --data "$work/f" --weights "$work/run/weights" --threads 1
echo "\$ t2i generate \"slider handle pressed\" --n 4 --grid ... ; t2i rerank out"
t2i generate "slider handle pressed" --n 4 --grid --weights "$work/run/weights" --seed 0 --out "$work/out" --threads 1
t2i generate "home" --weights "$work/run/weights" --seed 0 --out "$work/out" --threads 1
t2i rerank "$work/out" --weights "$work/run/weights" --threads 1 | tail -12
echo "\$ t2i vary f/matplotlib/samples/grace_hopper.jpg --n 2 --prompt 'grace hopper' ...; generate --from"
t2i vary "$work/f/matplotlib/samples/grace_hopper.jpg" --n 2 --prompt "grace hopper" --weights "$work/run/weights" \
    --seed 0 --out "$work/out" --threads 1
t2i generate --from "$work/out/slider-handle-pressed-002.png" --weights "$work/run/weights" --out "$work/out2" \
    --threads 1
cmp -s "$work/out2/slider-handle-pressed-000.png" "$work/out/slider-handle-pressed-002.png" \
    && echo "out2/slider-handle-pressed-000.png: the same bytes as out/slider-handle-pressed-002.png"
echo "# the same whole run again, Ctrl-C (SIGINT) once its dVAE has logged step 200, then resumed"
set -m  # (a background job of a script ignores SIGINT without job control)
nice $PY -m t2i_cli train --stage all --preset tiny --data "$work/f" --out "$work/run-int" --steps "$STEPS" \
    --sample-every 100 --threads 1 --quiet > "$work/int.log" 2>&1 &
pid=$!
until grep -qs '"step": 200' "$work/run-int/dvae/metrics.jsonl"; do sleep 0.1; done
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
set +m
grep -v "^warning: skipped" "$work/int.log" | sed "s|$work/||g"; echo "exit $rc"
COLUMNS=120 t2i info "$work/run-int" | grep -E "dvae|next"
t2i train --resume "$work/run-int" --quiet | grep -v "^all stages finished\|^warning" || true
for m in tokenizer.json dvae.safetensors transformer.safetensors clip.safetensors; do
    cmp -s "$work/run-int/weights/$m" "$work/run/weights/$m" && echo "run-int/weights/$m: the same bytes as run's" \
        || echo "run-int/weights/$m DIFFERS from run's"
done
echo "# the dVAE alone, as its collapse warning suggests: 600 steps at the preset's lr (1e-3) and at 1e-4, and 2400"
for arm in "600 1e-3" "600 1e-4" "2400 1e-3"; do
    set -- $arm
    rm -rf "$work/d-$1-$2"
    timed "dVAE $1 steps, lr $2" $PY -m t2i_cli train --stage dvae --preset tiny --data "$work/f" --out "$work/d-$1-$2" \
        --steps "$1" --lr "$2" --threads 1 --quiet | grep -v "^run folder\|^warning: skipped" \
        | sed -E 's/^dvae stage finished: .*"recon_l1": ([0-9.e-]+).*"out_std": ([0-9.e-]+), "perplexity": ([0-9.]+), "codes_used": ([0-9.]+).*/  end: L1 \1, out_std \2, perplexity \3, codes used \4/'
done
COLUMNS=120 t2i info "$work/d-600-1e-3" | grep -E "dvae|codebook|decoder" || true
echo "# a folder of odd files: the 21 toolbar icons, captioned, and what a user's folder holds beside them"
mkdir -p "$work/odd"
for p in "$work"/f/matplotlib/toolbar/*.png; do cp "$p" "${p%.png}.txt" "$work/odd/"; done
$PY - "$work/odd" <<'PYEOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

odd = Path(sys.argv[1])
good = (odd / "home_large.png").read_bytes()
files = {
    "truncated bird.png": good[: len(good) // 2],
    "empty.jpg": b"",
    "notes.png": b"this is not a picture\n",
    "saved page.jpg": b"<!DOCTYPE html>\n<html><head><title>bird</title></head><body></body></html>\n",
    "lfs bird.png": b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 12345\n",
}
for name, data in files.items():
    (odd / name).write_bytes(data)
Image.new("RGB", (9600, 9600), (200, 30, 30)).save(odd / "huge red.png")  # 92 megapixels
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, (6000, 8000, 3), dtype=np.uint8)).save(odd / "big noise.jpg", quality=80)
Image.new("RGBA", (64, 64), (255, 255, 255, 0)).save(odd / "clear.png")
Image.new("RGB", (64, 64), (120, 70, 20)).save(odd / "café au lait ☕.png")
Image.new("RGB", (64, 64), (0, 200, 0)).save(odd / "green.png")
captions = {"truncated bird": "a truncated bird", "empty": "an empty file", "notes": "some notes",
            "saved page": "a saved page", "lfs bird": "a bird", "huge red": "a huge red square",
            "big noise": "big noise", "clear": "nothing", "café au lait ☕": "café au lait", "green": ""}
for stem, caption in captions.items():
    (odd / f"{stem}.txt").write_text(caption + "\n" if caption else "")
print(f"{len(list(odd.glob('*.png')))} .png and {len(list(odd.glob('*.jpg')))} .jpg in odd: the toolbar icons and "
      + ", ".join(captions))
PYEOF
echo "\$ t2i data preview odd --list-skipped"
timed "data preview odd" $PY -m t2i_cli data preview "$work/odd" --out "$work/odd-preview.png" --list-skipped
for f in "truncated bird.png" "notes.png" "saved page.jpg" "lfs bird.png" "empty.jpg" "huge red.png" "big noise.jpg" \
         "clear.png" "café au lait ☕.png"; do
    echo "\$ t2i vary 'odd/$f' --n 1"
    t2i vary "$work/odd/$f" --n 1 --weights "$work/run/weights" --seed 0 --out "$work/out2" --threads 1 \
        || echo "exit $?"
done
echo "# what a user gives --data by mistake: the download's .zip, a folder holding only it, one picture, and a folder"
echo "# captioned by kohya-ss (PIC.caption files)"
rm -rf "$work/odd.zip" "$work/dl" "$work/kohya"
(cd "$work" && $PY -m zipfile -c odd.zip odd/home.png odd/home.txt)
mkdir -p "$work/dl" "$work/kohya/10_icon"
cp "$work/odd.zip" "$work/dl/"
for p in "$work"/odd/*_large.png; do s=$(basename "${p%.png}"); cp "$p" "$work/kohya/10_icon/"; \
    cp "$work/odd/$s.txt" "$work/kohya/10_icon/$s.caption"; done
for d in odd.zip dl odd/home.png kohya; do
    echo "\$ t2i train --stage all --preset tiny --data $d --out run-x"
    t2i train --stage all --preset tiny --data "$work/$d" --out "$work/run-x" || echo "exit $?"
done
echo "\$ t2i rerank odd --bits"
t2i rerank "$work/odd" --bits --weights "$work/run/weights" --threads 1 | grep -v "^ \|^prompt\|^$" || true
echo "# a read-only output folder (chattr +i, which binds root too; else chmod 555)"
mkdir -p "$work/ro"
chattr +i "$work/ro" 2>/dev/null || chmod 555 "$work/ro"
t2i generate "home" --weights "$work/run/weights" --out "$work/ro" --threads 1 || echo "exit $?"
t2i generate "home" --weights "$work/run/weights" --out "$work/ro/sub" --threads 1 || echo "exit $?"
t2i data preview "$work/odd" --out "$work/ro/p.png" 2>&1 | grep -v "^warning" || echo "exit $?"
t2i train --stage tokenizer --data "$work/odd" --out "$work/ro/run" --quiet 2>&1 | grep -v "^warning" || echo "exit $?"
chattr -i "$work/ro" 2>/dev/null || chmod 755 "$work/ro"
echo "# work folder: $work"
