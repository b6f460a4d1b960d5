#!/usr/bin/env bash
# Faults and absurd inputs through the CLI, on small synthetic IDX data:
#   - kill -9 at random moments, mostly while a 12 MB checkpoint is being
#     written: last.cnn, once it exists, is always readable, and the next run
#     resumes from it;
#   - a full disk (a file size limit, and a small tmpfs where one can be
#     mounted): a clear error naming the file, exit 1, the previous
#     checkpoint byte for byte intact, no temporary file left; the log on
#     /dev/full: exit 1 naming it;
#   - a run directory that cannot be created or written: exit 1 before the
#     data is loaded;
#   - a loss that is not finite (a huge learning rate; weights of 3e38 or a
#     NaN planted in a checkpoint) and a gradient that is not finite under a
#     finite loss (planted weights): exit 1 at that step, naming the step and
#     the first layer with a non-finite value; the last checkpoint kept;
#   - limits: --max-memory, an input whose activations would take terabytes,
#     and absurd config values (batch 0 or negative, a kernel larger than its
#     padded input, 10^9 filters, 2*10^9 units) refused with the estimate or
#     with file:line:column, before anything big is allocated.
# Usage: test_faults.sh PATH/TO/cnn (from the repository root).
set -u
CNN=${1:?usage: test_faults.sh PATH/TO/cnn}
. "$(dirname "$0")/lib.sh"

# --- data: IDX files, random pixels, labels 0 1 2 3 4 0 1 ... ---------------
idx() {   # PREFIX N: PREFIX.images (N x 16 x 16) and PREFIX.labels
    { be32 2051; be32 "$2"; be32 16; be32 16; head -c $(($2 * 256)) /dev/urandom; } >"$1.images"
    { be32 2049; be32 "$2"
      for _ in $(seq 0 $(($2 / 5))); do printf '\000\001\002\003\004'; done | head -c "$2"
    } >"$1.labels"
}
idx "$tmp/d" 64
[ "$(wc -c <"$tmp/d.labels")" -eq 72 ] || { bad "synthetic labels"; finish faults; }

# config FILE LAYERS...: 1x16x16 inputs, 5 classes, Adam, batch 16 (4 steps an epoch)
config() {
    local file=$1; shift
    cat >"$file" <<YAML
name: faults
seed: 3
data:
  train: {images: $tmp/d.images, labels: $tmp/d.labels}
  input: {channels: 1, height: 16, width: 16}
  normalize: {mean: [0.5], std: [0.29]}
model:
  layers:
YAML
    for layer in "$@"; do echo "    - $layer"; done >>"$file"
    cat >>"$file" <<YAML
train:
  epochs: 1
  batch: 16
  optimizer: {type: adam, lr: 0.001}
YAML
}
# small: a conv net; wide: a 256 -> 4096 dense layer, 12 MB checkpoints
config "$tmp/small.yaml" "conv: {name: c1, filters: 4, kernel: 3, pad: 1}" relu \
    "maxpool: {size: 2}" "dense: {name: d1, units: 16}" relu "dense: {name: out, units: 5}"
config "$tmp/wide.yaml" "dense: {name: wide, units: 4096}" relu "dense: {name: head, units: 5}"
# limited CMD...: CMD under a 4 GiB address-space limit, so that an attempt
# to allocate terabytes fails differently from the refusal expected; not in
# a sanitizer build, whose shadow memory needs terabytes of address space
if bash -c 'ulimit -v 4194304; exec "$@"' - "$CNN" --help >/dev/null 2>&1; then
    limited() { bash -c 'ulimit -v 4194304; exec "$@"' - "$@"; }
else
    limited() { "$@"; }
fi
readable() { "$CNN" summary "$1" >/dev/null 2>"$tmp/summary.err"; }
tmp_files() { find "$1" -name '*.tmp.*' | wc -l; }

# --- kill -9 at random moments ------------------------------------------------
# Each round trains (resuming from last.cnn once there is one) and is killed
# after 0.1 to 2 s; the wide net spends most of an epoch writing its
# checkpoint, so most kills land inside a write. last.cnn must be readable
# after every kill once it has been written once, and every round must still
# be running when killed (a resume from a killed run works).
run=$tmp/kill
mkdir -p "$run"
# A first last.cnn from a run of one whole epoch: on a loaded machine no
# round might live long enough to finish a first write, and the rounds
# must kill runs that have a checkpoint to lose.
"$CNN" train "$tmp/wide.yaml" --out "$run" --threads 1 --set train.epochs=1 \
    >/dev/null 2>"$tmp/kill.err" && readable "$run/last.cnn" \
    && ok "kill -9: a first checkpoint to kill over" \
    || bad "kill -9: the first epoch failed: $(tail -2 "$tmp/kill.err")"
