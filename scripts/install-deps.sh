#!/usr/bin/env bash
# Install, with apt-get, whichever of the Debian packages cnn needs are
# missing. Extra package names given as arguments are added to the list.
# Run as root (or through sudo) on Debian 12 or a derivative.
set -eu
need=(build-essential meson ninja-build pkg-config libyaml-dev libstb-dev
      libopenblas-dev zlib1g-dev dataset-fashion-mnist "$@")
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
fi
