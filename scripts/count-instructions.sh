#!/usr/bin/env bash
# Instructions per request of memsrv's core, counted by valgrind's callgrind
# (repeatable to the instruction, unlike a timing): builds
# memsrv/benches/core_instructions.rs, runs it under callgrind once per case,
# and divides the count by the iterations.
#
#   scripts/count-instructions.sh [ITERATIONS]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-10000}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

bin="$(cargo bench -p memsrv --bench core_instructions --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*core_instructions[^"]*\)".*/\1/p' | tail -n 1)"
[ -x "$bin" ] || { echo "could not build the core_instructions bench" >&2; exit 1; }

out="$(mktemp -t callgrind.core.XXXXXX)"
trap 'rm -f "$out"' EXIT
warm=100   # WARM_UP in the bench: counted too
echo "memsrv core: instructions per iteration (callgrind, $n iterations per case)"
# One run per case, counting only inside that case's measured loop, or
# inside handle_frame alone for the frame cases.
for case in pairs:"mmap+munmap pair (4 KiB anonymous), handle" \
            frame_pairs:"mmap+munmap pair as frames, handle_frame" \
            sysctls:"sysctl read, handle" \
            frame_sysctls:"sysctl read as a frame, handle_frame"; do
    name="${case%%:*}"
    case "$name" in
        frame_*) counted='memsrv::MemoryServer<*>::handle_frame' ;;
        *) counted="core_instructions::measured_$name" ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
        --toggle-collect="$counted" "$bin" "$name" "$n" >/dev/null 2>&1
    total="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out")"
    [ -n "$total" ] && [ "$total" -gt 0 ] || { echo "no count for $name" >&2; exit 1; }
    iterations=$((n + warm))
    printf '  %-46s %8d instructions\n' "${case#*:}" $(( (total + iterations / 2) / iterations ))
done
