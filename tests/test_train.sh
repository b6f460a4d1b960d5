#!/usr/bin/env bash
# The training workflow through the CLI, on synthetic IDX data (random 16x16
# images, 5 classes, written here): SIGINT and SIGTERM stop training with
# exit 130, a message naming last.cnn and a readable checkpoint; an interrupt
# in the middle of an epoch + --resume gives the same final checkpoint bytes
# as an unbroken run (with dropout, the noise layer, weight noise, L1,
# clipping, a plateau schedule and early stopping all carrying state); a
# second Ctrl-C exits at once; the learning rate each schedule logs; early
# stopping with best.cnn and restore_best; every regulariser key changes the
# trained weights; bad values of the new keys are named by file:line:col.
# Usage: test_train.sh PATH/TO/cnn (from the repository root).
set -u
CNN=${1:?usage: test_train.sh PATH/TO/cnn}
. "$(dirname "$0")/lib.sh"

# --- data: IDX files of random pixels and labels 0..4 -----------------------
idx() {   # PREFIX N: PREFIX.images (N x 16 x 16) and PREFIX.labels
    { be32 2051; be32 "$2"; be32 16; be32 16; head -c $(($2 * 256)) /dev/urandom; } >"$1.images"
    { be32 2049; be32 "$2"
      head -c $(($2 * 100)) /dev/urandom | tr -dc '\000-\004' | head -c "$2"; } >"$1.labels"
}
idx "$tmp/train" 3000
idx "$tmp/val" 300
[ "$(wc -c <"$tmp/train.labels")" -eq 3008 ] || { bad "synthetic labels"; finish train; }

# config FILE SCHEDULE OPTIMIZER [MORE TRAIN LINES]: a small conv net on that data
opt="{type: sgd, lr: 0.05, momentum: 0.9, l1: 1.0e-5, weight_decay: 1.0e-4}"
plain="{type: sgd, lr: 0.05, momentum: 0.9}"
config() {
    local file=$1 sched=$2 optimizer=$3; shift 3
    cat >"$file" <<YAML
name: workflow
seed: 7
data:
  train: {images: $tmp/train.images, labels: $tmp/train.labels}
  val: {images: $tmp/val.images, labels: $tmp/val.labels}
  input: {channels: 1, height: 16, width: 16}
  normalize: {mean: [0.5], std: [0.29]}
model:
  layers:
    - conv: {filters: 8, kernel: 3, pad: 1}
    - batchnorm
    - relu
    - noise: {std: 0.1}
    - maxpool: {size: 2}
    - conv: {filters: 8, kernel: 3, pad: 1}
    - relu
    - dropout: {rate: 0.2}
    - globalavgpool
    - dense: {units: 5}
  loss: softmax_cross_entropy
train:
  epochs: 3
  batch: 8
  optimizer: $optimizer
  schedule: $sched
YAML
    for line in "$@"; do echo "  $line"; done >>"$file"
}
full="$tmp/full.yaml"
config "$full" "{type: plateau, monitor: train_loss, patience: 0, threshold: 0.5, factor: 0.5}" \
    "$opt" "early_stopping: {monitor: val_loss, patience: 5, restore_best: true}" \
    "weight_noise: 0.01" "clip_grad_norm: 5"

lr_column() { sed 's/.*"lr": \([0-9.e-]*\),.*/\1/' "$1" | tr '\n' ' '; }

# --- the unbroken run --------------------------------------------------------
"$CNN" train "$full" --threads 1 --out "$tmp/straight" >"$tmp/out" 2>"$tmp/err" \
    && ok "unbroken run" || bad "unbroken run: $(tail -3 "$tmp/err")"
# plateau on train_loss, patience 0, threshold 0.5: no epoch improves by half,
# so the rate halves after epochs 2 and 3; the log shows the rate each epoch used
[ "$(lr_column "$tmp/straight/log.jsonl")" = "0.05 0.05 0.025 " ] \
    && ok "plateau: log.jsonl has the rate each epoch used" \
    || bad "plateau lr: $(lr_column "$tmp/straight/log.jsonl")"
