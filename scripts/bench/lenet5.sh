#!/usr/bin/env bash
# Training speed of LeNet-5 (batch 64, Adam) on Fashion-MNIST: cnn against
# PyTorch (Debian's python3-torch) in one run, at 1 and 2 threads, the two
# tools alternating. PyTorch runs in its fastest setting on this kind of
# machine: OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(N).
# Prints images/s of one timed epoch (after a warm-up epoch) and the ratio.
#
# usage: scripts/bench/lenet5.sh [IMAGES (default 30000)] [ROUNDS (default 2)]
set -eu
cd "$(dirname "$0")/../.."
images=${1:-30000}
rounds=${2:-2}
cnn=./build/cli/cnn
[ -d build ] || meson setup build >&2
ninja -C build >&2 || exit 1
/usr/bin/python3 -c 'import torch' 2>/dev/null \
    || { echo "needs PyTorch: apt-get install python3-torch" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cnn_rate() {  # threads -> images/s of the second epoch
    $cnn train configs/lenet5-fashion.yaml --out "$tmp/run" --overwrite --threads "$1" \
        --set data.train.limit="$images" --set train.epochs=2 \
        >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    sed -n '2s/.*"images_per_s": \([0-9.]*\).*/\1/p' "$tmp/run/log.jsonl"
}
torch_rate() {
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/bench/lenet5_torch.py "$1" "$images"
}

printf "%-8s %-6s %12s %12s %8s\n" threads round "cnn img/s" "torch img/s" ratio
for threads in 1 2; do
    for round in $(seq "$rounds"); do
        c=$(cnn_rate "$threads")
        t=$(torch_rate "$threads")
        printf "%-8s %-6s %12.0f %12.0f %8.2f\n" "$threads" "$round" "$c" "$t" \
            "$(awk -v a="$c" -v b="$t" 'BEGIN { print a / b }')"
    done
done
