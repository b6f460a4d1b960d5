#!/usr/bin/env bash
# Pretext tasks (task: in the config) on small synthetic landscapes
# (scripts/make-scenes.py): a short run of each whose training loss falls,
# eval's report of each checkpoint, a classifier fine-tuned from a
# pretext encoder, and the errors a wrong network or config gets.
# Usage: test_tasks.sh PATH/TO/cnn (from the repository root).
set -u
CNN=${1:?usage: test_tasks.sh PATH/TO/cnn}
. "$(dirname "$0")/lib.sh"

python3 scripts/make-scenes.py "$tmp/train" 96 16 1 \
    && python3 scripts/make-scenes.py "$tmp/val" 32 16 2 \
    || { bad "make-scenes.py failed"; finish tasks; }

# config NAME TASK LAYERS...: a config on the scenes, the layers one per line
config() {
    local name=$1 task=$2; shift 2
    cat <<YAML
name: $name
seed: 5
data:
  train: {path: $tmp/train}
  val: {path: $tmp/val}
  input: {channels: 3, height: 16, width: 16}
  normalize: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
  augment:
    - crop: {padding: 2}
    - flip: horizontal
task: $task
model:
  layers:
YAML
    for l in "$@"; do echo "    - $l"; done
    cat <<YAML
train:
  epochs: 8
  batch: 16
  optimizer: {type: adam, lr: 0.003}
YAML
}
ENCODER=("conv: {name: c1, filters: 16, kernel: 3, pad: 1}" "relu: {name: r1}"
         "conv: {name: c2, filters: 16, kernel: 3, pad: 1}" "relu: {name: r2}")
config autoencoder autoencoder "${ENCODER[@]}" "maxpool: {name: down, size: 2}" \
    "conv: {name: code, filters: 8, kernel: 3, pad: 1}" \
    "upsample: {name: up, scale: 2, mode: bilinear}" "conv: {name: out, filters: 3, kernel: 3, pad: 1}" \
    >"$tmp/autoencoder.yaml"
config colorization colorization "${ENCODER[@]}" "conv: {name: ab, filters: 2, kernel: 3, pad: 1}" \
    >"$tmp/colorization.yaml"
config context "{type: context, patch: 4, gap: 1, jitter: 1}" "${ENCODER[@]}" \
    "globalavgpool: {name: pool}" "pair: {name: pair}" "dense: {name: h1, units: 32}" \
    "relu: {name: h1relu}" "dense: {name: position, units: 8}" >"$tmp/context.yaml"
config contrastive "{type: contrastive, temperature: 0.5}" "${ENCODER[@]}" "globalavgpool: {name: pool}" \
    "dense: {name: proj1, units: 32}" "relu: {name: projrelu}" "dense: {name: proj2, units: 16}" \
    >"$tmp/contrastive.yaml"

# train TASK: 8 epochs; the last epoch's training loss must be below
# FRACTION of the first's
falls() {
    local task=$1 fraction=$2
    if ! "$CNN" train "$tmp/$task.yaml" --out "$tmp/run-$task" --threads 1 \
        >"$tmp/out" 2>"$tmp/err"; then
        bad "$task: training failed: $(tail -3 "$tmp/err")"
        return
    fi
    python3 - "$tmp/run-$task/log.jsonl" "$fraction" "$task" <<'PY' \
        && ok "$task: the training loss falls ($(cat "$tmp/falls"))" || bad "$task: $(cat "$tmp/falls")"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
first, last = log[0]["train_loss"], log[-1]["train_loss"]
msg = "%.4f -> %.4f over %d epochs, want below %s of the first" % (first, last, len(log), sys.argv[2])
open(sys.argv[1].rsplit("/", 2)[0] + "/falls", "w").write(msg)
has_acc = sys.argv[3] in ("context", "contrastive")
assert all((l["train_accuracy"] is None) != has_acc for l in log), "accuracy field"
assert last < float(sys.argv[2]) * first, msg
PY
}
falls autoencoder 0.5
falls colorization 0.7
falls context 0.9
falls contrastive 0.8

# eval: the task's loss, and its accuracy where it has one (null otherwise)
for task in autoencoder colorization context contrastive; do
    if "$CNN" eval "$tmp/run-$task/last.cnn" --json >"$tmp/out" 2>"$tmp/err" \
        && python3 - "$tmp/out" "$task" "$tmp/run-$task/log.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
log = [json.loads(l) for l in open(sys.argv[3])]
assert r["task"] == sys.argv[2] and r["samples"] == 32, r
# the same scoring as the last epoch's validation: the same numbers
assert abs(r["loss"] - log[-1]["val_loss"]) < 1e-5, (r["loss"], log[-1]["val_loss"])
if sys.argv[2] in ("context", "contrastive"):
    assert abs(r["accuracy"] - log[-1]["val_accuracy"]) < 1e-6, r
else:
    assert r["accuracy"] is None, r
PY
    then ok "eval $task: task, loss and accuracy as the run's last validation"
    else bad "eval $task: $(cat "$tmp/out") $(tail -3 "$tmp/err")"
    fi
done
expect 2 "this checkpoint learned task context, not classes" \
    "$CNN" predict "$tmp/run-context/last.cnn" "$tmp/val/day/000.bmp"
expect 2 "--min-accuracy: task autoencoder scores no accuracy" \
    "$CNN" eval "$tmp/run-autoencoder/last.cnn" --min-accuracy 0.5

