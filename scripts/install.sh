#!/usr/bin/env bash
# Install the memory server like a C library:
#   PREFIX/bin                memsrvd, nommu-ctl, nommu-driver, nommu-run
#   PREFIX/lib                libnommu.a, libnommu.so, libnommu-malloc.so
#                             (what nommu-run --malloc preloads)
#   PREFIX/include            nommu.h, nommu_malloc.h, nommu_malloc_names.h
#   PREFIX/lib/pkgconfig      nommu.pc
# after which  cc prog.c $(pkg-config --cflags --libs nommu)  builds a
# program whose mmap, shm and file calls go to memsrvd (PKG_CONFIG_PATH must
# name PREFIX/lib/pkgconfig unless PREFIX is a standard one). Builds in
# release mode first; honours CARGO_TARGET_DIR.
set -euo pipefail

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

echo "== building the tools and libnommu (release)"
cargo build --release -p hosted --bins
# The library crate is an rlib so that it also builds for bare metal; the C
# libraries come from the same sources with the exported POSIX names. First
# the variant that also exports malloc & co. (nommu-run --malloc), kept
# under its own name: the plain build that follows writes libnommu.so again.
cargo rustc -p libc-shim --lib --release --features preload-malloc --crate-type cdylib
cp "$target/release/libnommu.so" "$target/release/libnommu-malloc.so"
cargo rustc -p libc-shim --lib --release --features posix --crate-type staticlib,cdylib

echo "== installing into $prefix"
install -d "$prefix/bin" "$prefix/lib/pkgconfig" "$prefix/include"
for tool in memsrvd nommu-ctl nommu-driver nommu-run; do
    install -m 755 "$target/release/$tool" "$prefix/bin/$tool"
done
install -m 644 "$target/release/libnommu.a" "$prefix/lib/libnommu.a"
install -m 755 "$target/release/libnommu.so" "$prefix/lib/libnommu.so"
install -m 755 "$target/release/libnommu-malloc.so" "$prefix/lib/libnommu-malloc.so"
install -m 644 libc-shim/include/*.h "$prefix/include/"

# Libs.private: what the static library needs from the system, as rustc's
# --print native-static-libs reports it for this crate. The rpath lets a
# program built against a private prefix find libnommu.so without
# LD_LIBRARY_PATH.
cat > "$prefix/lib/pkgconfig/nommu.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: nommu
Description: Client library of the nommu memory server (memsrvd): mmap, shared memory and files as on a machine without an MMU
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lnommu
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PC

echo "installed: $(cd "$prefix" && find bin lib include -type f | sort | tr '\n' ' ')"
