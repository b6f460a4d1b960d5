#!/usr/bin/env bash
# The model zoo: every config in configs/ passes `cnn check`, runs a forward
# and backward pass on one image (`cnn bench --batch 1 --steps 1`), and the
# small networks train a few steps on a fixed random batch, where the loss
# must fall; `cnn bench --inference` times forward passes only.
# Usage: test_zoo.sh PATH/TO/cnn (from the repository root).
set -u
CNN=${1:?usage: test_zoo.sh PATH/TO/cnn}
. "$(dirname "$0")/lib.sh"

for c in configs/*.yaml configs/pretext/*.yaml; do
    if "$CNN" bench "$c" --batch 1 --steps 1 --threads 2 >"$tmp/out" 2>"$tmp/err" \
        && grep -q "^training step:" "$tmp/out"; then
        ok "$c: forward and backward on one image"
    else
        bad "$c: $(tail -3 "$tmp/err")"
    fi
done

# small networks: 30 steps on one batch of 16 must drive the loss down
for c in lenet5 lenet5-fashion resnet20; do
    "$CNN" bench "configs/$c.yaml" --batch 16 --steps 30 --threads 2 \
        --set train.optimizer.lr=0.01 >"$tmp/out" 2>"$tmp/err"
    line=$(grep "^loss on the fixed batch" "$tmp/out")
    first=$(echo "$line" | sed 's/.*first step \([0-9.]*\).*/\1/')
    last=$(echo "$line" | sed 's/.*last step \([0-9.]*\).*/\1/')
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.5 * a) }' \
        && ok "$c trains: loss $first -> $last" || bad "$c: loss '$first' -> '$last' $(tail -2 "$tmp/err")"
done

# inference only, at its own batch: forward passes, no training step
"$CNN" bench configs/lenet5-fashion.yaml --batch 8 --steps 2 --threads 2 --inference \
    >"$tmp/out" 2>"$tmp/err"
grep -q "inference only" "$tmp/out" && grep -q "^inference: .* images/s, .* GFLOP/s" "$tmp/out" \
    && ! grep -q "^training step:" "$tmp/out" \
    && ok "bench --inference times forward passes only" || bad "bench --inference: $(cat "$tmp/out" "$tmp/err")"

finish zoo
