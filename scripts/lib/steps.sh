# Shared by the scripts that chain long training runs (pretext-table.sh,
# bn-only.sh, transfer-table.sh): each run is a step that can be stopped
# (Ctrl-C, a session that ends, a machine that reboots) and picked up by
# running the script again. Source it.

# step DIR CMD...: run a `cnn train` or `cnn finetune` command with
# --out DIR, unless DIR/seconds says it finished before. A run that stopped
# part way (DIR/last.cnn without DIR/seconds) goes on from its checkpoint
# with --resume, exactly where it stopped. The wall time of every attempt
# adds up in DIR.partial; DIR/seconds gets the total once the run is done.
# An attempt killed together with this shell (a session that ends) cannot
# add its time; DIR.started, its start stamp, lets the next attempt count
# it up to its last checkpoint (the time after that was lost work anyway).
# stdout and stderr go to DIR.out and DIR.err (appended). Returns the
# command's exit status.
step() {
    local dir=$1; shift
    [ -f "$dir/seconds" ] && return 0
    local resume=() spent=0 start=$SECONDS rc=0
    if [ -f "$dir/last.cnn" ]; then
        resume=(--resume "$dir/last.cnn")
        echo "== $dir: resuming: $*" >&2
    else
        echo "== $dir: $*" >&2
    fi
    [ -f "$dir.partial" ] && spent=$(cat "$dir.partial")
    if [ -f "$dir.started" ] && [ -f "$dir/last.cnn" ]; then
        local lost=$(($(stat -c %Y "$dir/last.cnn") - $(cat "$dir.started")))
        if [ "$lost" -gt 0 ]; then   # else it died before its first checkpoint
            spent=$((spent + lost))
            echo "$spent" >"$dir.partial"
        fi
    fi
    date +%s >"$dir.started"
    "$@" "${resume[@]}" --out "$dir" >>"$dir.out" 2>>"$dir.err" || rc=$?
    spent=$((spent + SECONDS - start))
    echo "$spent" >"$dir.partial"
    rm -f "$dir.started"
    if [ "$rc" -ne 0 ]; then
        echo "$dir: exit $rc, see $dir.err" >&2
        return "$rc"
    fi
    echo "$spent" >"$dir/seconds"
}

# accuracy CNN CKPT DATA THREADS: the test accuracy of CKPT on DATA, as a
# fraction (cnn eval --json)
accuracy() {
    "$1" eval "$2" --data "$3" --json --threads "$4" 2>/dev/null \
        | sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p'
}

# percent FRACTION: "87.65%"
percent() {
    awk -v a="$1" 'BEGIN { printf "%.2f%%", 100 * a }'
}
