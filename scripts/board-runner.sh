#!/usr/bin/env bash
# cargo's runner for riscv64gc-unknown-none-elf (.cargo/config.toml):
#   board-runner.sh IMAGE [QEMU ARGS...]
# boots IMAGE on QEMU's riscv64 virt board with the flash and disk images
# scripts/board.sh writes (see scripts/board.sh boot).
set -euo pipefail
image=$(realpath "$1")
shift
root=$(cd "$(dirname "$0")/.." && pwd)
expected=$(realpath -m "$("$root/scripts/board.sh" image)")
if [ "$image" != "$expected" ]; then
    # board.sh boots the image at its own path: put this one there.
    mkdir -p "$(dirname "$expected")"
    cp "$image" "$expected"
fi
exec "$root/scripts/board.sh" boot "$@"
