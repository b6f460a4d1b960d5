#!/usr/bin/env bash
# The cats-vs-dogs transfer-learning table (README "Results"): ResNet-20
# pretrained on the 8 CIFAR-10 classes that are neither cat nor dog
# (configs/cifar8-pretrain.yaml), then, on the Kaggle photos of
# ../shared/datasets/catsdogs/train at 32x32, the same network and the same
# 20 epochs (the two stages of configs/catsdogs-finetune.yaml) trained
# three ways: from scratch (everything, both stages), the new head only
# (both stages), and the full fine-tune (3 epochs of head, then everything) - with all 2,000 training photos and with 100 per class.
# Every run is scored on the 2,000 photos of catsdogs/test.
#
# usage: scripts/transfer-table.sh [THREADS]   (from the repository root;
# BUILD=dir picks the build, default build). Running it again skips the
# finished runs (the pretraining included) and resumes one that stopped
# part way (scripts/lib/steps.sh).
set -eu
. "$(dirname "$0")/lib/steps.sh"
threads=${1:-2}
cnn=${BUILD:-build}/cli/cnn
test_dir=../shared/datasets/catsdogs/test
out=runs/transfer
if [ ! -d "$test_dir" ]; then
    echo "$0: $test_dir not found: the cats-vs-dogs photos are needed" >&2
    exit 1
fi
[ -x "$cnn" ] || { echo "$0: $cnn not found: build first" >&2; exit 1; }
mkdir -p "$out"

step runs/cifar8-pretrain "$cnn" train configs/cifar8-pretrain.yaml --threads "$threads" \
    || exit 1
pre=runs/cifar8-pretrain/best.cnn
echo "pretraining: $(cat runs/cifar8-pretrain/seconds) s" >&2

# run NAME COMMAND...: train, score on catsdogs/test; prints "accuracy seconds"
run() {
    local name=$1; shift
    step "$out/$name" "$@" --threads "$threads" || exit 1
    echo "$(accuracy "$cnn" "$out/$name/last.cnn" "$test_dir" "$threads") $(cat "$out/$name/seconds")"
}

# the same two stages (3 epochs at lr 0.05, 17 at 0.01) for all three; only
# the starting weights and what trains differ
scratch='train.stages.0.trainable=all'
head='train.stages.1.trainable=head'
cfg=configs/catsdogs-finetune.yaml
printf '| training images | from scratch | head only | full fine-tune |\n'
printf '|---|---|---|---|\n'
for limit in 0 200; do
    label="2,000 (all)"
    [ "$limit" -eq 200 ] && label="200 (100 per class)"
    set -- --set "data.train.limit=$limit"
    read -r a1 t1 <<<"$(run "scratch-$limit" "$cnn" train "$cfg" "$@" --set "$scratch")"
    read -r a2 t2 <<<"$(run "head-$limit" "$cnn" finetune "$cfg" --from "$pre" "$@" --set "$head")"
    read -r a3 t3 <<<"$(run "full-$limit" "$cnn" finetune "$cfg" --from "$pre" "$@")"
    printf '| %s | %s (%s s) | %s (%s s) | %s (%s s) |\n' "$label" "$(percent "$a1")" "$t1" \
        "$(percent "$a2")" "$t2" "$(percent "$a3")" "$t3"
done
