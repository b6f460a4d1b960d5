#!/usr/bin/env bash
# The transfer table of the pretext tasks (README, "Learning without
# labels"): each pretext task of configs/pretext/ pretrains the same encoder
# on the CIFAR-10 training images (its labels unused), then the encoder is
# judged downstream, against a random encoder and one pretrained on
# CIFAR-10's labels:
#   - linear probe: the encoder frozen, a new linear classifier trained;
#   - fine-tune: everything trained;
# on CIFAR-10 (50,000 labelled training images, scored on the 10,000 test
# images) and on the cats-vs-dogs photos with 100 labelled images per class
# (catsdogs/train, scored on the 2,000 of catsdogs/test), all at 32x32.
#
#   scripts/pretext-table.sh [RUNS]     (default RUNS: runs/pretext)
#
# Every run writes its folder under RUNS; running the script again skips
# the finished runs and resumes a run that stopped part way
# (scripts/lib/steps.sh), so it can be stopped and started again (runs take
# minutes to an hour each on 2 cores). It prints the table in Markdown at
# the end. Needs ../shared/datasets/{cifar10,catsdogs}
# and the build in ./build (CNN=path/to/cnn to use another). SETS="k=v ..."
# adds --set overrides to every run (a quick trial: SETS="train.epochs=1
# data.train.limit=1000 data.val.limit=500").
set -eu
CNN=${CNN:-./build/cli/cnn}
RUNS=${1:-runs/pretext}
DATA=../shared/datasets
THREADS=${THREADS:-2}
for d in "$DATA/cifar10/train" "$DATA/catsdogs/train"; do
    [ -d "$d" ] || { echo "pretext-table.sh: $d is missing" >&2; exit 1; }
done
mkdir -p "$RUNS"
OVERRIDES=()
for kv in ${SETS:-}; do OVERRIDES+=(--set "$kv"); done

. "$(dirname "$0")/lib/steps.sh"

# run NAME CMD...: the run $RUNS/NAME (a step: skipped when finished)
run() {
    local name=$1; shift
    step "$RUNS/$name" "$@" ${OVERRIDES[@]+"${OVERRIDES[@]}"} --threads "$THREADS"
}

# score NAME DATA: the test accuracy of $RUNS/NAME/last.cnn on DATA, in %
score() {
    percent "$(accuracy "$CNN" "$RUNS/$1/last.cnn" "$2" "$THREADS")"
}

# train_time NAME...: the training time of the runs ("43 min", "28 s"),
# summed over the epochs of their log.csv (validation and start-up
# excluded; unlike NAME/seconds, the wall time, it is exact for a run
# killed part way, whose lost attempt steps.sh can only estimate)
train_time() {
    for name; do cat "$RUNS/$name/log.csv"; done | awk -F, '
        $1 == "epoch" { for (i = 1; i <= NF; i++) if ($i == "seconds") col = i; next }
        { s += $col }
        END { if (s >= 600) printf "%.0f min", s / 60; else printf "%.0f s", s }'
}

PRETEXT="autoencoder colorization context contrastive supervised"
for p in $PRETEXT; do
    run "pretrain-$p" "$CNN" train "configs/pretext/$p.yaml"
done

# the downstream settings: CIFAR-10, or cats vs dogs with 100 per class
# (limit 200 keeps every class's share: 100 each) and 2 outputs
CATS=(--set "data.train.path=$DATA/catsdogs/train" --set data.train.limit=200
      --set "data.val.path=$DATA/catsdogs/test" --set model.layers.6.dense.units=2
      --set train.epochs=30 --set train.batch=32)
# the colorization encoder reads one channel: its probes see grey images,
# scaled to about [-1, 1] as its L input was
GREY=(--set data.input.channels=1 --set 'data.normalize.mean=[0.5]'
      --set 'data.normalize.std=[0.5]')

for init in random $PRETEXT; do
    extra=()
    [ "$init" = colorization ] && extra=("${GREY[@]}")
    for mode in probe finetune; do
        sets=("${extra[@]}")
        [ "$mode" = finetune ] && sets+=(--set train.trainable=all)
        for task in cifar10 catsdogs; do
            t=()
            [ "$task" = catsdogs ] && t=("${CATS[@]}")
            if [ "$init" = random ]; then
                run "$task-$mode-$init" "$CNN" train configs/pretext/probe.yaml \
                    "${sets[@]}" ${t[@]+"${t[@]}"}
            else
                run "$task-$mode-$init" "$CNN" finetune configs/pretext/probe.yaml \
                    --from "$RUNS/pretrain-$init/last.cnn" "${sets[@]}" ${t[@]+"${t[@]}"}
            fi
        done
    done
done

echo "| encoder | pretraining (training time) | CIFAR-10 linear probe | CIFAR-10 fine-tune | cats vs dogs, 100/class, linear probe | cats vs dogs, 100/class, fine-tune |"
echo "|---|---|---|---|---|---|"
for init in random $PRETEXT; do
    if [ "$init" = random ]; then wall="none"
    else wall="$(train_time "pretrain-$init")"; fi
    row="| $init | $wall"
    for mode in probe finetune; do
        row="$row | $(score "cifar10-$mode-$init" "$DATA/cifar10/test")"
    done
    for mode in probe finetune; do
        row="$row | $(score "catsdogs-$mode-$init" "$DATA/catsdogs/test")"
    done
    echo "$row |"
done
echo
line="Downstream training time (validation excluded), 6 runs each:"
for task in cifar10 catsdogs; do
    for mode in probe finetune; do
        names=()
        for init in random $PRETEXT; do names+=("$task-$mode-$init"); done
        line="$line $task $mode $(train_time "${names[@]}");"
    done
done
echo "${line%;}."