rounds=30 unreadable=0 early_exit=0 existed=0 mid_write=0
for i in $(seq 1 $rounds); do
    resume=()
    [ -f "$run/last.cnn" ] && resume=(--resume "$run/last.cnn") && existed=$((existed + 1))
    "$CNN" train "$tmp/wide.yaml" --out "$run" --threads 1 --set train.epochs=100000 \
        "${resume[@]}" >/dev/null 2>"$tmp/kill.err" &
    pid=$!
    sleep "$((RANDOM % 20 / 10)).$((RANDOM % 10))$((RANDOM % 10))"
    sleep 0.1
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    code=$?
    if [ "$code" -ne 137 ]; then
        early_exit=$((early_exit + 1))
        echo "round $i: exit $code before the kill: $(tail -2 "$tmp/kill.err")"
    fi
    # a kill inside a write leaves last.cnn.tmp.PID (12 MB): count, remove
    [ "$(tmp_files "$run")" -gt 0 ] && mid_write=$((mid_write + 1))
    find "$run" -name '*.tmp.*' -delete
    if [ -f "$run/last.cnn" ] && ! readable "$run/last.cnn"; then
        unreadable=$((unreadable + 1))
        echo "round $i: last.cnn unreadable: $(cat "$tmp/summary.err")"
    elif [ "$existed" -gt 0 ] && [ ! -f "$run/last.cnn" ]; then
        unreadable=$((unreadable + 1))
        echo "round $i: last.cnn is gone"
    fi
done
echo "kill -9: $rounds rounds, $mid_write killed during a checkpoint write (a .tmp file left)"
[ "$unreadable" -eq 0 ] && [ -f "$run/last.cnn" ] \
    && ok "kill -9 x $rounds: last.cnn always there and readable" \
    || bad "kill -9: last.cnn unreadable or missing after $unreadable of $rounds kills"
[ "$early_exit" -eq 0 ] && ok "kill -9: every round (resuming from the last) was running" \
    || bad "kill -9: $early_exit rounds exited on their own"
[ "$mid_write" -ge 1 ] && ok "kill -9: $mid_write kills landed inside a checkpoint write" \
    || bad "kill -9: no kill landed inside a checkpoint write"
# the last checkpoint trains on
"$CNN" train "$tmp/wide.yaml" --resume "$run/last.cnn" --threads 1 \
    --set train.epochs=100000 >/dev/null 2>"$tmp/err" &
pid=$!
for _ in $(seq 1 200); do grep -q "^epoch" "$tmp/err" && break; sleep 0.1; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
grep -q "^epoch" "$tmp/err" && ok "a run resumes from the last killed one and trains" \
    || bad "resume after kill -9: $(tail -3 "$tmp/err")"

# --- a full disk ------------------------------------------------------------
# A file size limit below the checkpoint's size: writes fail with EFBIG (cnn
# ignores SIGXFSZ, which would kill it), so the new checkpoint cannot be
# written; the old one must stay as it was.
run=$tmp/full
"$CNN" train "$tmp/wide.yaml" --out "$run" --threads 1 >/dev/null 2>"$tmp/err" \
    || bad "train the wide net: $(tail -3 "$tmp/err")"
cp "$run/last.cnn" "$tmp/before.cnn"
size_kb=$(($(wc -c <"$run/last.cnn") / 1024))
(ulimit -f $((size_kb / 3)); "$CNN" train "$tmp/wide.yaml" --resume "$run/last.cnn" \
    --threads 1 --set train.epochs=2 >"$tmp/out" 2>"$tmp/err")
code=$?
[ "$code" -eq 1 ] && grep -q "cannot write checkpoint $run/last.cnn: writing $run/last.cnn.tmp.[0-9]*: File too large" "$tmp/err" \
    && ok "file size limit: exit 1, the error names last.cnn and its temporary file" \
    || bad "file size limit: exit $code (want 1), stderr: $(tail -2 "$tmp/err")"
cmp -s "$tmp/before.cnn" "$run/last.cnn" && ok "file size limit: last.cnn unchanged" \
    || bad "file size limit: last.cnn changed"
[ "$(tmp_files "$run")" -eq 0 ] && ok "file size limit: no temporary file left" \
    || bad "file size limit: left $(find "$run" -name '*.tmp.*')"

