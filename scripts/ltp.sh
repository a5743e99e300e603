#!/usr/bin/env bash
# Run Linux Test Project cases linked with libnommu.a against a private
# memsrvd, and print a pass/fail table.
#
#   scripts/ltp.sh LTP_SRC_DIR [CASE...]
#
# LTP_SRC_DIR is a checkout of the Linux Test Project's sources. Without
# CASEs the cases of the project's LTP run are built: the mmap, munmap,
# mremap, shm*, shmt and futex cases no-MMU rules say should pass, and the
# ones that showed a difference of ours (shmctl07, futex_wait03,
# futex_wait06, futex_cmp_requeue03, shmat02). No LTP case calls
# FUTEX_WAKE_OP (futextest.h only defines a helper for it), so none is
# listed for it; futex_wake05 is left out because its set-up maps a host
# file MAP_SHARED, which no-MMU refuses (ENODEV).
#
# What it does:
#   1. LTP's own build plumbing: `make autotools` (needs autoconf and
#      automake) and `./configure` once, then LTP's lib/ and libs/newipc.
#   2. libnommu.a (cargo rustc -p libc-shim --lib --release --features
#      posix --crate-type staticlib) and memsrvd.
#   3. Each case compiled as LTP compiles it, linked with libltp, then
#      libnommu.a, and a small plumbing object (below); no case's code is
#      changed. The plumbing's names are given to LTP's objects alone
#      (objcopy --redefine-sym on the case's object and on a copy of
#      LTP's libraries), never to libnommu.a's own calls.
#   4. A memsrvd with a ramfs at /dev/shm (LTP's results page lives there:
#      the test and its forked children share it as a MAP_SHARED mapping,
#      which only a server file gives) on a socket of its own; each case
#      run with a time limit; a table of results.
#
# The plumbing object keeps LTP's harness working while the shim lacks
# what it needs, and stays out of the way once it has it:
#   * syscall(SYS_futex, ...) (LTP's futex cases and checkpoints call the
#     system call directly) goes to libnommu's futex(), which sends a word
#     inside the arena to the server and any other to the host kernel;
#     every other system call goes to the host as before (LTP_FUTEX_HOST=1
#     at run time sends futexes to the host kernel too, to compare).
#
# Environment: LTP_OUT (build and log directory, default target/ltp),
# LTP_TIMEOUT (seconds per case, default 300), MEMSRVD (a memsrvd binary
# to use instead of building one), LTP_JOBS (make -j, default 2).
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/include/tst_test.h" ]; then
    echo "usage: $0 LTP_SRC_DIR [CASE...]  (LTP_SRC_DIR: an LTP source checkout)" >&2
    exit 2
fi
ltp=$(cd "$1" && pwd)
shift
cd "$(dirname "$0")/.."
root=$PWD
out=${LTP_OUT:-$root/target/ltp}
jobs=${LTP_JOBS:-2}
limit=${LTP_TIMEOUT:-300}
mkdir -p "$out/bin" "$out/log"

default_cases="mmap06 mmap08 mmap15 mmap19 munmap03 mremap02 shmdt02 shmctl07 shmctl08
    shmget04 shmat02 shmt03 shmt05 shmt08 futex_wait01 futex_wait03 futex_wait04 futex_wait05
    futex_wait06 futex_wait_bitset01 futex_wake01 futex_wake02 futex_cmp_requeue02
    futex_cmp_requeue03"
if [ $# -gt 0 ]; then cases="$*"; else cases=$default_cases; fi

# The directory of a case's source.
case_dir() {
    case $1 in
        shmt*) echo "$ltp/testcases/kernel/mem/shmt" ;;
        futex_*) echo "$ltp/testcases/kernel/syscalls/futex" ;;
        *) echo "$ltp/testcases/kernel/syscalls/${1%%[0-9]*}" ;;
    esac
}

# ---- 1. LTP's library ----
if [ ! -f "$ltp/include/config.h" ]; then
    if [ ! -x "$ltp/configure" ]; then
        command -v autoreconf >/dev/null || {
            echo "ltp.sh: LTP needs autoconf and automake (apt-get install autoconf automake)" >&2
            exit 2
        }
        echo "ltp.sh: make autotools"
        make -C "$ltp" autotools >"$out/log/autotools.log" 2>&1
    fi
    echo "ltp.sh: ./configure"
    (cd "$ltp" && ./configure) >"$out/log/configure.log" 2>&1
fi
echo "ltp.sh: LTP lib/ and libs/newipc"
make -C "$ltp/lib" -j"$jobs" >"$out/log/lib.log" 2>&1
make -C "$ltp/libs/newipc" -j"$jobs" >"$out/log/newipc.log" 2>&1

