#!/usr/bin/env bash
# "Training BatchNorm and only BatchNorm" (Frankle, Schwab and Morcos 2020)
# on CIFAR-10: ResNet-20 from a random initialisation (configs/cifar10-resnet20.yaml)
# trained with the same budget three ways - every parameter, only the gamma
# and beta of its batch-norm layers, only the final dense layer - and each
# scored on the 10,000 test images. Prints a Markdown table.
#
# usage: scripts/bn-only.sh [EPOCHS] [THREADS]   (from the repository root;
# BUILD=dir picks the build, default build; default 15 epochs, 2 threads)
set -eu
epochs=${1:-15}
threads=${2:-2}
cnn=${BUILD:-build}/cli/cnn
test_dir=../shared/datasets/cifar10/test
[ -d "$test_dir" ] || { echo "$0: $test_dir not found" >&2; exit 1; }
[ -x "$cnn" ] || { echo "$0: $cnn not found: build first" >&2; exit 1; }
mkdir -p runs/bn-only
printf '| what trains | parameters trained | test accuracy | wall time |\n|---|---|---|---|\n'
for what in all batchnorm head; do
    out=runs/bn-only/$what
    start=$(date +%s)
    "$cnn" train configs/cifar10-resnet20.yaml --threads "$threads" --out "$out" \
        --set "train.epochs=$epochs" --set "train.trainable=$what" >"$out.log" 2>&1 \
        || { echo "$0: the $what run failed, see $out.log" >&2; exit 1; }
    secs=$(( $(date +%s) - start ))
    count=$(sed -n 's/^trainable: [a-z]*: \([0-9]* of [0-9]*\) parameters train$/\1/p' "$out.log")
    acc=$("$cnn" eval "$out/last.cnn" --data "$test_dir" --json --threads "$threads" \
          2>/dev/null | sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p')
    printf '| %s | %s | %s | %s s |\n' "$what" "${count:-all}" \
        "$(awk -v a="$acc" 'BEGIN { printf "%.2f%%", 100 * a }')" "$secs"
done