# summary: after the pair layer a sample is a pair, so the total per network
# input (a 3x4x4 patch) counts those layers' MACs half: c1 4*4*16*27 = 6912,
# c2 4*4*16*144 = 36864, h1 32*32 = 1024 and position 32*8 = 256 per pair
"$CNN" summary "$tmp/context.yaml" >"$tmp/out" 2>"$tmp/err" \
    && grep -q "44416 MACs per network input" "$tmp/out" \
    && ok "summary of a context network: MACs after the pair counted per pair" \
    || bad "summary context: $(tail -2 "$tmp/out") $(tail -2 "$tmp/err")"

# the other commands take a task's input: colorization's grey channel,
# context's patches (two rows per sample)
for task in colorization context; do
    "$CNN" visualize "$tmp/run-$task/last.cnn" --activations r1 --image "$tmp/val/day/000.bmp" \
        --out "$tmp/act-$task.png" >"$tmp/out" 2>"$tmp/err" \
        && grep -q "16 maps of $([ $task = context ] && echo 4x4 || echo 16x16)" "$tmp/out" \
        && ok "visualize --activations of a $task network" \
        || bad "visualize $task: $(cat "$tmp/out") $(tail -2 "$tmp/err")"
done
"$CNN" receptive-field "$tmp/context.yaml" --layer position --samples 3 >"$tmp/out" 2>"$tmp/err" \
    && grep -q "6 random inputs" "$tmp/out" \
    && ok "receptive-field of a context network: 2 patches per sample" \
    || bad "receptive-field context: $(cat "$tmp/out") $(tail -2 "$tmp/err")"
expect 2 "--from-data feeds whole 3x16x16 images, but task context shows the network 3x4x4 inputs" \
    "$CNN" receptive-field "$tmp/context.yaml" --layer position --from-data

# a classifier fine-tuned from the context encoder takes c1 and c2
config probe classify "${ENCODER[@]}" "globalavgpool: {name: pool}" "dense: {name: fc, units: 2}" \
    | sed 's/^train:$/train:\n  trainable: head/' >"$tmp/probe.yaml"
if "$CNN" finetune "$tmp/probe.yaml" --from "$tmp/run-context/last.cnn" --out "$tmp/probe" \
        --threads 1 >"$tmp/out" 2>"$tmp/err" \
    && grep -q "^c1 .*loaded" "$tmp/err" && grep -q "^c2 .*loaded" "$tmp/err" \
    && grep -q "^fc .*new" "$tmp/err"; then
    ok "finetune from a context checkpoint: the encoder loaded, a new head (linear probe)"
else
    bad "finetune from context: $(grep -E '^(c1|c2|fc) ' "$tmp/err") $(tail -3 "$tmp/err")"
fi

# errors: a network that does not fit its task, a config that does not
sed '/pair: /d' "$tmp/context.yaml" >"$tmp/nopair.yaml"
expect 2 "task context needs one 'pair' layer" "$CNN" train "$tmp/nopair.yaml" --out "$tmp/x"
sed 's/^    - dense: {name: proj1/    - pair: {name: p}\n&/' "$tmp/contrastive.yaml" >"$tmp/pair.yaml"
expect 2 "a 'pair' layer joins context's patch pairs; task contrastive has no pairs" \
    "$CNN" train "$tmp/pair.yaml" --out "$tmp/x"
expect 2 "task autoencoder needs an output of the input's shape, 3x16x16, but the output layer 'out' gives 2x16x16" \
    "$CNN" train "$tmp/autoencoder.yaml" --out "$tmp/x" --set model.layers.7.conv.filters=2
expect 2 "task colorization needs an output of 2 channels" \
    "$CNN" train "$tmp/colorization.yaml" --out "$tmp/x" --set model.layers.4.conv.filters=3
expect 2 "task context classifies 8 relative positions, but the output layer 'position' has 4 units" \
    "$CNN" train "$tmp/context.yaml" --out "$tmp/x" --set model.layers.8.dense.units=4
expect 2 "task colorization needs colour images: data.input.channels must be 3, got 1" \
    "$CNN" check "$tmp/colorization.yaml" --set data.input.channels=1 \
    --set 'data.normalize.mean=[0.5]' --set 'data.normalize.std=[0.25]'
expect 2 "task.patch 6 with gap 1 and jitter 1 needs images of at least 22x22" \
    "$CNN" check "$tmp/context.yaml" --set task.patch=6
sed 's/^task: .*/task: {type: context}/' "$tmp/context.yaml" >"$tmp/nopatch.yaml"
expect 2 "nopatch.yaml:11:1: error: task.patch is required" "$CNN" check "$tmp/nopatch.yaml"
expect 2 "task.temperature is only valid for type contrastive, not context" \
    "$CNN" check "$tmp/context.yaml" --set task.temperature=0.1
expect 2 "task must be one of classify, autoencoder, colorization, context, contrastive, got \"autoencoders\"" \
    "$CNN" check "$tmp/autoencoder.yaml" --set task=autoencoders
expect 2 "model.loss is softmax_cross_entropy, but task autoencoder trains with mse" \
    "$CNN" check "$tmp/autoencoder.yaml" --set model.loss=softmax_cross_entropy
expect 2 "train.early_stopping.monitor is val_accuracy, but task colorization scores no accuracy" \
    "$CNN" check "$tmp/colorization.yaml" --set train.early_stopping.monitor=val_accuracy
[ ! -e "$tmp/x" ] && ok "refused runs write nothing" || bad "a refused run wrote $tmp/x"

finish tasks
