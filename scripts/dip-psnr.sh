#!/usr/bin/env bash
# Deep image prior denoising measured: takes the first N photos of a folder
# (default ../shared/datasets/catsdogs/test, its cat/ and dog/ subfolders in
# turn), centre-crops each to a square and downscales it to SIZE x SIZE,
# adds Gaussian noise of sigma 25/255 (seeded, clipped to [0, 1], rounded
# to 8 bits), runs `cnn restore --task denoise` on the noisy image, and
# prints the PSNR of the noisy and of the restored image against the clean
# one, per photo and on average, with the wall time.
#
#   scripts/dip-psnr.sh [-n N] [-s SIZE] [-o DIR] [-- RESTORE-OPTIONS...]
#
#   -n N     photos (default 3)
#   -s SIZE  side in pixels, a multiple of 32 for the default depth (default 64)
#   -o DIR   keep clean.png, noisy.png and restored.png of each photo in DIR
#            (default: a temporary folder, removed at the end)
#   after --, options for cnn restore, e.g. -- --iterations 900 --width 64
#
# Needs Python 3 with numpy and PIL (Debian: python3-numpy python3-pil) for
# the downscaling and the noise: PYTHON=PATH (default /usr/bin/python3, or
# python3 when that is missing). CNN=PATH names the cnn binary (default
# build/cli/cnn); DATA=FOLDER the photos.
set -eu
cd "$(dirname "$0")/.."
CNN=${CNN:-build/cli/cnn}
DATA=${DATA:-../shared/datasets/catsdogs/test}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
fi
"$PYTHON" -c 'import numpy, PIL' 2>/dev/null \
    || { echo "dip-psnr.sh: $PYTHON lacks numpy or PIL (apt-get install python3-numpy python3-pil, or set PYTHON)" >&2; exit 2; }
n=3 size=64 dir=
while getopts n:s:o: opt; do
    case $opt in
    n) n=$OPTARG ;;
    s) size=$OPTARG ;;
    o) dir=$OPTARG ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[ -x "$CNN" ] || { echo "dip-psnr.sh: no cnn binary at $CNN (build it, or set CNN)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "dip-psnr.sh: no folder $DATA (set DATA)" >&2; exit 2; }
if [ -z "$dir" ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"

# The photos: cat/ and dog/ (or the folder itself) alternately, sorted.
mapfile -t photos < <(find "$DATA" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) \
    | sort | awk -F/ '{ d = $(NF-1); k[d]++; print k[d] "\t" $0 }' | sort -k1,1n -s | cut -f2 | head -n "$n")
[ "${#photos[@]}" -gt 0 ] || { echo "dip-psnr.sh: no photos in $DATA" >&2; exit 1; }

printf '%-28s %10s %10s %8s\n' photo "noisy dB" "restored dB" seconds
sums="0 0 0"
for i in "${!photos[@]}"; do
    photo=${photos[$i]} out="$dir/$i"
    mkdir -p "$out"
    "$PYTHON" - "$photo" "$out" "$size" "$i" <<'PY'
import sys
import numpy as np
from PIL import Image
path, out, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
im = Image.open(path).convert("RGB")
w, h = im.size
s = min(w, h)
im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
im = im.resize((size, size), Image.LANCZOS)
im.save(f"{out}/clean.png")
clean = np.asarray(im).astype(np.float64) / 255.0
noisy = clean + np.random.default_rng(seed).normal(0.0, 25.0 / 255.0, clean.shape)
noisy = np.clip(noisy, 0.0, 1.0)
Image.fromarray(np.round(noisy * 255.0).astype(np.uint8)).save(f"{out}/noisy.png")
PY
    start=$(date +%s%N)
    "$CNN" restore "$out/noisy.png" --task denoise --reference "$out/clean.png" \
        --out "$out/restored.png" "$@" >"$out/stdout" 2>"$out/stderr" \
        || { echo "dip-psnr.sh: cnn restore failed on $photo:" >&2; cat "$out/stderr" >&2; exit 1; }
    secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { print (b - a) / 1e9 }')
    read -r noisy restored < <(awk '/^psnr:/ { gsub(",", ""); print $3, $6 }' "$out/stdout")
    printf '%-28s %10.2f %10.2f %8.1f\n' "$(basename "$photo")" "$noisy" "$restored" "$secs"
    sums=$(awk -v s="$sums" -v a="$noisy" -v b="$restored" \
        'BEGIN { split(s, v, " "); print v[1] + a, v[2] + b, v[3] + 1 }')
done
awk -v s="$sums" 'BEGIN { split(s, v, " "); printf "%-28s %10.2f %10.2f\n", "mean of " v[3], v[1] / v[3], v[2] / v[3] }'
