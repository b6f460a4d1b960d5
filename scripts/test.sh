#!/usr/bin/env bash
# Install what is missing, build twice (release, and with AddressSanitizer
# and UndefinedBehaviorSanitizer), run the whole test suite in both builds,
# and end with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3 || exit 1

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
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
