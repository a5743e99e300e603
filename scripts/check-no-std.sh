#!/usr/bin/env bash
# Prove that the crates meant for bare metal build without std: compile them
# for riscv64gc-unknown-none-elf (a target with no std at all) with Debian's
# Rust 1.96 and its library sources, as the board build does.
set -euo pipefail
cd "$(dirname "$0")/.."
# Clear the outer toolchain's environment so Debian's compiler is used.
for v in $(env | awk -F= '/^(CARGO|RUSTUP|RUSTC)/ {print $1}'); do unset "$v"; done
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${NO_STD_TARGET_DIR:-$PWD/target-nostd}"
/usr/bin/cargo build --release \
    --target riscv64gc-unknown-none-elf \
    -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
    -p protocol -p memsrv -p drivers -p conformance "$@"
/usr/bin/cargo build --release \
    --target riscv64gc-unknown-none-elf \
    -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
    -p libc-shim --no-default-features --features c-abi,malloc
