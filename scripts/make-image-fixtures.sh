#!/usr/bin/env bash
# Write the image fixtures of tests/test_images.c into OUTDIR (created if
# missing), to look at them or to try the CLI on them. Builds nothing: it
# runs the already built ${BUILD:-build}/tests/make_image_fixtures (the test
# runs that program itself).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
prog="${BUILD:-build}/tests/make_image_fixtures"
if [ ! -x "$prog" ]; then
    echo "$0: $prog not found: build first (ninja -C ${BUILD:-build})" >&2
    exit 1
fi
mkdir -p "$1"
exec "$prog" "$1"
