#!/usr/bin/env bash
# Install what the build and the tests need on a fresh Debian 12 machine
# (run as root). Everything comes from Debian's packages; Rust crates come
# from crates.io through cargo.
#
#   scripts/setup-debian.sh          the hosted demo, the daemon, the install
#                                    script and the hosted tests
#   scripts/setup-debian.sh --board  also the bare-metal board: Debian's Rust
#                                    for the riscv build, ld.lld, the riscv C
#                                    toolchain and QEMU (CI passes this)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
board=
case "${1:-}" in
    --board | --all) board=1 ;;
    "") ;;
    *) echo "usage: $0 [--board]" >&2; exit 2 ;;
esac
packages=(
    build-essential   # cc for the C test programs linked with libnommu
    pkg-config        # nommu.pc from scripts/install.sh (and its test)
    genromfs          # romfs images for the romfs driver's tests
    librsvg2-bin      # rsvg-convert renders nommu-ctl map's SVG in its test
    spin              # scripts/model-check.sh (models/)
)
# Without a cargo of its own, the machine gets Debian's Rust.
command -v cargo >/dev/null || packages+=(rustc-web cargo-web)
backports=()
if [ -n "$board" ]; then
    packages+=(
        lld               # ld.lld for the bare-metal build
        rustc-web cargo-web rust-web-src  # Debian's Rust 1.96 + library sources (no_std build)
        gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf  # C programs on the board
    )
    # QEMU 10 comes from bookworm-backports: the machine's qemu-utils already
    # does, and bookworm's own QEMU 7.2 conflicts with it.
    backports=(qemu-system-riscv)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
missing_bpo=()
for p in "${backports[@]+"${backports[@]}"}"; do installed "$p" || missing_bpo+=("$p"); done

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