# ---- 2. libnommu.a and memsrvd ----
for v in $(env | awk -F= '/^CARGO_/ && $1 != "CARGO_HOME" {print $1}'); do unset "$v"; done
echo "ltp.sh: libnommu.a"
cargo rustc -q -p libc-shim --lib --release --features posix --crate-type staticlib
libnommu=$root/target/release/libnommu.a
if [ -z "${MEMSRVD:-}" ]; then
    echo "ltp.sh: memsrvd"
    cargo build -q -p hosted --bin memsrvd
    MEMSRVD=$root/target/debug/memsrvd
fi

# ---- 3. The cases ----
cat >"$out/ltp_plumbing.c" <<'EOF'
/* Link-time help for LTP's harness (see scripts/ltp.sh); no case calls
 * these itself except through syscall(SYS_futex, ...). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "nommu.h"

long __ltp_syscall(long nr, ...) {
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == SYS_futex && !getenv("LTP_FUTEX_HOST"))
        return futex((int *)a[0], (int)a[1], (int)a[2], (const struct timespec *)a[3],
                     (int *)a[4], (int)a[5]);
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
EOF
cc -O2 -Wall -I "$root/libc-shim/include" -c "$out/ltp_plumbing.c" -o "$out/ltp_plumbing.o"
mkdir -p "$out/obj" "$out/lib"
redefine=(--redefine-sym syscall=__ltp_syscall)
objcopy "${redefine[@]}" "$ltp/lib/libltp.a" "$out/lib/libltp.a"
objcopy "${redefine[@]}" "$ltp/libs/newipc/libltpnewipc.a" "$out/lib/libltpnewipc.a"

built=""
for c in $cases; do
    dir=$(case_dir "$c")
    if [ ! -f "$dir/$c.c" ]; then
        echo "ltp.sh: no source for $c in $dir" >&2
        printf '%s\n' "no source" >"$out/log/$c.build"
        continue
    fi
    if (cd "$dir" && cc -D_FORTIFY_SOURCE=2 -I../../include -I"$ltp/include" \
        -I"$ltp/include/old" -g -O2 -fno-strict-aliasing -pthread -std=gnu99 \
        -c "$c.c" -o "$out/obj/$c.o" &&
        objcopy --redefine-sym syscall=__ltp_syscall "$out/obj/$c.o" &&
        cc -pthread "$out/obj/$c.o" "$out/ltp_plumbing.o" -L"$out/lib" -lltpnewipc -lltp \
        "$libnommu" -lpthread -ldl -lm -lrt -o "$out/bin/$c") >"$out/log/$c.build" 2>&1; then
        built="$built $c"
    fi
done

# ---- 4. Run ----
sock=$out/memsrvd.sock
"$MEMSRVD" --socket "$sock" --mount /dev/shm=ramfs >"$out/log/memsrvd.out" 2>"$out/log/memsrvd.err" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "ready on" "$out/log/memsrvd.out" 2>/dev/null && break
    kill -0 $daemon 2>/dev/null || { echo "ltp.sh: memsrvd failed:" >&2; cat "$out/log/memsrvd.err" >&2; exit 1; }
    sleep 0.1
done
export NOMMU_SOCKET=$sock

# LTP's exit status: bits TFAIL 1, TBROK 2, TWARN 4, TCONF 32.
verdict() {
    case $1 in
        0) echo PASS ;;
        32) echo CONF ;;
        124) echo TIMEOUT ;;
        *) if [ "$1" -gt 128 ]; then echo "SIG$(($1 - 128))"; elif [ $(($1 & 2)) -ne 0 ]; then
           echo BROK; elif [ $(($1 & 1)) -ne 0 ]; then echo FAIL; else echo "EXIT$1"; fi ;;
    esac
}

passed=0
failed=0
printf '%-22s %-8s %s\n' CASE RESULT "FIRST FAILURE"
for c in $cases; do
    if [[ " $built " != *" $c "* ]]; then
        printf '%-22s %-8s %s\n' "$c" BUILD "$(grep -m1 -E 'error|no source' "$out/log/$c.build" || true)"
        failed=$((failed + 1))
        continue
    fi
    rc=0
    (cd "$out" && exec timeout "$limit" "$out/bin/$c") >"$out/log/$c.log" 2>&1 || rc=$?
    v=$(verdict "$rc")
    why=$(grep -m1 -E 'TFAIL|TBROK|Segmentation|Killed' "$out/log/$c.log" | sed 's/^[^:]*:[0-9]*: //' || true)
    if [ "$v" = PASS ]; then passed=$((passed + 1)); why=""; else failed=$((failed + 1)); fi
    printf '%-22s %-8s %s\n' "$c" "$v" "${why:0:100}"
done
echo "logs: $out/log"
echo "ltp: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
