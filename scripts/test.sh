#!/usr/bin/env bash
# Install what is missing, build twice (release, and with AddressSanitizer
# and UndefinedBehaviorSanitizer), run the whole test suite in both builds,
# then the data-parallel test in a third build with MPI (-Dmpi=true), a
# short train + eval under valgrind's memcheck and each fuzz target
# for FUZZ_SECONDS (default 60; 0 skips them), and end with one line
# "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3 valgrind clang libclang-rt-14-dev libomp-14-dev \
    openmpi-bin libopenmpi-dev || exit 1

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
passed=0 failed=0 skipped=0
for kind in release sanitize; do
    dir=build-test-$kind
    if [ ! -d "$dir" ]; then
        if [ $kind = release ]; then
            meson setup "$dir" >/dev/null || exit 1
        else
            meson setup "$dir" -Dbuildtype=debugoptimized \
                -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
        fi
    fi
    ninja -C "$dir" || exit 1
    echo "=== tests ($kind build) ==="
    meson test -C "$dir" --print-errorlogs --num-processes 2
    log="$dir/meson-logs/testlog.txt"
    count() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$log" | tail -1; }
    ok=$(count Ok); fl=$(count Fail); to=$(count Timeout); sk=$(count Skipped)
    passed=$((passed + ${ok:-0})); failed=$((failed + ${fl:-0} + ${to:-0}))
    skipped=$((skipped + ${sk:-0}))
done
# --- data-parallel training over MPI: a build with -Dmpi=true and its test --
# (tests/test_mpi.sh: 2 processes under mpirun against 1, resume with another
# process count, Ctrl-C, kill -9). The other tests run in the builds above,
# whose binary is the same but for MPI.
echo "=== data-parallel tests (MPI build) ==="
dir=build-test-mpi
if [ ! -d "$dir" ] && ! meson setup "$dir" -Dmpi=true >/dev/null; then
    echo "FAIL: mpi: meson setup -Dmpi=true (is libopenmpi-dev installed?)"
    failed=$((failed + 1))
    rm -rf "$dir"
else
    ninja -C "$dir" cli/cnn || exit 1
    meson test -C "$dir" --no-rebuild --print-errorlogs mpi
    log="$dir/meson-logs/testlog.txt"
    ok=$(count Ok); fl=$(count Fail); to=$(count Timeout); sk=$(count Skipped)
    passed=$((passed + ${ok:-0})); failed=$((failed + ${fl:-0} + ${to:-0}))
    skipped=$((skipped + ${sk:-0}))
fi

# --- memcheck: short runs under valgrind, each counted as one test --------
# A build of its own: without -march=native (valgrind decodes no AVX-512)
# and with debug information for the stacks it prints. One compute thread
# and no OpenBLAS pool: threads only slow valgrind down. A run passes when
# cnn exits 0 and valgrind reports no error (invalid reads or writes, uses
# of uninitialised values, bad frees, definitely lost blocks). About a
# minute and a half on 2 cores, the build included.
memcheck() {
    local name=$1 log="$vg/$1.valgrind" out="$vg/$1.out"
    shift
    if OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout 900 valgrind --leak-check=full \
            --errors-for-leak-kinds=definite --error-exitcode=99 --log-file="$log" \
            "$@" >"$out" 2>&1 && grep -q "ERROR SUMMARY: 0 errors" "$log"; then
        echo "ok: memcheck $name ($(grep -o "definitely lost: .*" "$log" || echo "no leaks"))"
        passed=$((passed + 1))
    else
        echo "FAIL: memcheck $name: $*"
        tail -n 5 "$out"
        grep -v "^==[0-9]*== *$" "$log" | head -n 60
        failed=$((failed + 1))
    fi
}
echo "=== memcheck (valgrind) ==="
if ! command -v valgrind >/dev/null; then
    echo "skip: memcheck: valgrind is not installed"
    skipped=$((skipped + 1))
else
    dir=build-test-memcheck
    if [ ! -d "$dir" ]; then
        meson setup "$dir" -Dnative=false -Dbuildtype=debugoptimized >/dev/null || exit 1
    fi
    ninja -C "$dir" cli/cnn tests/make_image_fixtures >"$dir/ninja.log" \
        || { cat "$dir/ninja.log"; exit 1; }
    vg=$dir/memcheck
    rm -rf "$vg"
    mkdir -p "$vg/fixtures"
    "$dir/tests/make_image_fixtures" "$vg/fixtures" >/dev/null || exit 1
    cnn=$dir/cli/cnn
    # Fashion-MNIST: 256 training and 128 validation images, one epoch
    memcheck train-idx "$cnn" train configs/lenet5-fashion.yaml --threads 1 \
        --set data.train.limit=256 --set data.val.limit=128 --set train.epochs=1 \
        --out "$vg/idx"
    memcheck eval-idx "$cnn" eval "$vg/idx/last.cnn" --threads 1 --json
    # image files: decoding, three bad files skipped, augmentation, a loader
    # thread, a validation split; then predict
    cat >"$vg/images.yaml" <<YAML
name: memcheck-images
data:
  train: {path: $vg/fixtures/mixed}
  val_split: 0.25
  input: {channels: 3, height: 6, width: 8}
  on_bad_image: skip
  augment: [flip: horizontal, {crop: {padding: 1, mode: reflect}}]
  loader: {threads: 1}
model:
  layers:
    - conv: {filters: 4, kernel: 3, pad: 1}
    - batchnorm
    - relu
    - dropout: {rate: 0.1}
    - globalavgpool
    - dense: {name: head, units: 3}
train:
  epochs: 1
  batch: 8
  optimizer: {type: adam, lr: 0.01}
YAML
    memcheck train-images "$cnn" train "$vg/images.yaml" --threads 1 --out "$vg/images"
    memcheck predict-images "$cnn" predict "$vg/images/last.cnn" --threads 1 \
        "$vg/fixtures/mixed/a/000.png" "$vg/fixtures/mixed/b/001.png"
fi

# --- fuzzing: each target for a bounded time, from its committed corpus ---
fuzz_secs=${FUZZ_SECONDS:-60}
echo "=== fuzzing (${fuzz_secs} s per target) ==="
for t in config idx image checkpoint; do
    if [ "$fuzz_secs" -eq 0 ] || ! command -v clang >/dev/null; then
        echo "skip: fuzz $t"
        skipped=$((skipped + 1))
    elif scripts/fuzz.sh "$fuzz_secs" "$t"; then
        passed=$((passed + 1))
    else
        echo "FAIL: fuzz $t (see above; the input that did it is kept)"
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
