#!/usr/bin/env bash
# "Training BatchNorm and only BatchNorm" (Frankle, Schwab and Morcos 2020)
# on CIFAR-10: ResNet-20 from a random initialisation (configs/cifar10-resnet20.yaml)
# trained with the same budget four ways - every parameter, only the gamma
# and beta of its batch-norm layers, only the final dense layer - and each
# scored on the 10,000 test images. Prints a Markdown table.
# "Only the final layer" runs twice: `trainable: head` freezes batch norm,
# which then normalises with its running statistics (mean 0, variance 1 on a
# random network); `lr_mult: {fc: 1, "*": 0}` keeps every layer trainable,
# so batch norm uses batch statistics as in the paper, but only fc moves.
#
# usage: scripts/bn-only.sh [EPOCHS] [THREADS]   (from the repository root;
# BUILD=dir picks the build, default build; default 15 epochs, 2 threads)
# Running it again skips the finished runs and resumes one that stopped
# part way (scripts/lib/steps.sh).
set -eu
. "$(dirname "$0")/lib/steps.sh"
epochs=${1:-15}
threads=${2:-2}
cnn=${BUILD:-build}/cli/cnn
test_dir=../shared/datasets/cifar10/test
[ -d "$test_dir" ] || { echo "$0: $test_dir not found" >&2; exit 1; }
[ -x "$cnn" ] || { echo "$0: $cnn not found: build first" >&2; exit 1; }
mkdir -p runs/bn-only
# the table was measured with the paper's augmentation alone (crops and
# flips) and the test set scored after every epoch: the config's cutout,
# added for its long run later, is left out, and its scoring put back
config=runs/bn-only/cifar10-resnet20.yaml
grep -v 'cutout:' configs/cifar10-resnet20.yaml >"$config"
printf '| what trains | parameters trained | test accuracy | wall time |\n|---|---|---|---|\n'
for what in all batchnorm head fc; do
    out=runs/bn-only/$what
    case $what in
        fc) label='fc only, batch statistics (lr_mult)'
            trains=(--set train.trainable=all --set train.lr_mult.fc=1 \
                    --set 'train.lr_mult.*=0') ;;
        head) label='head, frozen batch norm'; trains=(--set train.trainable=head) ;;
        *) label=$what; trains=(--set "train.trainable=$what") ;;
    esac
    # the stages of the config would override train.trainable: one stage
    step "$out" "$cnn" train "$config" --threads "$threads" \
        --set "train.epochs=$epochs" "${trains[@]}" --set train.stages= \
        --set "data.val.path=$test_dir" || exit 1
    count=$(sed -n 's/^trainable: [a-z]*: \([0-9]* of [0-9]*\) parameters train$/\1/p' \
            "$out.err" | tail -1)
    printf '| %s | %s | %s | %s s |\n' "$label" "${count:-all}" \
        "$(percent "$(accuracy "$cnn" "$out/last.cnn" "$test_dir" "$threads")")" \
        "$(cat "$out/seconds")"
done
