#!/usr/bin/env bash
# The README's CIFAR-10 result: configs/cifar10-resnet20.yaml (ResNet-20,
# 200 epochs, 4.8 h at 2 threads alone) trained into runs/cifar10-resnet20,
# then scored on the 10,000 test images with `cnn eval`.
#
# usage: scripts/cifar10-resnet20.sh [THREADS]   (from the repository root;
# BUILD=dir picks the build, default build). The run outlasts most
# sittings: running the script again resumes it from its last checkpoint
# (scripts/lib/steps.sh), and prints the result once it is done. The
# finished run of 2026-11-27 is committed (runs/cifar10-resnet20: last.cnn,
# its logs and `seconds`), so in a clone this scores that checkpoint at
# once; remove runs/cifar10-resnet20 and runs/cifar10-resnet20.* to train anew.
set -eu
. "$(dirname "$0")/lib/steps.sh"
threads=${1:-2}
cnn=${BUILD:-build}/cli/cnn
test_dir=../shared/datasets/cifar10/test
out=runs/cifar10-resnet20
[ -d "$test_dir" ] || { echo "$0: $test_dir not found" >&2; exit 1; }
[ -x "$cnn" ] || { echo "$0: $cnn not found: build first" >&2; exit 1; }
mkdir -p runs
step "$out" "$cnn" train configs/cifar10-resnet20.yaml --threads "$threads" || exit 1
"$cnn" eval "$out/last.cnn" --data "$test_dir" --threads "$threads"
echo "wall time: $(cat "$out/seconds") s over every attempt (each epoch: $out/log.csv)"
