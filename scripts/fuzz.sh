#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (clang): builds the targets in
# tests/fuzz/ with AddressSanitizer and UndefinedBehaviorSanitizer, then runs
# each for SECONDS (default 60) on a copy of its committed seed corpus
# (tests/fuzz/corpus/<target>/), and prints one summary line per target.
# Exits 1 if any target crashed, leaked, hung or ran out of memory (the
# input that did it is kept and its path printed), 2 on a build error.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: config idx image checkpoint
#
# Environment: FUZZ_BUILD (build folder, default build-fuzz), FUZZ_KEEP=1
# (keep the working corpora, with what the run found, under FUZZ_BUILD/run),
# FUZZ_ARGS (more libFuzzer options), FUZZ_CC (default clang). Runs under
# `nice -n 10`. docs/fuzzing.md says what each target covers.
set -u
cd "$(dirname "$0")/.."
root=$PWD

secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2;; esac
shift $(( $# > 0 ? 1 : 0 ))
targets=${*:-config idx image checkpoint}
build=${FUZZ_BUILD:-build-fuzz}
cc=${FUZZ_CC:-clang}
for t in $targets; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no target '$t'" >&2; exit 2; }
done
for tool in "$cc" ninja pkg-config; do
    command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found" >&2; exit 2; }
done

# ---- build: a generated ninja file, so rebuilds are incremental ----------
pkgs="yaml-0.1 stb openblas zlib"
cflags="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 \
-fno-omit-frame-pointer -fopenmp -Wall -Wextra -Werror -Wno-pass-failed \
-fno-sanitize-recover=all -I$root/core -I$root/data -I$root/cli $(pkg-config --cflags $pkgs)" || exit 2
libs="$(pkg-config --libs $pkgs) -fopenmp -lm -lpthread"
lib_sources=$(ls core/*.c core/layers/*.c data/*.c cli/config.c)
mkdir -p "$build"
{
    echo "cflags = $cflags"
    echo "libs = $libs"
    echo "rule cc"
    echo "  command = $cc \$cflags \$san -MMD -MF \$out.d -c \$in -o \$out"
    echo "  depfile = \$out.d"
    echo "  deps = gcc"
    echo "  description = CC \$out"
    echo "rule link"
    echo "  command = $cc -fsanitize=fuzzer,address,undefined \$in -o \$out \$libs"
    echo "  description = LINK \$out"
    objs=""
    for s in $lib_sources; do
        o="obj/${s%.c}.o"
        echo "build $o: cc $root/$s"
        echo "  san = -fsanitize=fuzzer-no-link,address,undefined"
        objs="$objs $o"
    done
    for t in config idx image checkpoint; do
        echo "build obj/fuzz_$t.o: cc $root/tests/fuzz/fuzz_$t.c"
        echo "  san = -fsanitize=fuzzer,address,undefined"
        echo "build fuzz_$t: link obj/fuzz_$t.o $objs"
    done
} > "$build/build.ninja.new"
cmp -s "$build/build.ninja.new" "$build/build.ninja" 2>/dev/null \
    || mv "$build/build.ninja.new" "$build/build.ninja"
rm -f "$build/build.ninja.new"
exes=""
for t in $targets; do exes="$exes fuzz_$t"; done
nice -n 10 ninja -C "$build" -j1 $exes >"$build/build.log" 2>&1 || {
    tail -40 "$build/build.log" >&2
    echo "fuzz.sh: build failed (log: $build/build.log)" >&2
    exit 2
}

# ---- run ------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
run=$build/run
crashed=0
for t in $targets; do
    work=$run/$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp tests/fuzz/corpus/$t/* "$work/corpus/" 2>/dev/null
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    # shellcheck disable=SC2086
    nice -n 10 "$build/fuzz_$t" "$work/corpus" $dict -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" ${FUZZ_ARGS:-} >"$work/log" 2>&1
    rc=$?
    final_stat() { sed -n "s/^stat::$1: *//p" "$work/log" | tail -1; }
    done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$work/log" | tail -1)
    cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$done_line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$done_line" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    runs=$(final_stat number_of_executed_units)
    speed=$(final_stat average_exec_per_sec)
    summary="runs ${runs:-?}, ${speed:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    artifact=$(ls "$work/artifacts/" 2>/dev/null | head -1)
    if [ $rc -ne 0 ] || [ -n "$artifact" ]; then
        crashed=1
        why=$(grep -m1 -E '==[0-9]+== ?ERROR|runtime error|^fuzz_[a-z]+: ' "$work/log")
        keep=$build/crashes
        mkdir -p "$keep"
        [ -n "$artifact" ] && cp "$work/artifacts/$artifact" "$keep/$t-$artifact"
        printf '%-10s CRASH (exit %d): %s\n' "$t" $rc "${why:-see $work/log}"
        [ -n "$artifact" ] && printf '%-10s   input: %s  log: %s\n' "" "$keep/$t-$artifact" "$work/log"
    else
        printf '%-10s ok: %s s, %s\n' "$t" "$secs" "$summary"
    fi
    if [ "${FUZZ_KEEP:-0}" != 1 ] && [ -z "$artifact" ] && [ $rc -eq 0 ]; then
        rm -rf "$work"
    fi
done
exit $crashed