# A real full disk: a tmpfs 1.5 times the checkpoint's size, mounted in a
# mount namespace of our own (unshare; as root, or in a user namespace).
cat >"$tmp/tmpfs.sh" <<SH
set -u
mount -t tmpfs -o size=$((size_kb * 3 / 2))k tmpfs "$tmp/mnt" || exit 77
"$CNN" train "$tmp/wide.yaml" --out "$tmp/mnt/run" --threads 1 >/dev/null 2>&1 || exit 3
cp "$tmp/mnt/run/last.cnn" "$tmp/before-tmpfs.cnn"
"$CNN" train "$tmp/wide.yaml" --resume "$tmp/mnt/run/last.cnn" --threads 1 \
    --set train.epochs=2 >/dev/null 2>"$tmp/tmpfs.err"
echo "exit \$?" >>"$tmp/tmpfs.err"
cmp -s "$tmp/before-tmpfs.cnn" "$tmp/mnt/run/last.cnn" && echo same >>"$tmp/tmpfs.err"
"$CNN" summary "$tmp/mnt/run/last.cnn" >/dev/null 2>&1 && echo readable >>"$tmp/tmpfs.err"
find "$tmp/mnt/run" -name '*.tmp.*' | grep -q . && echo leftover >>"$tmp/tmpfs.err"
exit 0
SH
mkdir -p "$tmp/mnt"
if unshare -m true 2>/dev/null; then ns=(unshare -m); else ns=(unshare -Urm); fi
"${ns[@]}" bash "$tmp/tmpfs.sh" 2>/dev/null
code=$?
if [ "$code" -eq 0 ]; then
    grep -q "cannot write checkpoint $tmp/mnt/run/last.cnn: .*No space left on device" \
        "$tmp/tmpfs.err" && grep -qx "exit 1" "$tmp/tmpfs.err" \
        && ok "full tmpfs: exit 1, the error names last.cnn and says the disk is full" \
        || bad "full tmpfs: $(cat "$tmp/tmpfs.err")"
    grep -qx same "$tmp/tmpfs.err" && grep -qx readable "$tmp/tmpfs.err" \
        && ! grep -qx leftover "$tmp/tmpfs.err" \
        && ok "full tmpfs: last.cnn unchanged and readable, no temporary file left" \
        || bad "full tmpfs: $(cat "$tmp/tmpfs.err")"
elif [ "$code" -eq 3 ]; then
    bad "full tmpfs: the first epoch did not fit"
else
    echo "skip: full tmpfs: cannot mount a tmpfs here (needs root or user namespaces)"
fi

# The log on a full device: log.jsonl is a link to /dev/full, where every
# write fails with ENOSPC. The run stops after its first epoch, naming it.
if [ -c /dev/full ]; then
    mkdir -p "$tmp/devfull"
    ln -s /dev/full "$tmp/devfull/log.jsonl"
    expect 1 "$tmp/devfull/log.jsonl: error: cannot write the log: No space left on device" \
        "$CNN" train "$tmp/small.yaml" --out "$tmp/devfull" --threads 1
fi

# --- a run directory that cannot be used -------------------------------------
# Refused before the data is loaded: no "data.train:" line.
before_data() {   # NAME MESSAGE ARGS...: exit 1, MESSAGE, nothing loaded
    local name=$1 msg=$2; shift 2
    "$CNN" train "$tmp/small.yaml" "$@" >/dev/null 2>"$tmp/err"
    local code=$?
    [ "$code" -eq 1 ] && grep -qF -- "$msg" "$tmp/err" && ! grep -q "^data.train:" "$tmp/err" \
        && ok "$name: exit 1 before loading data" \
        || bad "$name: exit $code, stderr: $(head -c 300 "$tmp/err") (want '$msg')"
}
touch "$tmp/file"
before_data "--out under a regular file" "cannot create the run directory: Not a directory" \
    --out "$tmp/file/run"
if [ -d /proc/self ] && ! touch /proc/self/x 2>/dev/null; then
    before_data "--out a directory nobody can write (/proc/self)" \
        "cannot write in the run directory" --out /proc/self
fi
mkdir -p "$tmp/ro"
chmod 555 "$tmp/ro"
if touch "$tmp/ro/x" 2>/dev/null; then
    rm -f "$tmp/ro/x"
    echo "skip: chmod 555 does not stop writes (running as root): tested with the paths above"
else
    before_data "--out in a read-only directory" "cannot create the run directory" \
        --out "$tmp/ro/run"
    before_data "--out a read-only directory" "cannot write in the run directory" \
        --out "$tmp/ro"
