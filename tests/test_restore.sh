#!/usr/bin/env bash
# `cnn restore`, the deep image prior, through the CLI on small PNGs drawn
# by `cnn visualize` from a fresh network: the loss falls, the output has
# the cropped size, --save-every writes snapshots, the same seed gives the
# same bytes and another seed other bytes, inpainting with a mask, and
# every bad argument with its message and exit code.
# Usage: test_restore.sh PATH/TO/cnn PATH/TO/make_image_fixtures (from the
# repository root).
set -u
CNN=${1:?usage: test_restore.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
MAKE=${2:?usage: test_restore.sh PATH/TO/cnn PATH/TO/make_image_fixtures}
case $CNN in /*) ;; *) CNN=$PWD/$CNN ;; esac
. "$(dirname "$0")/lib.sh"

fx=$tmp/fx
mkdir -p "$fx"
"$MAKE" "$fx" >/dev/null || { bad "make_image_fixtures failed"; finish restore; }
cat >"$tmp/net.yaml" <<'YAML'
name: pictures
seed: 3
data:
  input: {channels: 3, height: 6, width: 8}
model:
  layers:
    - conv: {name: conv1, filters: 4, kernel: 3, pad: 1}
YAML
img=$fx/folders/cat/a.png
# a 102x102 colour picture (4 filters) and a 198x150 one (4 maps)
run_ok "a photo to restore" "$CNN" visualize "$tmp/net.yaml" --filters conv1 --out "$tmp/f1.png"
run_ok "a mask" "$CNN" visualize "$tmp/net.yaml" --activations conv1 --image "$img" \
    --out "$tmp/a1.png"

# --- restore ---------------------------------------------------------------
# The 102x102 filter picture as the photo: depth 3 crops it to 96x96.
photo=$tmp/f1.png
run_ok "restore: denoise" "$CNN" restore "$photo" --task denoise --out "$tmp/r.png" \
    --iterations 30 --width 8 --depth 3 --save-every 10 --reference "$photo" --threads 1
png_is "restored image, cropped to a multiple of 8" "$tmp/r.png" "96 96"
grep -q "using its centred 96x96" "$tmp/err" && ok "says it crops" || bad "stderr: $(cat "$tmp/err")"
read -r last first < <(sed -n 's/.*loss \([0-9.]*\) from \([0-9.]*\),.*/\1 \2/p' "$tmp/out")
awk -v a="${last:-1}" -v b="${first:-0}" 'BEGIN { exit !(a < 0.7 * b) }' \
    && ok "the loss falls ($first -> $last)" || bad "loss $first -> $last: $(cat "$tmp/out")"
grep -q "^psnr: corrupted inf dB, restored [0-9.]* dB" "$tmp/out" \
    && ok "PSNR against the reference" || bad "stdout: $(cat "$tmp/out")"
for i in 00010 00020 00030; do
    png_is "snapshot $i" "$tmp/r.$i.png" "96 96"
done
cmp -s "$tmp/r.00030.png" "$tmp/r.png" && ok "the last snapshot is the output" \
    || bad "r.00030.png differs from r.png"
run_ok "restore again, same seed" "$CNN" restore "$photo" --task denoise \
    --out "$tmp/r2.png" --iterations 30 --width 8 --depth 3 --threads 1
cmp -s "$tmp/r.png" "$tmp/r2.png" && ok "same seed, same output" || bad "outputs differ"
run_ok "restore, another seed" "$CNN" restore "$photo" --task denoise \
    --out "$tmp/r3.png" --iterations 30 --width 8 --depth 3 --threads 1 --seed 2
cmp -s "$tmp/r.png" "$tmp/r3.png" && bad "seeds 1 and 2 give the same output" \
    || ok "another seed, another output"
# the activations picture (198x150) as a mask for a 198x150 photo
run_ok "another photo" "$CNN" visualize "$tmp/net.yaml" --activations conv1 \
    --image "$fx/folders/dog/Z.PNG" --out "$tmp/photo2.png"
run_ok "restore: inpaint" "$CNN" restore "$tmp/photo2.png" --task inpaint \
    --mask "$tmp/a1.png" --out "$tmp/i.png" --iterations 10 --width 8 --depth 2 --threads 1
png_is "inpainted image" "$tmp/i.png" "196 148"
# the photo as its own reference: denoising starts at infinite PSNR, an
# inpainting's corrupted image has black holes
run_ok "restore: inpaint with a reference" "$CNN" restore "$tmp/photo2.png" --task inpaint \
    --mask "$tmp/a1.png" --out "$tmp/i.png" --iterations 2 --width 8 --depth 2 --threads 1 \
    --reference "$tmp/photo2.png"
grep -q "^psnr: corrupted [0-9.]* dB, restored [0-9.]* dB" "$tmp/out" \
    && ok "inpainting: the corrupted image's PSNR counts the holes" || bad "stdout: $(cat "$tmp/out")"

expect 2 "missing --task denoise|inpaint" "$CNN" restore "$photo" --out "$tmp/x.png"
expect 2 "--task must be denoise or inpaint, got 'blur'" "$CNN" restore "$photo" \
    --task blur --out "$tmp/x.png"
expect 2 "--task inpaint needs --mask MASK.png" "$CNN" restore "$photo" --task inpaint \
    --out "$tmp/x.png"
expect 2 "--mask goes with --task inpaint" "$CNN" restore "$photo" --task denoise \
    --mask "$tmp/a1.png" --out "$tmp/x.png"
expect 2 "missing --out OUT.png" "$CNN" restore "$photo" --task denoise
expect 2 "missing IMAGE" "$CNN" restore --task denoise --out "$tmp/x.png"
expect 2 "--ema must be a number in [0, 1), got '1'" "$CNN" restore "$photo" \
    --task denoise --out "$tmp/x.png" --ema 1
expect 2 "--depth is at most 8" "$CNN" restore "$photo" --task denoise --out "$tmp/x.png" \
    --depth 9
expect 2 "$tmp/a1.png: error: the mask is 198x150 but the image $photo is 102x102" \
    "$CNN" restore "$photo" --task inpaint --mask "$tmp/a1.png" --out "$tmp/x.png"
expect 2 "$img: error: image is 8x6; with --depth 5 cnn restore needs at least 64x64 pixels" \
    "$CNN" restore "$img" --task denoise --out "$tmp/x.png"
expect 1 "$fx/bad/truncated.jpg: error: truncated JPEG" "$CNN" restore \
    "$fx/bad/truncated.jpg" --task denoise --out "$tmp/x.png"
expect 1 "$tmp/nothere.png: error: cannot open" "$CNN" restore "$tmp/nothere.png" \
    --task denoise --out "$tmp/x.png"
[ ! -e "$tmp/x.png" ] && ok "no output written on errors" || bad "$tmp/x.png written"

finish restore
