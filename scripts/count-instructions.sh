#!/usr/bin/env bash
# Instructions per request of memsrv's core, counted by valgrind's callgrind
# (repeatable to the instruction, unlike a timing): builds
# memsrv/benches/core_instructions.rs, runs it under callgrind, and divides
# each measured loop's count by its iterations.
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
echo "memsrv core: instructions per iteration (callgrind, $n iterations per case)"
# One run per case, counting only inside that case's measured loop.
for case in pairs:"mmap+munmap pair (4 KiB anonymous), handle" \
            frame_pairs:"mmap+munmap pair as frames, handle_frame" \
            sysctls:"sysctl read, handle" \
            frame_sysctls:"sysctl read as a frame, handle_frame"; do
    name="${case%%:*}"
    valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
        --toggle-collect="core_instructions::measured_$name" "$bin" "$n" >/dev/null 2>&1
    total="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out")"
    [ -n "$total" ] && [ "$total" -gt 0 ] || { echo "no count for $name" >&2; exit 1; }
    printf '  %-46s %8d instructions\n' "${case#*:}" $(( (total + n / 2) / n ))
done
