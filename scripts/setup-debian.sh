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
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf  # C programs on the board
)
# QEMU 10 comes from bookworm-backports: the machine's qemu-utils already
# does, and bookworm's own QEMU 7.2 conflicts with it.
backports=(qemu-system-riscv)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
missing_bpo=()
for p in "${backports[@]}"; do installed "$p" || missing_bpo+=("$p"); done

if [ ${#missing_bpo[@]} -gt 0 ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
if [ ${#missing[@]} -gt 0 ] || [ ${#missing_bpo[@]} -gt 0 ]; then
    apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ${#missing_bpo[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends -t bookworm-backports "${missing_bpo[@]}"
fi
command -v cargo >/dev/null || { echo "cargo (stable Rust) is required" >&2; exit 1; }