grep -q "plateau: train_loss did not improve for 1 epoch; learning rate 0.05 -> 0.025" \
    "$tmp/err" && ok "plateau reports the cut" || bad "plateau message: $(cat "$tmp/err")"

# --- SIGINT in the middle of an epoch, then --resume ------------------------
# Sent shortly after epoch 1 ends, so it lands inside epoch 2 (or 3: an epoch
# here takes a few tenths of a second); a few tries in
# case it meets the end of an epoch (resuming from there must match too).
mid=0
for delay in 0.2 0.05 0.5; do
    rm -rf "$tmp/int"
    "$CNN" train "$full" --threads 1 --out "$tmp/int" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    wait_for "^epoch 1/3" "$tmp/err" $pid && sleep $delay
    kill -INT $pid 2>/dev/null
    wait $pid
    code=$?
    grep -q "^SIGINT: stopped during epoch" "$tmp/err" && { mid=1; break; }
done
[ $code -eq 130 ] && ok "SIGINT: exit 130" || bad "SIGINT: exit $code: $(tail -3 "$tmp/err")"
[ $mid -eq 1 ] && ok "SIGINT landed inside an epoch" \
    || bad "no try stopped inside an epoch: $(tail -2 "$tmp/err")"
grep -q "stopped .* checkpoint: $tmp/int/last.cnn" "$tmp/err" \
    && grep -q "resume with: cnn train $full --resume $tmp/int/last.cnn" "$tmp/err" \
    && ok "the message says where last.cnn is and how to resume" \
    || bad "interrupt message: $(tail -3 "$tmp/err")"
"$CNN" eval "$tmp/int/last.cnn" --json >"$tmp/eval.json" 2>"$tmp/eval.err" \
    && grep -q '"samples": 300' "$tmp/eval.json" \
    && ok "cnn eval reads the interrupted checkpoint" || bad "eval: $(cat "$tmp/eval.err")"
# where the interrupt stopped ("epoch E after batch B"): epoch 2 or 3,
# depending on the machine's speed; the resume must say the same
where=$(sed -n 's/^SIGINT: stopped during \(epoch [0-9]* after batch [0-9]*\) of.*/\1/p' "$tmp/err")
if "$CNN" train "$full" --threads 1 --resume "$tmp/int/last.cnn" >"$tmp/out" 2>"$tmp/err"; then
    [ -n "$where" ] && grep -q "resuming from $tmp/int/last.cnn in $where of" "$tmp/err" \
        && ok "resume continues inside the epoch ($where)" \
        || bad "resume: stopped in '$where', but: $(grep resuming "$tmp/err")"
    cmp -s "$tmp/int/last.cnn" "$tmp/straight/last.cnn" \
        && ok "interrupted mid-epoch + resume: the same last.cnn bytes as the unbroken run" \
        || bad "mid-epoch resume differs from the unbroken run"
    cmp -s "$tmp/int/best.cnn" "$tmp/straight/best.cnn" \
        && ok "... and the same best.cnn" || bad "best.cnn differs after resume"
    cut -d, -f1-6 "$tmp/int/log.jsonl" >"$tmp/a"
    cut -d, -f1-6 "$tmp/straight/log.jsonl" >"$tmp/b"
    cmp -s "$tmp/a" "$tmp/b" && ok "... and the same losses and rates in log.jsonl" \
        || bad "logs differ: $(diff "$tmp/a" "$tmp/b")"
else
    bad "resume after SIGINT: $(tail -3 "$tmp/err")"
fi

# --- SIGTERM during training ---------------------------------------------------
# (a machine fast enough to finish the 3 epochs before the signal gets
# shorter delays)
for delay in 0.2 0.05 0.01; do
    rm -rf "$tmp/term"
    "$CNN" train "$full" --threads 1 --out "$tmp/term" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    wait_for "^training " "$tmp/err" $pid && sleep $delay
    kill -TERM $pid
    wait $pid
    code=$?
    grep -q "^SIGTERM: stopped" "$tmp/err" && break
done
[ $code -eq 130 ] && grep -q "^SIGTERM: stopped .* checkpoint: $tmp/term/last.cnn" "$tmp/err" \
    && ok "SIGTERM: exit 130 and the message" || bad "SIGTERM: exit $code: $(tail -3 "$tmp/err")"
