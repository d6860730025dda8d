#!/usr/bin/env bash
# A user's journey on the formats folder (bench/make_formats_folder.py: 137 uncaptioned pictures in 13 formats from
# pygame, scikit-learn, Matplotlib, Tk and /usr/share/pixmaps): caption them by name, preview, one whole run of the
# tiny preset with few steps, `t2i info`, `t2i eval --data`, generate, rerank the user's own sprites; then convert
# the pictures t2i named as unread (PPM, PNM, PGM, PCX, TGA, XPM) to PNG as it says, caption the new ones, extend the
# transformer on them and export. One thread, so it can share a machine.
#   bench/formats_journey.sh [STEPS=dvae=150,transformer=150,clip=100] [WHEELS=/opt/pypi/files] [WORK=mktemp]
set -eu
cd "$(dirname "$0")/.." || exit 1
STEPS=${1:-dvae=150,transformer=150,clip=100}
WHEELS=${2:-/opt/pypi/files}
work=${3:-$(mktemp -d)}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=src
t2i() { OMP_NUM_THREADS=1 $PY -m t2i_cli "$@" 2>&1 | sed "s|$work/||g"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) steps=$STEPS;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
rm -rf "$work/f" "$work/run" "$work/out" "$work/sprites"
$PY bench/make_formats_folder.py "$work/f" --wheels "$WHEELS" | sed "s|$work/||g"
echo "\$ t2i data caption f --dry-run   (the warning line)"
t2i data caption "$work/f" --dry-run | tail -2
echo "\$ t2i data caption f"
t2i data caption "$work/f" | tail -1
echo "\$ t2i data preview f"
t2i data preview "$work/f" --out "$work/preview.png"
start=$(date +%s)
echo "\$ t2i train --stage all --preset tiny --data f --out run --steps $STEPS --sample-every 50 --quiet"
t2i train --stage all --preset tiny --data "$work/f" --out "$work/run" --steps "$STEPS" --sample-every 50 --quiet
echo "# whole run: $(( $(date +%s) - start )) s"
COLUMNS=120 t2i info "$work/run"
COLUMNS=200 t2i eval --data "$work/f" --weights "$work/run/weights" --threads 1
echo "\$ t2i generate \"red\" --n 4 ... ; t2i rerank out"
t2i generate "red" --n 4 --weights "$work/run/weights" --seed 0 --out "$work/out" --threads 1 --quiet
t2i rerank "$work/out" --weights "$work/run/weights" --threads 1 | tail -7
echo "\$ t2i rerank sprites   (a copy of f/pygame: each sprite against its own caption; the first two prompts)"
cp -r "$work/f/pygame" "$work/sprites"
t2i rerank "$work/sprites" --weights "$work/run/weights" --threads 1 | head -13
echo "# convert what t2i named as unread to PNG (Pillow), caption the new pictures, extend the transformer, export"
$PY - "$work/f" <<'EOF'
import sys
from pathlib import Path

from PIL import Image

for p in sorted(Path(sys.argv[1]).rglob("*")):
    if p.suffix.lower() in (".pcx", ".ppm", ".pgm", ".pnm", ".tga", ".xpm"):
        try:
            with Image.open(p) as im:
                im.save(p.with_suffix(".png"))
            p.unlink()
        except (OSError, ValueError) as e:
            print(f"{p.name}: Pillow cannot convert it ({e})")
EOF
t2i data caption "$work/f" | tail -1
t2i train --resume "$work/run" --quiet
t2i train --resume "$work/run/transformer" --steps 300 --quiet
t2i train --resume "$work/run" --quiet
COLUMNS=200 t2i eval --data "$work/f" --weights "$work/run/weights" --threads 1 | head -9
echo "# work folder: $work"
