#!/usr/bin/env bash
# `cnn finetune` and what trains: a tiny net pretrained on three classes is
# fine-tuned on two of them with a new head. Checks the load table (loaded,
# new, dropped), rename, the shape-mismatch error naming both shapes, reinit,
# trainable: head (the loaded layers keep their exact weights, frozen batch
# norm keeps its running statistics), trainable: batchnorm (only gamma and
# beta move), freeze patterns, lr_mult 0, stages (head only, then all,
# deterministic), and config errors (a pattern that matches nothing, stages
# that do not add up, a misspelt trainable).
# Usage: test_finetune.sh PATH/TO/cnn PATH/TO/make_image_fixtures
set -u
CNN=${1:?usage: test_finetune.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
MAKE=${2:?usage: test_finetune.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
. "$(dirname "$0")/lib.sh"
TENSORS="python3 $(dirname "$0")/ckpt_tensors.py"

fx=$tmp/fx
mkdir -p "$fx"
"$MAKE" "$fx" >/dev/null || { bad "make_image_fixtures failed"; finish finetune; }

# net FILE UNITS CLASSES [EXTRA LINES...]: conv-bn-relu-conv-bn-relu-gap-fc
net() {
    local file=$1 units=$2 classes=$3; shift 3
    cat >"$file" <<YAML
name: tiny
seed: 3
data:
  train: {path: $fx/mixed, classes: $classes}
  input: {channels: 3, height: 6, width: 8}
  on_bad_image: skip
model:
  layers:
    - conv: {name: c1, filters: 4, kernel: 3, pad: 1}
    - batchnorm: {name: bn1}
    - relu
    - conv: {name: c2, filters: 6, kernel: 3, pad: 1}
    - batchnorm: {name: bn2}
    - relu
    - globalavgpool
    - dense: {name: fc, units: $units}
  loss: softmax_cross_entropy
YAML
    for line in "$@"; do echo "$line"; done >>"$file"
}

# changed A B NAME: the tensor NAME differs between checkpoints A and B
changed() {
    [ "$($TENSORS "$1" | grep "^$3 ")" != "$($TENSORS "$2" | grep "^$3 ")" ]
}

# moves CKPT "MOVED..." "HELD...": in CKPT every MOVED tensor differs from
# the pretrained checkpoint's and every HELD one is the same
moves() {
    local t
    for t in $2; do changed "$pre" "$1" "$t" || return 1; done
    for t in $3; do ! changed "$pre" "$1" "$t" || return 1; done
}

net "$tmp/pre.yaml" 3 "[a, b, c]" "train: {epochs: 2, batch: 8, optimizer: {type: adam, lr: 0.01}}"
"$CNN" train "$tmp/pre.yaml" --threads 1 --out "$tmp/pre" >/dev/null 2>&1 \
    || { bad "pretraining failed"; finish finetune; }
pre=$tmp/pre/last.cnn

ft_train="train: {epochs: 2, batch: 8, optimizer: {type: sgd, lr: 0.05, momentum: 0.9}"

# --- the head has another shape: an error naming both, unless dropped
net "$tmp/ft.yaml" 2 "[a, b]" "$ft_train}"
expect 2 "fc': weight is [2][6] in the new network but [3][6] in the checkpoint" \
    "$CNN" finetune "$tmp/ft.yaml" --from "$pre" --out "$tmp/x"
expect 2 "no pretrained checkpoint: give --from CKPT" \
    "$CNN" finetune "$tmp/ft.yaml" --out "$tmp/x"

# --- trainable: head with the old head dropped
net "$tmp/ft.yaml" 2 "[a, b]" "$ft_train, trainable: head}" "finetune: {drop: [fc]}"
if "$CNN" finetune "$tmp/ft.yaml" --from "$pre" --threads 1 --out "$tmp/head" \
    >"$tmp/out" 2>"$tmp/err"; then
    ok "finetune, trainable: head"
else
    bad "finetune head: $(cat "$tmp/err")"
fi
grep -qE '^c1 +loaded +c1$' "$tmp/err" && grep -qE '^fc +new ' "$tmp/err" \
    && grep -qE '^fc +dropped +\(finetune.drop\)' "$tmp/err" \
    && ok "the table shows loaded, new and dropped" || bad "table: $(cat "$tmp/err")"
grep -q "trainable: head: 14 of 368 parameters train" "$tmp/err" \
    && ok "only the head's 14 parameters train" || bad "$(grep trainable "$tmp/err")"
same=1
for t in c1.weight c1.bias bn1.gamma bn1.running_mean bn1.running_var c2.weight \
         bn2.beta bn2.running_var; do
    changed "$pre" "$tmp/head/last.cnn" "$t" && { same=0; bad "head only: $t changed"; }
done
[ $same -eq 1 ] && ok "head only: loaded weights and frozen batch-norm statistics unchanged"

# --- reinit instead of drop
net "$tmp/re.yaml" 2 "[a, b]" "$ft_train, trainable: head}" "finetune: {reinit: [fc]}"
"$CNN" finetune "$tmp/re.yaml" --from "$pre" --threads 1 --out "$tmp/re" >/dev/null 2>"$tmp/err" \
    && grep -qE '^fc +reinit ' "$tmp/err" && ok "reinit takes a mismatched layer afresh" \
    || bad "reinit: $(cat "$tmp/err")"

# --- rename: the pretrained c1 becomes this network's "first"
net "$tmp/rn.yaml" 2 "[a, b]" "$ft_train, trainable: head}" \
    "finetune: {drop: [fc], rename: {c1: first}}"
sed -i 's/name: c1,/name: first,/' "$tmp/rn.yaml"
"$CNN" finetune "$tmp/rn.yaml" --from "$pre" --threads 1 --out "$tmp/rn" >/dev/null 2>"$tmp/err" \
    && grep -qE '^first +loaded +c1$' "$tmp/err" \
    && [ "$($TENSORS "$pre" | sed -n 's/^c1.weight //p')" = \
         "$($TENSORS "$tmp/rn/last.cnn" | sed -n 's/^first.weight //p')" ] \
    && ok "rename takes c1's weights into 'first'" || bad "rename: $(cat "$tmp/err")"

# --- trainable: batchnorm: only gamma and beta move
net "$tmp/bn.yaml" 3 "[a, b, c]" "$ft_train, trainable: batchnorm}"
"$CNN" finetune "$tmp/bn.yaml" --from "$pre" --threads 1 --out "$tmp/bn" >/dev/null 2>"$tmp/err" \
    || bad "batchnorm only: $(cat "$tmp/err")"
if moves "$tmp/bn/last.cnn" "bn1.gamma bn2.beta" "c1.weight fc.weight"; then
    ok "trainable: batchnorm trains gamma and beta only"
else
    bad "trainable: batchnorm moved the wrong tensors"
fi
grep -q "trainable: batchnorm: 20 of 375 parameters train" "$tmp/err" \
    && ok "batchnorm parameter count" || bad "$(grep trainable "$tmp/err")"

# --- freeze patterns and lr_mult 0 on top of trainable: all
net "$tmp/fr.yaml" 3 "[a, b, c]" "$ft_train, freeze: ['c*'], lr_mult: {bn1: 0}}"
"$CNN" finetune "$tmp/fr.yaml" --from "$pre" --threads 1 --out "$tmp/fr" >/dev/null 2>"$tmp/err" \
    || bad "freeze: $(cat "$tmp/err")"
if moves "$tmp/fr/last.cnn" "bn2.gamma fc.weight" "c1.weight c2.weight bn1.gamma"; then
    ok "freeze: ['c*'] and lr_mult {bn1: 0} hold those layers"
else
    bad "freeze/lr_mult moved the wrong tensors"
fi

# --- lr_mult: the first matching pattern counts; 0 everywhere else trains
# only the head while batch norm still uses batch statistics
net "$tmp/lm.yaml" 3 "[a, b, c]" "$ft_train, lr_mult: {fc: 1, '*': 0}}"
"$CNN" finetune "$tmp/lm.yaml" --from "$pre" --threads 1 --out "$tmp/lm" >/dev/null 2>"$tmp/err" \
    || bad "lr_mult fc only: $(cat "$tmp/err")"
if moves "$tmp/lm/last.cnn" "fc.weight" "c1.weight bn1.gamma"; then
    ok "lr_mult {fc: 1, '*': 0} moves only fc"
else
    bad "lr_mult {fc: 1, '*': 0} moved the wrong tensors"
fi
grep -q "trainable: all: 21 of 375 parameters train" "$tmp/err" \
    && ok "parameters with lr_mult 0 are not counted as training" || bad "$(grep trainable "$tmp/err")"
net "$tmp/lm0.yaml" 3 "[a, b, c]" "$ft_train, lr_mult: {'*': 0, fc: 1}}"
expect 2 "nothing to train: every layer is frozen or has lr_mult 0" \
    "$CNN" finetune "$tmp/lm0.yaml" --from "$pre" --out "$tmp/x"
net "$tmp/typo.yaml" 3 "[a, b, c]" "$ft_train, freeze: [conv1]}"
expect 2 "freeze pattern 'conv1' matches no layer" \
    "$CNN" finetune "$tmp/typo.yaml" --from "$pre" --out "$tmp/x"

# --- stages: head only, then everything
stages="train: {batch: 8, optimizer: {type: sgd, lr: 0.05, momentum: 0.9}, stages: [{epochs: 1, trainable: head, lr: 0.1}, {epochs: 2, trainable: all, lr: 0.01}]}"
net "$tmp/st.yaml" 2 "[a, b]" "$stages" "finetune: {drop: [fc]}"
"$CNN" finetune "$tmp/st.yaml" --from "$pre" --threads 1 --out "$tmp/st" >/dev/null 2>"$tmp/err" \
    || bad "stages: $(cat "$tmp/err")"
grep -q "stage 2 of 2: epochs 2-3, lr 0.01" "$tmp/err" && ok "stages announced" \
    || bad "stages: $(grep stage "$tmp/err")"
changed "$pre" "$tmp/st/last.cnn" c1.weight && ok "stage 2 trains the loaded layers" \
    || bad "stage 2 left c1 unchanged"
"$CNN" finetune "$tmp/st.yaml" --from "$pre" --threads 1 --out "$tmp/res" >/dev/null 2>&1
cmp -s "$tmp/res/last.cnn" "$tmp/st/last.cnn" && ok "staged fine-tune is deterministic" \
    || bad "staged fine-tune differs between runs"
epochs=$(wc -l <"$tmp/st/log.jsonl")
[ "$epochs" -eq 3 ] && ok "stages add up to 3 epochs" || bad "$epochs epochs logged"
# the first stage alone, then --resume with both: the second stage starts
# at the boundary with a fresh optimizer, as in the unbroken run
one="train: {batch: 8, optimizer: {type: sgd, lr: 0.05, momentum: 0.9}, stages: [{epochs: 1, trainable: head, lr: 0.1}]}"
net "$tmp/st1.yaml" 2 "[a, b]" "$one" "finetune: {drop: [fc]}"
if "$CNN" finetune "$tmp/st1.yaml" --from "$pre" --threads 1 --out "$tmp/cut" >/dev/null 2>&1 \
    && "$CNN" finetune "$tmp/st.yaml" --from "$pre" --threads 1 --out "$tmp/cut" \
        --resume "$tmp/cut/last.cnn" >/dev/null 2>"$tmp/err" \
    && grep -q "stage 2 of 2: epochs 2-3, lr 0.01" "$tmp/err" \
    && python3 tests/ckpt_tensors.py close "$tmp/st/last.cnn" "$tmp/cut/last.cnn" 0 >/dev/null; then
    ok "stage 1 alone, then --resume into stage 2: the unbroken run's weights exactly"
else
    bad "resume at a stage boundary: $(tail -3 "$tmp/err")"
fi
# a second fine-tune into that folder is refused; the command it offers,
# cnn finetune with the same --from, continues the run
expect 2 "$tmp/cut: error: the run directory already holds last.cnn" \
    "$CNN" finetune "$tmp/st.yaml" --from "$pre" --threads 1 --out "$tmp/cut" --set train.epochs=4 \
    --set train.stages.1.epochs=3
hint=$(sed -n 's/^  or continue that run: //p' "$tmp/err")
[ "$hint" = "cnn finetune $tmp/st.yaml --from $pre --set 'train.epochs=4' --set 'train.stages.1.epochs=3' --resume $tmp/cut/last.cnn" ] \
    && ok "the refusal offers the finetune --from command that resumes" || bad "resume hint: '$hint'"
if eval "\"$CNN\" ${hint#cnn }" >/dev/null 2>"$tmp/err" \
    && [ "$(wc -l <"$tmp/cut/log.jsonl")" -eq 4 ]; then
    ok "... and that command trains the fourth epoch"
else
    bad "the offered command: $(tail -3 "$tmp/err")"
fi
net "$tmp/bad.yaml" 2 "[a, b]" "train: {epochs: 5, stages: [{epochs: 1}, {epochs: 2}]}"
expect 2 "train.epochs is 5 but the stages add up to 3 epochs" "$CNN" check "$tmp/bad.yaml"
net "$tmp/bad.yaml" 2 "[a, b]" "train: {trainable: heads}"
expect 2 "did you mean 'head'?" "$CNN" check "$tmp/bad.yaml"

finish finetune