"$CNN" train "$full" --threads 1 --resume "$tmp/term/last.cnn" >"$tmp/out" 2>"$tmp/err" \
    && cmp -s "$tmp/term/last.cnn" "$tmp/straight/last.cnn" \
    && ok "resume after SIGTERM finishes, same bytes" || bad "resume after SIGTERM: $(tail -3 "$tmp/err")"

# --- a second Ctrl-C exits at once -------------------------------------------
# One slow step (a batch of all 3000 images through wide convolutions): the
# second signal arrives while it runs, so nothing is written.
"$CNN" train "$full" --threads 1 --out "$tmp/twice" --set train.batch=3000 \
    --set model.layers.0.conv.filters=64 --set model.layers.5.conv.filters=64 \
    >"$tmp/out" 2>"$tmp/err" &
pid=$!
wait_for "^training " "$tmp/err" $pid && sleep 0.1
kill -INT $pid
wait_for "interrupted:" "$tmp/err" $pid && kill -INT $pid
wait $pid
code=$?
[ $code -eq 130 ] && ! grep -q "stopped during" "$tmp/err" && [ ! -e "$tmp/twice/last.cnn" ] \
    && ok "a second SIGINT exits at once (130, no checkpoint half-written)" \
    || bad "second SIGINT: exit $code, $(ls "$tmp/twice"): $(tail -2 "$tmp/err")"

# --- schedules: the rate of each epoch in the log ----------------------------
sched() {   # NAME SCHEDULE WANT [SETS...]
    local name=$1 s=$2 want=$3; shift 3
    config "$tmp/s.yaml" "$s" "$plain"
    if "$CNN" train "$tmp/s.yaml" --threads 1 --out "$tmp/s-$name" --set data.train.limit=80 \
        --set data.val.limit=16 --set train.epochs=4 "$@" >"$tmp/out" 2>"$tmp/err"; then
        [ "$(lr_column "$tmp/s-$name/log.jsonl")" = "$want" ] && ok "schedule $name: rates $want" \
            || bad "schedule $name: rates $(lr_column "$tmp/s-$name/log.jsonl"), want $want"
    else
        bad "schedule $name: $(tail -3 "$tmp/err")"
    fi
}
sched multistep "{type: multistep, milestones: [1, 3], gamma: 0.5}" "0.05 0.025 0.025 0.0125 "
sched exponential "{type: exponential, gamma: 0.5}" "0.05 0.025 0.0125 0.00625 "
sched step "{type: step, step_epochs: 2, gamma: 0.1}" "0.05 0.05 0.005 0.005 "
# one_cycle over 4 epochs of 10 steps (PyTorch's OneCycleLR, total_steps 40):
# lr / 25 at step 0, rising to lr at step 11, then down to lr / 25 / 1e4
sched one_cycle "one_cycle" "0.002 0.0490278 0.0383008 0.0116994 "

# --- early stopping, best.cnn and restore_best --------------------------------
# min_delta 10: no epoch after the first can improve, so it stops after 1 + 2
config "$tmp/es.yaml" constant "$opt" \
    "early_stopping: {monitor: val_loss, patience: 2, min_delta: 10, restore_best: true}"