fi
chmod 755 "$tmp/ro"

# --- a loss that is not finite ---------------------------------------------------
# A good epoch first, then lr 1e30: the update of step 5 (the resume's first)
# makes the weights huge, and at step 6 d1's output overflows.
run=$tmp/nan
"$CNN" train "$tmp/small.yaml" --out "$run" --threads 1 >/dev/null 2>"$tmp/err" \
    || bad "train the small net: $(tail -3 "$tmp/err")"
cp "$run/last.cnn" "$tmp/good.cnn"
expect 1 "at epoch 2, step 6; the first layer whose output is not finite is 'd1' (dense)" \
    "$CNN" train "$tmp/small.yaml" --resume "$run/last.cnn" --threads 1 \
    --set train.epochs=2 --set train.optimizer.lr=1e30
grep -q "error: the loss is not finite" "$tmp/err" && ok "non-finite loss: says so" \
    || bad "non-finite loss: $(cat "$tmp/err")"
cmp -s "$tmp/good.cnn" "$run/last.cnn" && ok "non-finite loss: last.cnn kept as it was" \
    || bad "non-finite loss: last.cnn changed"

# Weights planted in a checkpoint by tests/ckpt_tensors.py plant:
# plant NAME TENSOR=SPEC..., SPEC one of V (every element), alt:V (row k
# gets V, negated for odd k), at:I:V (element I only).
plant() {   # NAME TENSOR=SPEC...: a copy of $tmp/good.cnn in $tmp/NAME/, planted
    mkdir -p "$tmp/$1"
    cp "$tmp/good.cnn" "$tmp/$1/last.cnn"
    local dir=$tmp/$1
    shift
    python3 "$(dirname "$0")/ckpt_tensors.py" plant "$dir/last.cnn" "$@" && readable "$dir/last.cnn" \
        || bad "planting $*: $(cat "$tmp/summary.err")"
    cp "$dir/last.cnn" "$tmp/planted.cnn"
}
planted_kept() {
    cmp -s "$tmp/planted.cnn" "$1" && ok "$2: last.cnn kept as it was" \
        || bad "$2: last.cnn changed"
}
# c1's weights at 3e38: its output overflows at the first step
plant big-c1 c1.weight=3e38 c1.bias=0
expect 1 "at epoch 2, step 5; the first layer whose output is not finite is 'c1' (conv): sample" \
    "$CNN" train "$tmp/small.yaml" --resume "$tmp/big-c1/last.cnn" --threads 1 \
    --set train.epochs=2
planted_kept "$tmp/big-c1/last.cnn" "overflowing output"
# a NaN among d1's weights: named, with where it is
plant nan-d1 d1.weight=at:7:nan
expect 1 "at epoch 2, step 5; the first layer with a value that is not finite is 'd1' (dense): its weight holds nan at element 7" \
    "$CNN" train "$tmp/small.yaml" --resume "$tmp/nan-d1/last.cnn" --threads 1 \
    --set train.epochs=2

# A gradient that is not finite under a finite loss: in a chain of three
# dense layers, d0's weights 0 (so every output is 0 and the loss is
# log 10), d1's 1e38 and d2's rows +-2e38: going backward, d1's output
# gradient is +-2e38/16 and d0's sums four of 1e38 times that: infinite.
config "$tmp/three.yaml" "dense: {name: d0, units: 4}" "dense: {name: d1, units: 4}" \
    "dense: {name: d2, units: 10}"
"$CNN" train "$tmp/three.yaml" --out "$tmp/three" --threads 1 >/dev/null 2>"$tmp/err" \
    || bad "train the three-layer net: $(tail -3 "$tmp/err")"
cp "$tmp/three/last.cnn" "$tmp/good.cnn"
plant grad d0.weight=0 d0.bias=0 d1.weight=1e38 d1.bias=0 d2.weight=alt:2e38 d2.bias=0
expect 1 "the gradients are not finite at epoch 2, step 5 (the loss is 2.30259)" \
    "$CNN" train "$tmp/three.yaml" --resume "$tmp/grad/last.cnn" --threads 1 \
    --set train.epochs=2
grep -q "going backward, the gradient first stops being finite at the output of layer 'd0' (dense): sample 0 has -*inf" \
    "$tmp/err" && ok "non-finite gradient: names d0's output gradient" \
    || bad "non-finite gradient: $(cat "$tmp/err")"
planted_kept "$tmp/grad/last.cnn" "non-finite gradient"

