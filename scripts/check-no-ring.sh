#!/usr/bin/env bash
# CI guard (issue 12): no crate of the workspace may link ring or aws-lc (rustls's default
# features, or tokio-rustls's, would bring them in; gmtls's provider is GM-only). For each
# crate `cargo tree -i` must print nothing over normal and build dependencies on every target.
# "Absent" is either of cargo's two answers: exit 0 with "nothing to print" (in the lock file,
# not in the graph) or the error "did not match any packages" (not in the lock file at all).
# Any other failure of cargo fails the guard.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
for crate in ring aws-lc-rs aws-lc-sys; do
    out=$(mktemp) err=$(mktemp)
    if cargo tree --workspace --target all -e normal,build -i "$crate" >"$out" 2>"$err"; then
        if [ -s "$out" ]; then
            echo "check-no-ring: FAILED: $crate is in the dependency graph:" >&2
            cat "$out" >&2
            status=1
        else
            echo "check-no-ring: $crate absent"
        fi
    elif grep -q "did not match any packages" "$err"; then
        echo "check-no-ring: $crate absent (not in Cargo.lock)"
    else
        echo "check-no-ring: FAILED: cargo tree -i $crate failed:" >&2
        cat "$err" >&2
        status=1
    fi
    rm -f "$out" "$err"
done
exit "$status"
