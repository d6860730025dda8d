# Shared by the old-against-new bench scripts (source it after `cd` to the repository root and setting OLD):
#   ab_start               makes $work (removed on exit) with a git worktree of $OLD at $work/old, and sets PY
#   ab_src BUILD           the src folder of BUILD (old or new), for PYTHONPATH
#   ab_record BUILD R WALL KB   prints one run's line and keeps it for ab_summary
#   ab_summary [DIGITS]    each build's median wall seconds (DIGITS decimals, default 2) and peak RSS
#   ab_generate BUILD OUT ARGS...   a cold t2i generate ARGS of BUILD into OUT; prints its wall seconds
ab_start() {
    PY=.venv/bin/python
    work=$(mktemp -d)
    trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
    git worktree add --detach "$work/old" "$OLD" >/dev/null 2>&1
}

ab_src() {
    if [ "$1" = old ]; then echo "$work/old/src"; else echo src; fi
}

ab_record() {
    echo "$1 $2 $3 s $(($4 / 1024)) MB"
    echo "$1 $3 $(($4 / 1024))" >> "$work/all"
}

ab_summary() {
    $PY - "$work/all" "${1:-2}" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for build in ("old", "new"):
    walls = [float(w) for b, w, _ in rows if b == build]
    mbs = [int(m) for b, _, m in rows if b == build]
    print(f"{build}: median {statistics.median(walls):.{sys.argv[2]}f} s, peak RSS {max(mbs)} MB")
PY
}

ab_generate() {  # BUILD OUT ARGS... : a cold `t2i generate ARGS --quiet --out OUT` of BUILD (OUT emptied first); prints its wall seconds
    local src=$(ab_src "$1") out=$2 t0 t1
    shift 2
    rm -rf "$out"
    t0=$(date +%s.%N)
    PYTHONPATH=$src $PY -m t2i_cli generate "$@" --quiet --out "$out" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