# --- limits ---------------------------------------------------------------------
# --max-memory: below the estimate, refused before anything (even the run
# directory) is made, with the estimate broken down
expect 1 "this run needs an estimated" "$CNN" train "$tmp/small.yaml" --out "$tmp/lim" \
    --max-memory 64K
grep -q "more than the 64.0 KiB given by --max-memory" "$tmp/err" \
    && grep -q "^  activations (outputs, gradients, saved) .*(batch 16, 6 layers)" "$tmp/err" \
    && grep -q "^  training data, decoded .*(64 images)" "$tmp/err" \
    && grep -q "^  optimizer state" "$tmp/err" \
    && ok "--max-memory: the estimate, part by part" || bad "--max-memory: $(cat "$tmp/err")"
[ ! -e "$tmp/lim" ] && ok "--max-memory: nothing created" || bad "--max-memory: $tmp/lim created"
"$CNN" train "$tmp/small.yaml" --out "$tmp/lim" --max-memory 512M >/dev/null 2>"$tmp/err" \
    && ok "--max-memory 512M: trains" || bad "--max-memory 512M: $(tail -3 "$tmp/err")"
expect 2 "--max-memory needs a size" "$CNN" train "$tmp/small.yaml" --max-memory 12Q
expect 2 "--max-memory needs a size" "$CNN" train "$tmp/small.yaml" --max-memory 0

# An input of 4x65536x65536 (valid by itself): its activations for a batch
# of 16 would take terabytes. Refused with the estimate; with a limit above
# that, the network itself refuses to allocate more than the machine has.
# (Under a 4 GiB address-space limit: an attempt to allocate would fail
# with another message.)
config "$tmp/huge-input.yaml" relu globalavgpool "dense: {units: 5}"
sed -i 's/channels: 1, height: 16, width: 16/channels: 4, height: 65536, width: 65536/;
        s/mean: \[0.5\], std: \[0.29\]/mean: [0.5, 0.5, 0.5, 0.5], std: [0.29, 0.29, 0.29, 0.29]/' \
    "$tmp/huge-input.yaml"
expect 1 "TiB of memory, more than the" \
    limited "$CNN" train "$tmp/huge-input.yaml" --out "$tmp/hi"
grep -q "^  activations (outputs, gradients, saved) *2.00 TiB" "$tmp/err" \
    && ok "huge input: activations in the estimate" || bad "huge input: $(cat "$tmp/err")"
expect 1 "the network needs 4.00 TiB for batches of 16" \
    limited "$CNN" train "$tmp/huge-input.yaml" \
    --out "$tmp/hi" --max-memory 1000T

# Absurd values in the file: config errors with file:line:column (exit 2)
absurd() {   # NAME SED-EXPRESSION MESSAGE
    sed "$2" "$tmp/small.yaml" >"$tmp/absurd.yaml"
    expect 2 "$3" limited "$CNN" train "$tmp/absurd.yaml" \
        --out "$tmp/absurd"
}
y=$tmp/absurd.yaml
absurd "batch 0" 's/batch: 16/batch: 0/' \
    "$y:17:10: error: train.batch must be an integer from 1 to 65536, got 0"
absurd "batch -1" 's/batch: 16/batch: -1/' \
    "$y:17:10: error: train.batch must be an integer from 1 to 65536, got -1"
absurd "kernel larger than the padded input" 's/kernel: 3, pad: 1/kernel: 19, pad: 1/' \
    "$y:9:7: error: layer 'c1' (conv): a 19x19 kernel with pad 1x1 does not fit its input 1x16x16"
absurd "10^9 filters" 's/filters: 4/filters: 1000000000/' \
    "$y:9:33: error: layer 'c1' (conv): filters must be an integer from 1 to 1048576, got \"1000000000\""
absurd "2*10^9 units" 's/units: 16/units: 2000000000/' \
    "$y:12:32: error: layer 'd1' (dense): units must be an integer from 1 to 16777216, got \"2000000000\""
# the largest dense layer allowed is valid, but its 16 GiB of weights are
# refused by the memory estimate
sed 's/units: 16}/units: 16777216}/' "$tmp/small.yaml" >"$tmp/big-dense.yaml"
expect 1 "this run needs an estimated" "$CNN" train "$tmp/big-dense.yaml" --out "$tmp/bd" \
    --max-memory 4G
grep -q "^  parameters, gradients, buffers *[0-9.]* GiB" "$tmp/err" \
    && ok "huge dense layer: its parameters in the estimate" || bad "huge dense: $(cat "$tmp/err")"

finish faults
