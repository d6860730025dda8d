#!/usr/bin/env bash
# Cold-start cost of one CLI call: runs
#   /usr/bin/time -v .venv/bin/t2i generate "a red bird" --seed 0 --out <fresh temp dir> --quiet
# RUNS times (default 5) and prints the median wall seconds and the max resident set size (MB).
# Uses the weights the CLI would use ($T2I_WEIGHTS, else the shipped folder); exits 1 when there are none.
#   bench/bench_cold_generate.sh
#   T2I_WEIGHTS=/tmp/tinyw RUNS=3 bench/bench_cold_generate.sh
#   ARGS="--candidates 1 --precision bf16 --jacobi 16" bench/bench_cold_generate.sh   # other settings
set -u
cd "$(dirname "$0")/.." || exit 1
RUNS=${RUNS:-5}
T2I=.venv/bin/t2i
TIME=/usr/bin/time

if [ ! -x "$T2I" ]; then
    echo "error: $T2I not found; run \`make install\` first" >&2
    exit 1
fi
if [ ! -x "$TIME" ]; then
    echo "/usr/bin/time is missing (GNU time, needed for -v); trying: apt-get install -y time" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q time >/dev/null 2>&1; }; fi
    if [ ! -x "$TIME" ]; then
        echo "error: could not install it; run: sudo apt-get install time  (Debian/Ubuntu)" >&2
        exit 1
    fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
walls=()
rss_max_kb=0
for i in $(seq "$RUNS"); do
    out=$(mktemp -d "$work/out.XXXX")
    # shellcheck disable=SC2086  # ARGS is a list of options, split on purpose
    if ! "$TIME" -v -o "$work/time.$i" "$T2I" generate "a red bird" --seed 0 --out "$out" --quiet ${ARGS:-} \
            >"$work/stdout.$i" 2>"$work/stderr.$i"; then
        if grep -qi "weights" "$work/stderr.$i"; then
            echo "error: t2i generate found no usable weights, so there is nothing to time:" >&2
        else
            echo "error: t2i generate failed (run $i):" >&2
        fi
        sed 's/^/  /' "$work/stderr.$i" >&2
        echo "  (train them with \`make weights\`, or point T2I_WEIGHTS at a weights folder)" >&2
        exit 1
    fi
    if ! ls "$out"/*.png >/dev/null 2>&1; then
        echo "error: run $i exited 0 but wrote no PNG into $out" >&2
        exit 1
    fi
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:02.31"  ->  seconds
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + a[j]; printf "%.3f", s}' "$work/time.$i")
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$i")
    walls+=("$wall")
    [ "$rss_kb" -gt "$rss_max_kb" ] && rss_max_kb=$rss_kb
    printf 'run %d: %s s, max RSS %.0f MB\n' "$i" "$wall" "$(awk -v k="$rss_kb" 'BEGIN {print k / 1024}')"
done

median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2}')
weights=${T2I_WEIGHTS:-weights (shipped)}
echo "t2i generate \"a red bird\" --seed 0 --quiet ${ARGS:-}, weights: $weights, $RUNS runs, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'median wall: %s s; max resident: %.0f MB\n' "$median" "$(awk -v k="$rss_max_kb" 'BEGIN {print k / 1024}')"
