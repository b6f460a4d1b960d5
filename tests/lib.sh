# Shared by the shell tests: counters, a temp folder removed on exit,
# `expect CODE SUBSTRING CMD...` (CMD exits with CODE and its stderr
# contains SUBSTRING), `run_ok`, and helpers to write IDX headers, check
# PNG files and wait for a background run. Source it; call `finish NAME`
# at the end.
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() {
    local code=$1 sub=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$code" ] && grep -qF -- "$sub" "$tmp/err"; then
        ok "$* -> $code"
    else
        bad "$* -> exit $got (want $code), stderr: $(head -c 400 "$tmp/err") (want '$sub')"
    fi
}

# run_ok NAME CMD...: CMD succeeds (its stdout in $tmp/out)
run_ok() {
    local name=$1; shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then ok "$name"
    else bad "$name: exit $?: $(tail -3 "$tmp/err")"; fi
}

# be32 N: N as 4 bytes, big-endian (IDX headers)
be32() {
    printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"
    printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"
}

# png_size FILE: "WIDTH HEIGHT" from the IHDR chunk (bytes 16-23, big-endian)
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4,
                                             $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }'
}

# png_is NAME FILE "W H": FILE is a PNG of that size
png_is() {
    local size
    size=$(png_size "$2" 2>/dev/null)
    if [ "$(head -c 8 "$2" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
        && [ "$size" = "$3" ]; then
        ok "$1: a $3 PNG"
    else
        bad "$1: '$2' size '$size' (want '$3')"
    fi
}

# wait_for PATTERN FILE PID: until FILE has a line matching PATTERN
# (1 if PID ends first, or after 2 minutes)
wait_for() {
    for _ in $(seq 1 2400); do
        grep -q "$1" "$2" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Print "NAME: N passed, N failed" and exit non-zero on any failure.
finish() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
