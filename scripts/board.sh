#!/usr/bin/env bash
# Build the board image, or boot it on QEMU's riscv64 virt board.
#
#   scripts/board.sh build     build target-board/.../release/board
#   scripts/board.sh run       build, then boot it with the console here
#                              (the demo: servers start, mappings, /proc/maps)
#   scripts/board.sh boot      boot the image last built (extra arguments go
#                              to QEMU, e.g. -icount shift=0)
#   scripts/board.sh run --c prog.c
#                              build with prog.c as the board's C program,
#                              boot: its stdout on the console, then
#                              "board: prog.c exited N"; QEMU's status is
#                              N (0: pass). `build --c prog.c` only builds.
#   scripts/board.sh image     print the image's path
#   scripts/board.sh flash DIR write the flash and disk images into DIR
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

# Flash bank 0 is the boot flash: QEMU starts a machine with a pflash0
# image from flash (and loads no -kernel), so its first sector holds
# `auipc t0, 0x60200; jr t0`, a jump to the image at 0x80200000 (loaded by
# QEMU's loader device), and a romfs image follows at 256 KiB. Bank 1 is
# the NOR chip behind /dev/mtd1. Both are exactly 32 MiB, erased (0xff)
# where nothing is written.
flash() {
    local dir=$1 root
    mkdir -p "$dir"
    root=$(mktemp -d)
    # /rom/t: 20000 bytes of (i*13+101) % 241, the conformance tables' file.
    perl -e 'print pack("C*", map { ($_ * 13 + 101) % 241 } 0 .. 19999)' >"$root/t"
    echo "served in place from NOR flash by the romfs driver" >"$root/hello.txt"
    # The ported-app test's Lua script (the hosted test runs the same file).
    cp hosted/tests/lua/alloc_heavy.lua "$root/"
    genromfs -f "$dir/romfs.img" -d "$root" -V rom
    rm -rf "$root"
    perl -e 'print pack("V2", 0x60200297, 0x00028067), "\xff" x (256 * 1024 - 8)' >"$dir/bank0.img"
    cat "$dir/romfs.img" >>"$dir/bank0.img"
    perl -e 'print "\xff" x ((32 << 20) - (-s $ARGV[0]))' "$dir/bank0.img" >>"$dir/bank0.img"
    # The virtio-blk disk: 1 MiB of (i*7+3) % 253.
    perl -e 'print pack("C*", map { ($_ * 7 + 3) % 253 } 0 .. (1 << 20) - 1)' >"$dir/disk.img"
    # Bank 1: a pattern in the first 64 KiB, erased after.
    perl -e 'print pack("C*", map { (($_ * 13) ^ ($_ >> 8)) & 0xff } 0 .. 65535), "\xff" x ((32 << 20) - 65536)' >"$dir/nor.img"
}

qemu() {
    local dir=$1
    shift
    exec qemu-system-riscv64 -machine virt,pflash0=rom,pflash1=nor -m 128M -bios none \
        -display none -serial stdio -monitor none -no-reboot \
        -accel tcg,thread=single \
        -blockdev "driver=file,filename=$dir/bank0.img,node-name=rom,read-only=on" \
        -blockdev "driver=file,filename=$dir/nor.img,node-name=nor" \
        -drive "file=$dir/disk.img,if=none,format=raw,id=disk" \
        -device virtio-blk-device,drive=disk \
        "$@" -device "loader,file=$image"
}

# `--c FILE` right after build or run: the user's C program, by absolute
# path (build.rs reads NOMMU_BOARD_C), with feature user-c.
cmd=${1:-run}
[ $# -gt 0 ] && shift
if [ "$cmd" = build ] || [ "$cmd" = run ]; then
    if [ "${1:-}" = --c ]; then
        [ $# -ge 2 ] && [ -f "$2" ] || { echo "$0: --c needs a C file" >&2; exit 2; }
        NOMMU_BOARD_C=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
        export NOMMU_BOARD_C
        BOARD_FEATURES="${BOARD_FEATURES:+$BOARD_FEATURES,}user-c"
        shift 2
    else
        # A plain build is the demo or the suites, with the test program.
        unset NOMMU_BOARD_C
    fi
fi
set -- "$cmd" "$@"

case "$1" in
    build) build ;;
    image) echo "$image" ;;
    flash) flash "$2" ;;
    run | boot)
        [ "$1" = run ] && build
        shift || true
        flash "$CARGO_TARGET_DIR/flash"
        qemu "$CARGO_TARGET_DIR/flash" "$@"
        ;;
    *) echo "usage: $0 build|run [--c FILE.c]|boot|image|flash DIR" >&2; exit 2 ;;
esac
