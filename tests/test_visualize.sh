#!/usr/bin/env bash
# `cnn visualize` through the CLI, on a tiny net trained for two epochs on
# the image fixtures: filters in colour (3 channels), a row of grey tiles
# per filter, --mean, and feature maps for one image, each a PNG of the size
# the tile layout gives; a config's fresh network; bad layer names, layers
# without filters, missing or unreadable images and unwritable outputs with
# their messages and exit codes.
# Usage: test_visualize.sh PATH/TO/cnn PATH/TO/make_image_fixtures (from the
# repository root).
set -u
CNN=${1:?usage: test_visualize.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
MAKE=${2:?usage: test_visualize.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
case $CNN in /*) ;; *) CNN=$PWD/$CNN ;; esac
. "$(dirname "$0")/lib.sh"

fx=$tmp/fx
mkdir -p "$fx"
"$MAKE" "$fx" >/dev/null || { bad "make_image_fixtures failed"; finish visualize; }
cat >"$tmp/net.yaml" <<YAML
name: vis
seed: 3
data:
  train: {path: $fx/folders}
  input: {channels: 3, height: 6, width: 8}
  on_bad_image: skip
model:
  layers:
    - conv: {name: conv1, filters: 4, kernel: 3, pad: 1}
    - relu
    - conv: {name: conv2, filters: 2, kernel: 3, pad: 1}
    - globalavgpool
    - dense: {name: head, units: 3}
train:
  epochs: 2
  batch: 4
  optimizer: {type: adam, lr: 0.01}
YAML
run_ok "train a tiny net" "$CNN" train "$tmp/net.yaml" --threads 1 --out "$tmp/run"
ck=$tmp/run/last.cnn
img=$fx/folders/cat/a.png

# --- visualize -------------------------------------------------------------
# 4 colour 3x3 filters: 2x2 tiles of 48 (3 x 16) + gaps of 2: 102x102
run_ok "filters of conv1" "$CNN" visualize "$ck" --filters conv1 --out "$tmp/f1.png"
png_is "conv1 filters" "$tmp/f1.png" "102 102"
grep -q "filters of conv1 (conv, weight 4x3x3x3): 4 tiles, colour -> $tmp/f1.png (102x102)" \
    "$tmp/out" && ok "says what it drew" || bad "stdout: $(cat "$tmp/out")"
# 2 filters of 4 channels: a row of 4 grey tiles per filter: 202x102
run_ok "filters of conv2" "$CNN" visualize "$ck" --filters conv2 --out "$tmp/f2.png"
png_is "conv2 filters, a row per filter" "$tmp/f2.png" "202 102"
run_ok "filters of conv2 --mean" "$CNN" visualize "$ck" --filters conv2 --mean \
    --out "$tmp/f2m.png"
png_is "conv2 filters, mean over channels" "$tmp/f2m.png" "102 52"
run_ok "--scale and --cols" "$CNN" visualize "$ck" --filters conv1 --scale 2 --cols 4 \
    --out "$tmp/f1s.png"
png_is "conv1 filters at scale 2, 4 columns" "$tmp/f1s.png" "34 10"
# 4 maps of 6x8, 12 pixels a cell (96 / 8): 2x2 tiles of 96x72: 198x150
run_ok "activations of conv1" "$CNN" visualize "$ck" --activations conv1 --image "$img" \
    --out "$tmp/a1.png"
png_is "conv1 activations" "$tmp/a1.png" "198 150"
grep -q "4 maps of 6x8" "$tmp/out" && ok "says how many maps" || bad "stdout: $(cat "$tmp/out")"
run_ok "a config's fresh network" "$CNN" visualize "$tmp/net.yaml" --filters conv1 \
    --out "$tmp/fc.png"
png_is "fresh conv1 filters" "$tmp/fc.png" "102 102"
cmp -s "$tmp/f1.png" "$tmp/fc.png" && bad "trained and fresh filters draw the same" \
    || ok "trained filters differ from fresh ones"
(cd "$tmp" && "$CNN" visualize "$ck" --filters conv1 >/dev/null 2>&1) \
    && [ -f "$tmp/filters.png" ] && ok "default --out filters.png" || bad "no filters.png"

expect 2 "$ck: error: no layer named 'cnov1'; did you mean 'conv1'?" \
    "$CNN" visualize "$ck" --filters cnov1 --out "$tmp/x.png"
expect 2 "no layer named 'relu9'" "$CNN" visualize "$ck" --activations relu9 \
    --image "$img" --out "$tmp/x.png"
expect 2 "layer 'relu1' (relu) has no filters: --filters takes a conv or conv_transpose layer" \
    "$CNN" visualize "$ck" --filters relu1 --out "$tmp/x.png"
expect 2 "--activations needs --image IMAGE" "$CNN" visualize "$ck" --activations conv1
expect 2 "give one of --filters LAYER and --activations LAYER" "$CNN" visualize "$ck"
expect 2 "give one of --filters LAYER and --activations LAYER" \
    "$CNN" visualize "$ck" --filters conv1 --activations conv1 --image "$img"
expect 2 "--mean goes with --filters" "$CNN" visualize "$ck" --activations conv1 \
    --image "$img" --mean
expect 2 "missing CKPT or CONFIG" "$CNN" visualize --filters conv1
expect 1 "$fx/bad/text.jpg: error: not an image" "$CNN" visualize "$ck" \
    --activations conv1 --image "$fx/bad/text.jpg" --out "$tmp/x.png"
expect 1 "$tmp/nodir/f.png: error: cannot write the PNG" "$CNN" visualize "$ck" \
    --filters conv1 --out "$tmp/nodir/f.png"
[ ! -e "$tmp/x.png" ] && ok "no picture written on errors" || bad "$tmp/x.png written"

finish visualize