if "$CNN" train "$tmp/es.yaml" --threads 1 --out "$tmp/es" --set data.train.limit=400 \
    --set train.epochs=20 \
    >"$tmp/out" 2>"$tmp/err"; then
    [ "$(wc -l <"$tmp/es/log.jsonl")" -eq 3 ] \
        && grep -q "early stopping: val_loss has not improved for 2 epochs (best .* at epoch 1)" \
           "$tmp/err" && grep -q "stopped early" "$tmp/out" \
        && ok "early stopping after patience 2" || bad "early stopping: $(cat "$tmp/err" "$tmp/out")"
    grep -q "best val_loss .* at epoch 1 (restored)" "$tmp/out" \
        && ok "restore_best reported" || bad "restore_best report: $(cat "$tmp/out")"
    "$CNN" eval "$tmp/es/last.cnn" --json 2>/dev/null | sed 's/"checkpoint": "[^"]*"//' >"$tmp/a"
    "$CNN" eval "$tmp/es/best.cnn" --json 2>/dev/null | sed 's/"checkpoint": "[^"]*"//' >"$tmp/b"
    want=$(sed -n '1s/.*"val_loss": \([0-9.]*\).*/\1/p' "$tmp/es/log.jsonl")
    got=$(sed -n 's/.*"loss": \([0-9.]*\).*/\1/p' "$tmp/b")
    [ -s "$tmp/a" ] && cmp -s "$tmp/a" "$tmp/b" \
        && ok "restore_best: last.cnn scores as best.cnn" || bad "last vs best: $(cat "$tmp/a" "$tmp/b")"
    awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }' \
        && ok "best.cnn holds epoch 1 (val loss $got)" || bad "best.cnn val loss $got, epoch 1 logged $want"
else
    bad "early stopping run: $(tail -3 "$tmp/err")"
fi
"$CNN" train "$tmp/es.yaml" --threads 1 --out "$tmp/es2" --set data.train.limit=400 \
    --set train.epochs=20 --set train.early_stopping.restore_best=false >/dev/null 2>&1
"$CNN" eval "$tmp/es2/last.cnn" --json 2>/dev/null | sed 's/"checkpoint": "[^"]*"//' >"$tmp/c"
[ -s "$tmp/c" ] && ! cmp -s "$tmp/c" "$tmp/b" \
    && ok "without restore_best last.cnn keeps the last epoch" || bad "restore_best=false"

# --- every regulariser key changes the trained weights ------------------------
config "$tmp/r.yaml" constant "$plain"
scores() {   # OUT [SETS...]: the eval JSON of a 1-epoch run, without its path
    local out=$1; shift
    "$CNN" train "$tmp/r.yaml" --threads 1 --out "$tmp/$out" --set data.train.limit=200 \
        --set train.epochs=1 \
        --set data.val.limit=100 --set model.layers.3.noise.std=0 "$@" >/dev/null 2>"$tmp/err" \
        || bad "run $out: $(tail -2 "$tmp/err")"
    "$CNN" eval "$tmp/$out/last.cnn" --json 2>/dev/null | sed 's/"checkpoint": "[^"]*"//' >"$tmp/$out.json"
}
scores base
scores base2
cmp -s "$tmp/base.json" "$tmp/base2.json" && ok "the same settings give the same scores" \
    || bad "no baseline"
scores wd --set train.optimizer.weight_decay=0.5
for r in "l1 train.optimizer.l1=0.01" "noise model.layers.3.noise.std=0.5" \
         "weight_noise train.weight_noise=0.1" "clip train.clip_grad_norm=0.01" \
         "decay_all train.optimizer.weight_decay=0.5 train.optimizer.decay_all=true"; do
    set -- $r
    name=$1; shift
    sets=()
    for s in "$@"; do sets+=(--set "$s"); done
    scores "$name" "${sets[@]}"
    ref=$tmp/base.json
    [ "$name" = decay_all ] && ref=$tmp/wd.json
    [ -s "$tmp/$name.json" ] && ! cmp -s "$tmp/$name.json" "$ref" \
        && ok "$* changes the trained weights" || bad "$* has no effect"
done

# --- bad values of the new keys ------------------------------------------------
config "$tmp/bad.yaml" "{type: multistep, milestones: [3, 2]}" "$plain"
expect 2 "bad.yaml:25:47: error: train.schedule.milestones must be increasing, got 2 after 3" \
    "$CNN" check "$tmp/bad.yaml"
config "$tmp/bad.yaml" constant "$plain" "early_stopping: {monitor: val_los}"
expect 2 "bad.yaml:26:29: error: train.early_stopping.monitor must be one of val_loss, val_accuracy, train_loss, train_accuracy, got \"val_los\"; did you mean 'val_loss'?" \
    "$CNN" check "$tmp/bad.yaml"
expect 2 "train.clip_grad_norm must be > 0, got -1" \
    "$CNN" check "$tmp/r.yaml" --set train.clip_grad_norm=-1

finish train
