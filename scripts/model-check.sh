#!/usr/bin/env bash
# Model-check the shared-memory protocols (models/, see models/README.md)
# with spin: each good model must pass every check, and each mutation (a
# known mistake, selected by a -D) must fail the check named beside it.
# Exit status non-zero on any surprise: a good model failing, a mutation
# passing, or a search that could not finish.
#
#   scripts/model-check.sh            everything
#   scripts/model-check.sh good       only the good models
#   scripts/model-check.sh M_NO_RECHECK ...   only these mutations
#   MODEL_CHECK_KEEP=1 scripts/model-check.sh ...   keep the runs' files
#
# Checks:
#   safety    assertions, with timeouts and spurious wake-ups anywhere
#   hang      -DLIVENESS (a sleep ends early only once the peer hung up):
#             no state where every thread is stuck (a lost wake-up)
#   progress  -DLIVENESS, weak fairness: no cycle without progress (a
#             thread that spins or loops forever, or a client never
#             answered while the daemon lives)
set -euo pipefail
cd "$(dirname "$0")/.."
models=$PWD/models

command -v spin >/dev/null || { echo "spin is required (Debian package spin; scripts/setup-debian.sh)" >&2; exit 1; }
command -v cc >/dev/null || { echo "a C compiler is required" >&2; exit 1; }

# model         check: every good model must pass each of its checks
good=(
    "channel_page safety"
    "channel_page hang"
    "channel_page progress"
    "threads_wait safety"
    "threads_wait hang"
    "threads_wait progress"
    "reserve safety"
)
# mutation                 model         check that must fail
mutations=(
    "M_NO_RECHECK             channel_page hang"
    "M_NO_POST_FENCE          channel_page hang"
    "M_NO_PARK_FENCE          channel_page hang"
    "M_NO_REPLY_FENCE         channel_page hang"
    "M_NO_CLIENT_RECHECK      channel_page hang"
    "M_DRAIN_AFTER_OUTBOX     channel_page hang"
    "M_SEQ_BEFORE_FRAME       channel_page safety"
    "M_REPLY_SEQ_BEFORE_FRAME channel_page safety"
    "M_STALE_LAST_SEQ         channel_page safety"
    "M_NO_HUP_CHECK           channel_page progress"
    "M_IGNORE_HUP             channel_page progress"
    "M_NO_RING_FENCE          threads_wait hang"
    "M_RING_BEFORE_SEND       threads_wait hang"
    "M_NO_SLEEP_RECHECK       threads_wait hang"
    "M_NO_WAKE_FENCE          threads_wait hang"
    "M_FULL_BEFORE_PACKET     threads_wait safety"
    "MUTANT_REVOKE_LOAD_STORE reserve      safety"
    "MUTANT_NO_ROOM_CHECK     reserve      safety"
    "MUTANT_DROP_ON_KILL      reserve      safety"
)

# MODEL_CHECK_KEEP=1 keeps each run's directory (pan.out, the trail of a
# failure for `spin -t -p`) and says where it is.
work=$(mktemp -d)
if [ -n "${MODEL_CHECK_KEEP:-}" ]; then
    echo "model-check: runs are kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi

# run MODEL CHECK [DEFINE]: prints the outcome; returns 0 if the search
# finished without an error, 1 if it found one, 2 if it could not finish.
run() {
    local model=$1 check=$2 define=${3:-} dir
    dir=$work/$model-$check${define:+-$define}
    mkdir -p "$dir"
    cp "$models"/*.pml "$dir/"
    local spin_defs=() cc_defs=(-DCOLLAPSE -DMEMLIM=4096) pan_args=(-m1000000 -w26)
    [ -n "$define" ] && spin_defs+=("-D$define")
    case $check in
        safety) cc_defs+=(-DSAFETY) ;;
        hang) spin_defs+=(-DLIVENESS); cc_defs+=(-DSAFETY) ;;
        progress) spin_defs+=(-DLIVENESS); cc_defs+=(-DNP -DNFAIR=3); pan_args+=(-l -f) ;;
    esac
    (cd "$dir" && spin "${spin_defs[@]}" -a "$model.pml" >spin.out 2>&1) || { cat "$dir/spin.out"; return 2; }
    (cd "$dir" && cc -O1 -w "${cc_defs[@]}" -o pan pan.c) || return 2
    (cd "$dir" && ./pan "${pan_args[@]}" >pan.out 2>&1) || true
    local errors
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.out" | tail -1)
    local states
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$dir/pan.out" | tail -1)
    if [ "${errors:-}" = "" ]; then
        tail -5 "$dir/pan.out"
        return 2
    fi
    if [ "$errors" != 0 ]; then
        # The error must be the kind this check looks for: an assertion
        # (safety), every thread stuck (hang), a cycle (progress).
        local what kind
        what=$(grep -m1 -E "^pan:[0-9]+: " "$dir/pan.out" || true)
        case $check in
            safety) kind="assertion violated" ;;
            hang) kind="invalid end state" ;;
            progress) kind="non-progress cycle" ;;
        esac
        echo "error: ${what:-see pan.out} ($states states)"
        case $what in *"$kind"*) return 1 ;; *) return 2 ;; esac
    fi
    if grep -qE "Search not completed|reached -DMEMLIM|out of memory|max search depth too small" "$dir/pan.out"; then
        grep -m1 -E "Search not completed|reached -DMEMLIM|out of memory|max search depth too small" "$dir/pan.out"
        return 2
    fi
    echo "ok ($states states)"
    return 0
}

want_good=1 selected=()
if [ $# -gt 0 ]; then
    want_good=
    for a in "$@"; do
        if [ "$a" = good ]; then
            want_good=1
        elif printf '%s\n' "${mutations[@]}" | grep -q "^$a "; then
            selected+=("$a")
        else
            echo "model-check: no mutation named $a" >&2
            exit 2
        fi
    done
fi

surprises=0
if [ -n "$want_good" ]; then
    for entry in "${good[@]}"; do
        read -r model check <<<"$entry"
        printf '%-40s ' "$model $check"
        status=0
        run "$model" "$check" || status=$?
        if [ $status != 0 ]; then
            echo "  SURPRISE: the good model must pass"
            surprises=$((surprises + 1))
        fi
    done
fi
for entry in "${mutations[@]}"; do
    read -r mutation model check <<<"$entry"
    if [ $# -gt 0 ]; then
        case " ${selected[*]-} " in *" $mutation "*) ;; *) continue ;; esac
    fi
    printf '%-40s ' "$model $check -D$mutation"
    status=0
    run "$model" "$check" "$mutation" || status=$?
    if [ $status != 1 ]; then
        echo "  SURPRISE: the mutation must fail this check"
        surprises=$((surprises + 1))
    fi
done
if [ $surprises != 0 ]; then
    echo "model-check: $surprises surprise(s)" >&2
    exit 1
fi
echo "model-check: all as expected"
