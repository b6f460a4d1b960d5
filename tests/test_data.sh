#!/usr/bin/env bash
# Image folders through the CLI: training on a folder per class with
# val_split, bad images skipped and reported (or failing the run),
# augmentation, class names in eval/predict, `cnn data preview`, clear
# errors for bad data and bad data settings, and exact resume (2 epochs +
# resume + 2 epochs gives the same checkpoint bytes as 4 straight, with
# loader threads).
# Usage: test_data.sh PATH/TO/cnn PATH/TO/make_image_fixtures (from the
# repository root).
set -u
CNN=${1:?usage: test_data.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
MAKE=${2:?usage: test_data.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
. "$(dirname "$0")/lib.sh"

fx=$tmp/fx
mkdir -p "$fx"
"$MAKE" "$fx" >/dev/null || { bad "make_image_fixtures failed"; finish data; }

# config FILE TRAIN-SOURCE [EXTRA DATA LINES]: a tiny net on 3x6x8 images
config() {
    local file=$1 src=$2; shift 2
    {
        echo "name: tiny"
        echo "seed: 5"
        echo "data:"
        echo "  train: $src"
        echo "  input: {channels: 3, height: 6, width: 8}"
        for line in "$@"; do echo "  $line"; done
        cat <<'YAML'
model:
  layers:
    - conv: {filters: 4, kernel: 3, pad: 1}
    - batchnorm
    - relu
    - dropout: {rate: 0.1}
    - globalavgpool
    - dense: {name: head, units: 3}
  loss: softmax_cross_entropy
train:
  epochs: 4
  batch: 8
  optimizer: {type: adam, lr: 0.01}
YAML
    } >"$file"
}

good="{path: $fx/mixed}"
config "$tmp/skip.yaml" "$good" "val_split: 0.25" "on_bad_image: skip" \
    "augment: [flip: horizontal, {crop: {padding: 1, mode: reflect}}, {noise: {std: 0.02}}]" \
    "loader: {threads: 2}"

# --- training on a folder, bad images skipped and reported
if "$CNN" train "$tmp/skip.yaml" --threads 1 --out "$tmp/run" >"$tmp/out" 2>"$tmp/err"; then
    ok "train on a folder with on_bad_image: skip"
else
    bad "train on a folder: exit $?: $(tail -5 "$tmp/err")"
fi
grep -q "skipped 3 bad images" "$tmp/err" && ok "skipped images counted" \
    || bad "no skip report: $(grep -i skip "$tmp/err")"
grep -q "truncated JPEG" "$tmp/err" && ok "skip report names the reason" \
    || bad "skip report without reasons: $(cat "$tmp/err")"
grep -q "93 training and 30 validation images" "$tmp/err" \
    && ok "val_split 0.25 of 123 files (10 of each class's 41), stratified" \
    || bad "val_split counts: $(grep val_split "$tmp/err")"
grep -q '"data_wait_s": ' "$tmp/run/log.jsonl" && ok "log.jsonl has data_wait_s" \
    || bad "log.jsonl: $(head -1 "$tmp/run/log.jsonl")"
head -1 "$tmp/run/log.csv" | grep -q ',data_wait_s$' && ok "log.csv has data_wait_s" \
    || bad "log.csv header: $(head -1 "$tmp/run/log.csv")"

# --- the same folder without skipping: the first bad file stops the run
config "$tmp/fail.yaml" "$good"
expect 1 "on_bad_image: skip" "$CNN" train "$tmp/fail.yaml" --out "$tmp/failrun"
grep -q "$fx/mixed/" "$tmp/err" && ok "the failing image is named" \
    || bad "failing image not named: $(cat "$tmp/err")"

# --- class names in eval and predict
"$CNN" eval "$tmp/run/last.cnn" --json >"$tmp/eval.json" 2>"$tmp/err" \
    && grep -q '"data": "data.val_split of data.train", "samples": 30,' "$tmp/eval.json" \
    && ok "eval without --data scores the images val_split held out" \
    || bad "eval of the val_split: $(cat "$tmp/err" "$tmp/eval.json" | head -c 600)"
# folders/ holds bird, cat, dog: not the classes a, b, c of the checkpoint
expect 2 "class 'bird' is not one of the 3 classes the network was trained on (a, b, c)" \
    "$CNN" eval "$tmp/run/last.cnn" --data "$fx/folders"
"$CNN" eval "$tmp/run/last.cnn" --data "$fx/mixed" --json >"$tmp/eval.json" 2>"$tmp/err" \
    && grep -q '"name": "a"' "$tmp/eval.json" && grep -q '"name": "c"' "$tmp/eval.json" \
    && ok "eval --json names the classes" || bad "eval names: $(cat "$tmp/err" "$tmp/eval.json")"
"$CNN" eval "$tmp/run/last.cnn" --data "$fx/mixed" >"$tmp/eval.txt" 2>/dev/null
grep -qE '^a +[0-9.]+ ' "$tmp/eval.txt" && ok "eval text table names the classes" \
    || bad "eval text: $(head -5 "$tmp/eval.txt")"
img=$(ls "$fx"/mixed/b/*.png | head -1)
out=$("$CNN" predict "$tmp/run/last.cnn" "$img" --top 2 2>&1)
echo "$out" | grep -qE "^$img: [abc] [0-9.]+, [abc] [0-9.]+$" && ok "predict prints names" \
    || bad "predict: $out"
"$CNN" predict "$tmp/run/last.cnn" "$img" --json >"$tmp/pred.json" 2>&1 \
    && grep -q '"probability": ' "$tmp/pred.json" && ok "predict --json" \
    || bad "predict --json: $(cat "$tmp/pred.json")"
expect 1 "$fx/bad/empty.jpg: error: empty file" \
    "$CNN" predict "$tmp/run/last.cnn" "$fx/bad/empty.jpg"

# --- exact resume: 2 epochs + resume to 4 == 4 straight (loader threads 2)
"$CNN" train "$tmp/skip.yaml" --threads 1 --out "$tmp/half" --set train.epochs=2 \
    >/dev/null 2>&1 || bad "2-epoch run failed"
if "$CNN" train "$tmp/skip.yaml" --threads 1 --resume "$tmp/half/last.cnn" \
    >/dev/null 2>"$tmp/err"; then
    if cmp -s "$tmp/half/last.cnn" "$tmp/run/last.cnn"; then
        ok "2 + resume + 2 epochs: the same checkpoint bytes as 4 straight"
    else
        bad "resumed run differs from the straight run"
    fi
    [ "$(wc -l <"$tmp/half/log.jsonl")" -eq 4 ] && ok "resume appends to log.jsonl" \
        || bad "log.jsonl after resume has $(wc -l <"$tmp/half/log.jsonl") lines"
else
    bad "resume: $(cat "$tmp/err")"
fi
"$CNN" train "$tmp/skip.yaml" --threads 1 --out "$tmp/again" >/dev/null 2>&1
cmp -s "$tmp/again/last.cnn" "$tmp/run/last.cnn" \
    && ok "same config and seed: the same checkpoint bytes" || bad "training is not deterministic"

# --- preview
if "$CNN" data preview "$tmp/skip.yaml" --out "$tmp/grid.png" --count 12 --cols 4 \
    >"$tmp/out" 2>"$tmp/err" \
    && [ "$(head -c 8 "$tmp/grid.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    ok "data preview writes a PNG"
else
    bad "data preview: $(cat "$tmp/err")"
fi
# the tiles show the pixels before normalisation, but cutout fills its
# squares with the mean: with squares covering every image the grid
# follows normalize's mean, without them it does not depend on it
for m in 0.2 0.8; do
    for aug in "[flip: horizontal]" "[cutout: {size: 20}]"; do
        f=$tmp/grid-$m-${aug:1:4}.png
        config "$tmp/p.yaml" "$good" "on_bad_image: skip" "augment: $aug" \
            "normalize: {mean: [$m], std: [0.3]}"
        "$CNN" data preview "$tmp/p.yaml" --out "$f" --count 4 >/dev/null 2>"$tmp/err" \
            || bad "data preview with $aug: $(cat "$tmp/err")"
    done
done
cmp -s "$tmp/grid-0.2-flip.png" "$tmp/grid-0.8-flip.png" \
    && ok "data preview undoes normalize" || bad "data preview depends on normalize's mean"
# the pixels: 8x6 images drawn 8 times larger, tiles 64x48 at x = 4 + 68 i,
# y = 4, with the class name below; a 20-pixel cutout square hides all of
# an image, so its tile is the mean alone: 0.2 * 255 -> 51, 0.8 -> 204
tiles() {   # FILE: the colours of each of the 4 tiles, ';' between tiles
    for i in 0 1 2 3; do
        python3 tests/png_pixels.py "$1" $((4 + 68 * i)) 4 64 48 | tr '\n' ' '
        echo ";"
    done | tr -d '\n'
}
for m in 0.2:51 0.8:204; do
    v=${m#*:} want=""
    for i in 0 1 2 3; do want="$want$v $v $v 3072 ;"; done
    got=$(tiles "$tmp/grid-${m%:*}-cuto.png")
    [ "$got" = "$want" ] && ok "data preview: cutout tiles are the mean colour ($v) and nothing else" \
        || bad "cutout tiles with mean ${m%:*}: '$got', want '$want'"
done
colours=$(python3 tests/png_pixels.py "$tmp/grid-0.2-flip.png" 4 4 64 48 | wc -l)
[ "$colours" -gt 4 ] && ok "data preview: an image tile has $colours colours" \
    || bad "data preview: an image tile has $colours colours"
label=$(python3 tests/png_pixels.py "$tmp/grid-0.2-flip.png" 4 54 64 12 | grep -c "^0 0 0 ")
[ "$label" -eq 1 ] && ok "data preview: the class name is drawn under the tile" \
    || bad "data preview: no black label pixels under the first tile"
expect 2 "expected 'preview'" "$CNN" data show "$tmp/skip.yaml"

# --- bad data, each named
config "$tmp/c.yaml" "{path: $fx/emptyclass}"
expect 1 "class folder 'dog' has no images" "$CNN" train "$tmp/c.yaml" --out "$tmp/x"
config "$tmp/c.yaml" "{path: $fx/empty}"
expect 1 "$fx/empty: error: " "$CNN" train "$tmp/c.yaml" --out "$tmp/x"
config "$tmp/c.yaml" "{list: $fx/lists/missing.txt}"
expect 1 "$fx/lists/missing.txt:3:" "$CNN" train "$tmp/c.yaml" --out "$tmp/x"
for f in truncated.jpg empty.jpg text.jpg; do
    mkdir -p "$tmp/one_$f/a"
    cp "$fx/bad/$f" "$tmp/one_$f/a/"
    cp "$img" "$tmp/one_$f/a/good.png"
    config "$tmp/c.yaml" "{path: $tmp/one_$f}"
    expect 1 "$tmp/one_$f/a/$f: error: " "$CNN" train "$tmp/c.yaml" --out "$tmp/x"
done
config "$tmp/c.yaml" "{path: $fx/bad}" "max_pixels: 10000" "on_bad_image: skip"
mkdir -p "$tmp/big/a"
cp "$fx"/bad/*.png "$tmp/big/a/"
cp "$img" "$tmp/big/a/good.png"
config "$tmp/c.yaml" "{path: $tmp/big}" "max_pixels: 10000"
expect 1 "more than the limit of 10000" "$CNN" train "$tmp/c.yaml" --out "$tmp/x"

# --- bad data settings, by line and column
config "$tmp/c.yaml" "$good" "val: $good" "val_split: 0.1"
expect 2 "c.yaml:7:14: error: data.val_split carves" "$CNN" check "$tmp/c.yaml"
config "$tmp/c.yaml" "$good" "augment: [flipp]"
expect 2 "did you mean 'flip'?" "$CNN" check "$tmp/c.yaml"
config "$tmp/c.yaml" "$good" "augment: [{jitter: {hue: 0.7}}]"
expect 2 "c.yaml:6:28: error: data.augment.0.jitter.hue must be in [0, 0.5], got 0.7" "$CNN" check "$tmp/c.yaml"
config "$tmp/c.yaml" "$good" "resize: {mode: crop, height: 4}"
expect 2 "data.resize.height (4) must be at least data.input.height (6)" \
    "$CNN" check "$tmp/c.yaml"
config "$tmp/c.yaml" "$good" "resize: {mode: squash}"
expect 2 "data.resize.mode must be one of stretch, crop, letterbox" "$CNN" check "$tmp/c.yaml"
config "$tmp/c.yaml" "{path: $fx/mixed, list: x.txt}"
expect 2 "data.train has more than one source" "$CNN" check "$tmp/c.yaml"

finish data
