#!/usr/bin/env bash
# Whether a command's images are the same at --threads 1 and 2 (plain decoding unless given other options): each of
# --n N images of PROMPT drawn at seed SEED both ways, compared by the codes their PNGs record (how many differ, the
# first position), then `generate --from` of a differing one at the other thread count, to show what it says.
#   bench/thread_bytes.sh [PROMPT="a red bird and a blue fish"] [N=8] [SEED=9] [-- more generate options]
set -u
cd "$(dirname "$0")/.." || exit 1
PROMPT=${1:-a red bird and a blue fish} N=${2:-8} SEED=${3:-9}
shift $(( $# < 3 ? $# : 3 )); [ "${1:-}" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t2i() { PYTHONPATH=src .venv/bin/python -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo "# generate \"$PROMPT\" --n $N --seed $SEED $* --threads 1 / 2"
for t in 1 2; do t2i generate "$PROMPT" --n "$N" --seed "$SEED" "$@" --threads "$t" --out "$work/t$t" -q >/dev/null || exit 1; done
PYTHONPATH=src .venv/bin/python - "$work" <<'PY'
import sys
from pathlib import Path

from t2i_cli.image_prompt import recorded_codes
from t2i_cli.images import read_png_text

work = Path(sys.argv[1])
for one in sorted((work / "t1").glob("*.png")):
    a = recorded_codes(read_png_text(one), 256, 1 << 16)
    b = recorded_codes(read_png_text(work / "t2" / one.name), 256, 1 << 16)
    differ = (a != b).nonzero().flatten().tolist()
    same_bytes = one.read_bytes() == (work / "t2" / one.name).read_bytes()
    print(f"{one.name}: {'same bytes' if same_bytes else 'other bytes'}, "
          + (f"{len(differ)} of 256 codes differ, the first at {differ[0]}" if differ else "the same codes"))
    if differ:
        (work / "differ").write_text(str(work / "t2" / one.name))
PY
if [ -f "$work/differ" ]; then
    echo "# generate --from (a --threads 2 picture) --threads 1:"
    t2i generate --from "$(cat "$work/differ")" --threads 1 --out "$work/from" 2>&1 | sed "s#$work/##g"
fi
