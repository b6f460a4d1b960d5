#!/usr/bin/env bash
# End-to-end tests of the `cnn` program: train LeNet-5 on a Fashion-MNIST
# subset and see the loss fall and the accuracy rise well above chance,
# evaluate the checkpoint as JSON, and check exit codes and messages for bad
# input. Usage: test_cli.sh PATH/TO/cnn (run from the repository root).
set -u
CNN=${1:?usage: test_cli.sh PATH/TO/cnn}
FASHION=/usr/share/datasets/fashion-mnist
. "$(dirname "$0")/lib.sh"

# --- usage and help ---------------------------------------------------------
"$CNN" --help | grep -q "train" && ok "--help lists commands" || bad "--help"
"$CNN" help eval | grep -q -- "--json" && ok "help eval" || bad "help eval"
expect 2 "unknown command 'trian'; did you mean 'train'?" "$CNN" trian
expect 2 "missing CONFIG" "$CNN" train
expect 2 "unknown option '--epochs'" "$CNN" train configs/lenet5-fashion.yaml --epochs 3

# --- every shipped config is valid ----------------------------------------
for c in configs/*.yaml; do
    if "$CNN" check "$c" >"$tmp/out" 2>"$tmp/err"; then ok "check $c"
    else bad "check $c: $(cat "$tmp/err")"; fi
done
# parameter counts as published for torchvision's implementations (vgg-small:
# as PyTorch counts the same network in scripts/bench/compare_torch.py)
while read -r config count; do
    "$CNN" check "configs/$config.yaml" 2>&1 | grep -q ", $count parameters," \
        && ok "$config has $count parameters" || bad "$config: $("$CNN" check "configs/$config.yaml" 2>&1)"
done <<'COUNTS'
alexnet 61100840
vgg11 132863336
vgg16 138357544
resnet18 11689512
resnet34 21797672
resnet50 25557032
resnet20 272474
vgg-small 307946
inception-v3 23834568
COUNTS
"$CNN" summary configs/vgg16.yaml --batch 1 | grep -q "^fc6 .* 74.3%" \
    && ok "summary shows fc6 holding 74% of VGG-16's parameters" || bad "vgg16 fc6 share"
# theoretical receptive fields by hand (r += (k - 1) * jump, jump *= stride):
# VGG-16: 3, 5, pool1 6 (jump 2), 10, 14, pool2 16 (4), 24, 32, 40, pool3 44
# (8), 60, 76, 92, pool4 100 (16), 132, 164, conv5_3 196, pool5 212 (32).
# LeNet-5: c1 5, s2 6 (jump 2), c3 6 + 4 * 2 = 14.
"$CNN" summary configs/vgg16.yaml >"$tmp/vgg" 2>&1
awk '$1 == "conv5_3" && $(NF-1) == 196 { a = 1 } $1 == "pool5" && $(NF-1) == 212 { b = 1 }
     END { exit !(a && b) }' "$tmp/vgg" \
    && ok "VGG-16 receptive field: 196 at conv5_3, 212 at pool5" || bad "VGG-16 RF: $(grep -E 'conv5_3|pool5' "$tmp/vgg")"
"$CNN" summary configs/lenet5-fashion.yaml | awk '$1 == "c3" && $(NF-1) == 14 && $NF == 2 { f = 1 } END { exit !f }' \
    && ok "LeNet-5 c3 sees 14 pixels with jump 2" || bad "LeNet-5 RF"
"$CNN" receptive-field configs/lenet5-fashion.yaml --layer c3 --samples 4 --out "$tmp/erf.png" >"$tmp/erf" 2>&1 \
    && grep -q "theoretical receptive field: 14x14 pixels, jump 2x2" "$tmp/erf" \
    && [ "$(od -An -tx1 -j1 -N3 "$tmp/erf.png" | tr -d ' ')" = 504e47 ] \
    && ok "receptive-field prints the fields and writes a PNG" || bad "receptive-field: $(cat "$tmp/erf")"
expect 2 "no layer named 'c33'; did you mean 'c3'?" "$CNN" receptive-field configs/lenet5-fashion.yaml --layer c33
"$CNN" summary configs/lenet5-fashion.yaml >"$tmp/sum" 2>&1
grep -q "total: 61706 parameters" "$tmp/sum" && ok "summary counts LeNet-5's 61706 parameters" \
    || bad "summary: $(cat "$tmp/sum")"

# --- config errors name file:line:column -------------------------------------
cat >"$tmp/typo.yaml" <<'YAML'
data:
  input: {channels: 1, height: 28, width: 28}
model:
  layers:
    - conv: {filters: 4, kernal: 3}
    - dense: {units: 10}
YAML
expect 2 "$tmp/typo.yaml:5:26: error: layer 'conv1' (conv): unknown option 'kernal'; did you mean 'kernel'?" \
    "$CNN" check "$tmp/typo.yaml"
cat >"$tmp/range.yaml" <<'YAML'
data:
  input: {channels: 1, height: 28, width: 28}
model:
  layers:
    - dense: {units: 10}
train:
  batch: 0
YAML
expect 2 "$tmp/range.yaml:7:10: error:" "$CNN" check "$tmp/range.yaml"
expect 2 "batch" "$CNN" check "$tmp/range.yaml"
expect 2 "$tmp/missing.yaml" "$CNN" check "$tmp/missing.yaml"

# --- bad checkpoints ---------------------------------------------------------
printf 'not a checkpoint at all' >"$tmp/junk.cnn"
expect 1 "not a cnn checkpoint" "$CNN" eval "$tmp/junk.cnn"

# --- training end to end on real data ---------------------------------------
if [ ! -e "$FASHION/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: Fashion-MNIST is not installed at $FASHION (apt-get install dataset-fashion-mnist)"
else
    run="$tmp/run"
    "$CNN" train configs/lenet5-fashion.yaml --out "$run" --threads 2 \
        --set data.train.limit=6000 --set data.val.limit=2000 \
        --set train.epochs=3 --set train.batch=32 >"$tmp/train.out" 2>"$tmp/train.err"
    code=$?
    [ $code -eq 0 ] && ok "train exits 0" || bad "train exit $code: $(tail -5 "$tmp/train.err")"
    [ -s "$run/last.cnn" ] && [ -s "$run/best.cnn" ] && [ -s "$run/config.yaml" ] \
        && ok "run directory has last.cnn, best.cnn, config.yaml" || bad "run directory: $(ls "$run")"
    [ "$(wc -l <"$run/log.jsonl")" -eq 3 ] && [ "$(wc -l <"$run/log.csv")" -eq 4 ] \
        && ok "one log line per epoch" || bad "logs: $(cat "$run/log.jsonl")"
    grep -q "checkpoint: $run/last.cnn" "$tmp/train.out" && ok "train reports on stdout" \
        || bad "train stdout: $(cat "$tmp/train.out")"
    # loss must fall from epoch 1 to epoch 3; accuracy must be far above chance (10%)
    first=$(sed -n 1p "$run/log.jsonl" | sed 's/.*"train_loss": \([0-9.]*\).*/\1/')
    last=$(sed -n 3p "$run/log.jsonl" | sed 's/.*"train_loss": \([0-9.]*\).*/\1/')
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.8) }' \
        && ok "train loss falls: $first -> $last" || bad "train loss $first -> $last"

    "$CNN" eval "$run/last.cnn" --json >"$tmp/eval.json" 2>"$tmp/eval.err"
    code=$?
    [ $code -eq 0 ] && ok "eval --json exits 0" || bad "eval exit $code: $(cat "$tmp/eval.err")"
    acc=$(sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p' "$tmp/eval.json")
    n=$(sed -n 's/.*"samples": \([0-9]*\).*/\1/p' "$tmp/eval.json")
    [ "$n" = 2000 ] && ok "eval scores the trained config's validation split" \
        || bad "eval samples '$n': $(cat "$tmp/eval.json")"
    awk -v a="$acc" 'BEGIN { exit !(a > 0.70) }' && ok "test accuracy $acc > 0.70 (chance 0.10)" \
        || bad "test accuracy '$acc'"
    if command -v python3 >/dev/null; then
        python3 - "$tmp/eval.json" <<'PY' && ok "eval --json: consistent accuracy, top-5, per-class scores, confusion" \
            || bad "eval JSON: $(cat "$tmp/eval.json")"
import json, sys
d = json.load(open(sys.argv[1]))
cm = d["confusion"]
assert 0 <= d["accuracy"] <= 1 and d["loss"] > 0
assert d["top_k"] == 5 and d["accuracy"] <= d["top_k_accuracy"] <= 1
assert len(cm) == 10 and all(len(r) == 10 for r in cm)
assert sum(map(sum, cm)) == d["samples"]
assert sum(cm[i][i] for i in range(10)) == d["correct"]
for c in d["classes"]:
    i = c["class"]
    assert c["support"] == sum(cm[i])
    assert abs(c["recall"] - cm[i][i] / sum(cm[i])) < 1e-5
    col = sum(r[i] for r in cm)
    assert abs(c["precision"] - (cm[i][i] / col if col else 0)) < 1e-5
PY
    fi
    expect 3 "below --min-accuracy" "$CNN" eval "$run/last.cnn" --min-accuracy 0.999
    "$CNN" eval "$run/last.cnn" --json --data "$FASHION/t10k-images-idx3-ubyte.gz" \
        >"$tmp/full.json" 2>&1
    grep -q '"samples": 10000' "$tmp/full.json" \
        && ok "eval --data scores all 10000 test images, labels file derived" \
        || bad "eval --data: $(cat "$tmp/full.json")"
    "$CNN" summary "$run/last.cnn" | grep -q "total: 61706 parameters" \
        && ok "summary reads a checkpoint" || bad "summary of checkpoint"

    # a damaged copy is refused; the original stays usable
    cp "$run/last.cnn" "$tmp/cut.cnn"
    truncate -s 2000 "$tmp/cut.cnn"
    expect 1 "truncated" "$CNN" eval "$tmp/cut.cnn"
    cp "$run/last.cnn" "$tmp/flip.cnn"
    printf '\xff' | dd of="$tmp/flip.cnn" bs=1 seek=3000 conv=notrunc 2>/dev/null
    expect 1 "$tmp/flip.cnn" "$CNN" eval "$tmp/flip.cnn"

    # a new run into a folder that holds one is refused, and changes nothing
    small="--set data.train.limit=512 --set data.val.limit=64 --set train.epochs=1"
    before=$(cat "$run/last.cnn" "$run/best.cnn" "$run/log.jsonl" | cksum)
    # shellcheck disable=SC2086
    expect 2 "$run: error: the run directory already holds last.cnn and best.cnn from an earlier run; to keep it, give another --out DIR; to replace it, add --overwrite" \
        "$CNN" train configs/lenet5-fashion.yaml --out "$run" $small
    grep -qF "or continue that run: cnn train configs/lenet5-fashion.yaml --set 'data.train.limit=512'" "$tmp/err" \
        && grep -qF -- "--resume $run/last.cnn" "$tmp/err" && ok "... and says how to resume it" \
        || bad "refusal without the resume command: $(cat "$tmp/err")"
    # ... and so is a resume that would write into another run's folder
    cp -r "$run" "$tmp/run2"
    expect 2 "$tmp/run2: error: the run directory already holds" \
        "$CNN" train configs/lenet5-fashion.yaml --resume "$run/last.cnn" --out "$tmp/run2"
    [ "$(cat "$run/last.cnn" "$run/best.cnn" "$run/log.jsonl" | cksum)" = "$before" ] \
        && cmp -s "$run/last.cnn" "$tmp/run2/last.cnn" \
        && ok "refused runs leave the checkpoints and the log as they were" \
        || bad "a refused run changed the run directory"

    # a failed run (non-finite loss), even with --overwrite, exits 1 and leaves
    # the earlier checkpoints intact
    # shellcheck disable=SC2086
    expect 1 "not finite" "$CNN" train configs/lenet5-fashion.yaml --out "$run" --overwrite \
        $small --set train.optimizer.lr=1e30
    cmp -s "$run/last.cnn" "$tmp/run2/last.cnn" && cmp -s "$run/best.cnn" "$tmp/run2/best.cnn" \
        && ok "failed run leaves last.cnn and best.cnn intact" \
        || bad "last.cnn or best.cnn changed by a failed run"

    # --overwrite replaces the run; without validation data the new run writes
    # no best.cnn, and the old one goes rather than sit beside the new last.cnn
    # shellcheck disable=SC2086
    run_ok "train --overwrite" "$CNN" train configs/lenet5-fashion.yaml --out "$tmp/run2" \
        --overwrite $small --set data.val=null
    [ -s "$tmp/run2/last.cnn" ] && ! cmp -s "$tmp/run2/last.cnn" "$run/last.cnn" \
        && [ ! -e "$tmp/run2/best.cnn" ] && [ "$(wc -l <"$tmp/run2/log.jsonl")" -eq 1 ] \
        && ok "--overwrite: a new last.cnn and log, the replaced run's best.cnn removed" \
        || bad "after --overwrite: $(ls "$tmp/run2"), $(wc -l <"$tmp/run2/log.jsonl") log lines"
fi

finish cli
