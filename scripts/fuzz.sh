#!/usr/bin/env bash
# Run every fuzz target under fuzz/ for SECONDS each (default 60) and fail
# on the first crash. Installs cargo-fuzz if it is missing. cargo-fuzz
# passes nightly-only flags (-Zsanitizer, coverage options); RUSTC_BOOTSTRAP
# lets a stable rustc take them. If the toolchain has no AddressSanitizer
# runtime, the targets are fuzzed without a sanitizer (Rust's own checks
# and the targets' assertions still stop the run).
# Usage: scripts/fuzz.sh [SECONDS]     (docs/fuzzing.md tells more)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

sanitizer=address
if ! cargo fuzz build -O --sanitizer address; then
    echo "fuzz: no AddressSanitizer build; fuzzing without a sanitizer" >&2
    sanitizer=none
    cargo fuzz build -O --sanitizer none
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
for target in $(cargo fuzz list); do
    echo "== fuzz $target (${secs}s, sanitizer $sanitizer)"
    mkdir -p "corpus/$target"
    if ! cargo fuzz run -O --sanitizer "$sanitizer" "$target" -- \
        -max_total_time="$secs" -timeout=30 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        tail -n 200 "$logs/$target.log"
        echo "fuzz: $target failed; the input is under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' \
        "$logs/$target.log" || true
done
