#!/usr/bin/env bash
# Install what the build and the tests need on a fresh Debian 12 machine
# (run as root). Everything comes from Debian's packages; Rust crates come
# from crates.io through cargo.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
    build-essential   # cc for the C test programs linked with libnommu.a
    lld               # ld.lld for the bare-metal build
    genromfs          # romfs images for the romfs driver's tests
    rustc-web cargo-web rust-web-src  # Debian's Rust 1.96 + library sources (no_std build)
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo (stable Rust) is required" >&2; exit 1; }
