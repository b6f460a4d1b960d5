#!/usr/bin/env bash
# The main job: install what is missing, build, train LeNet-5 on
# Fashion-MNIST (configs/lenet5-fashion.yaml) and evaluate the checkpoint on
# the 10,000 test images.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build ] || meson setup build >&2
ninja -C build >&2
./build/cli/cnn train configs/lenet5-fashion.yaml --out runs/lenet5-fashion --overwrite
./build/cli/cnn eval runs/lenet5-fashion/last.cnn
