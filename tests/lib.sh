# Shared by the shell tests: counters, a temp folder removed on exit, and
# `expect CODE SUBSTRING CMD...` (CMD exits with CODE and its stderr
# contains SUBSTRING). Source it; call `finish NAME` at the end.
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

# Print "NAME: N passed, N failed" and exit non-zero on any failure.
finish() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
