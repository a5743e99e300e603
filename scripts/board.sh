#!/usr/bin/env bash
# Build the board image, or boot it on QEMU's riscv64 virt board.
#
#   scripts/board.sh build     build target-board/.../release/board
#   scripts/board.sh run       build, then boot it with the console here
#                              (the demo: servers start, mappings, /proc/maps)
#   scripts/board.sh image     print the image's path
#
# The image is built with Debian's Rust (rustc-web 1.96, library sources
# from rust-web-src) for riscv64gc-unknown-none-elf, linked by ld.lld; see
# scripts/setup-debian.sh. BOARD_FEATURES picks what init runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
for v in $(env | awk -F= '/^(CARGO|RUSTUP|RUSTC)/ {print $1}'); do unset "$v"; done
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${BOARD_TARGET_DIR:-$root/target-board}"
export CARGO_TARGET_RISCV64GC_UNKNOWN_NONE_ELF_LINKER=ld.lld
image="$CARGO_TARGET_DIR/riscv64gc-unknown-none-elf/release/board"

build() {
    /usr/bin/cargo build --release -q \
        --target riscv64gc-unknown-none-elf \
        -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
        -p qemu-target --bin board --features "board${BOARD_FEATURES:+,$BOARD_FEATURES}"
}

case "${1:-run}" in
    build) build ;;
    image) echo "$image" ;;
    run)
        build
        shift || true
        exec qemu-system-riscv64 -machine virt -m 128M -bios default \
            -display none -serial stdio -monitor none -no-reboot \
            -accel tcg,thread=single "$@" -kernel "$image"
        ;;
    *) echo "usage: $0 build|run|image" >&2; exit 2 ;;
esac
