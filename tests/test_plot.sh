#!/usr/bin/env bash
# `cnn plot`: draws the curves of a hand-written log.jsonl as a PNG of the
# documented size (with and without validation, one epoch, constant values),
# and reports a malformed log by file:line (exit 1), a missing run directory
# (exit 1) and an unknown option (exit 2).
# Usage: test_plot.sh PATH/TO/cnn (run from the repository root).
set -u
CNN=${1:?usage: test_plot.sh PATH/TO/cnn}
. "$(dirname "$0")/lib.sh"


# plot_ok NAME DIR [ARGS...]: cnn plot DIR succeeds and writes a 960x420 PNG
plot_ok() {
    local name=$1 dir=$2 png=$2/curves.png; shift 2
    [ "${1:-}" = --out ] && png=$2
    if "$CNN" plot "$dir" "$@" >"$tmp/out" 2>"$tmp/err"; then
        local size
        size=$(png_size "$png" 2>/dev/null)
        if [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
            && [ "$size" = "960 420" ]; then
            ok "$name: $png is a 960x420 PNG"
        else
            bad "$name: $png size '$size' (want '960 420')"
        fi
    else
        bad "$name: exit $?: $(cat "$tmp/err")"
    fi
}

mkdir -p "$tmp/run" "$tmp/noval" "$tmp/one" "$tmp/flat" "$tmp/bad"
cat >"$tmp/run/log.jsonl" <<'LOG'
{"epoch": 1, "lr": 0.01, "train_loss": 1.02, "train_accuracy": 0.64, "val_loss": 0.66, "val_accuracy": 0.767, "seconds": 2.1, "images_per_s": 1400.5}
{"epoch": 2, "lr": 0.01, "train_loss": 0.57, "train_accuracy": 0.79, "val_loss": 0.58, "val_accuracy": 0.787, "seconds": 2.0, "images_per_s": 1500.0}
{"epoch": 3, "lr": 0.001, "train_loss": 0.48, "train_accuracy": 0.83, "val_loss": 0.56, "val_accuracy": 0.80, "seconds": 2.0, "images_per_s": 1510.2}
LOG
plot_ok "train and validation" "$tmp/run"
plot_ok "--out" "$tmp/run" --out "$tmp/other.png"
grep -q "curves: $tmp/other.png" "$tmp/out" && ok "reports the file written" \
    || bad "stdout: $(cat "$tmp/out")"

cat >"$tmp/noval/log.jsonl" <<'LOG'
{"epoch": 1, "lr": 0.1, "train_loss": 2.3, "train_accuracy": 0.1, "seconds": 1, "images_per_s": 10}
{"epoch": 2, "lr": 0.1, "train_loss": 1.9, "train_accuracy": 0.3, "seconds": 1, "images_per_s": 10}
LOG
plot_ok "no validation" "$tmp/noval"
grep -q "no validation" "$tmp/out" && ok "says there is no validation" \
    || bad "stdout: $(cat "$tmp/out")"

echo '{"epoch": 1, "lr": 0.1, "train_loss": 2.302585, "train_accuracy": 0.1, "val_loss": 2.3, "val_accuracy": 0.1, "seconds": 1, "images_per_s": 10}' \
    >"$tmp/one/log.jsonl"
plot_ok "one epoch" "$tmp/one"

for e in 1 2 3; do
    echo "{\"epoch\": $e, \"train_loss\": 0, \"train_accuracy\": 1.0}"
done >"$tmp/flat/log.jsonl"
plot_ok "constant values" "$tmp/flat"

# --- errors -----------------------------------------------------------------
printf '%s\n\n%s\n' '{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5}' \
    '{"epoch": 2, "train_loss": oops, "train_accuracy": 0.6}' >"$tmp/bad/log.jsonl"
expect 1 "$tmp/bad/log.jsonl:3: error:" "$CNN" plot "$tmp/bad"
echo '{"epoch": 1, "train_accuracy": 0.5}' >"$tmp/bad/log.jsonl"
expect 1 "$tmp/bad/log.jsonl:1: error: missing \"train_loss\"" "$CNN" plot "$tmp/bad"
echo '{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5' >"$tmp/bad/log.jsonl"
expect 1 "$tmp/bad/log.jsonl:1: error:" "$CNN" plot "$tmp/bad"
[ ! -e "$tmp/bad/curves.png" ] && ok "no PNG from a malformed log" || bad "PNG written anyway"
expect 1 "$tmp/missing/log.jsonl: error: cannot open" "$CNN" plot "$tmp/missing"
expect 2 "unknown option '--width'" "$CNN" plot "$tmp/run" --width 10
expect 2 "missing RUNDIR" "$CNN" plot
expect 2 "needs a value" "$CNN" plot "$tmp/run" --out
"$CNN" help plot | grep -q -- "--out FILE" && ok "help plot documents --out" || bad "help plot"

finish plot
