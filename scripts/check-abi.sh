#!/usr/bin/env bash
# Fails when the committed contract artifacts abi/contracts/*.json (and SOURCES.sha256) are not
# what contracts/src compiles to. CI runs it; it needs forge (`npm ci`).
#
# The generation logic is verinfer-abi-gen's (shared with verinfer-abi's build script): this
# compiles into a temporary directory and compares, never touching the checkout or out/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

hint="abi/contracts/*.json is stale: run cargo build -p verinfer-abi and commit"

status=0
cargo run --quiet -p verinfer-abi-gen --bin gen-abi -- --check --root "$root" || status=$?
if [ "$status" -ne 0 ]; then
    # gen-abi exits 1 when stale (it printed which files and the hint), 2 on errors.
    exit "$status"
fi

# A build may have regenerated the files in this checkout without them being committed.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    changes="$(git -C "$root" status --porcelain -- abi/contracts)"
    if [ -n "$changes" ]; then
        echo "abi/contracts has uncommitted changes:" >&2
        echo "$changes" >&2
        echo "$hint" >&2
        exit 1
    fi
fi
echo "abi/contracts/*.json is up to date"
