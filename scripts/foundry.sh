#!/usr/bin/env bash
# Runs a pinned Foundry tool (forge, anvil, cast) from node_modules by its native binary.
# npm's node_modules/.bin launchers exit 0 even when the tool fails, so tests and CI call this.
#   scripts/foundry.sh forge test
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool="${1:?usage: scripts/foundry.sh forge|anvil|cast [ARGS...]}"
shift
case "$tool" in
    forge | anvil | cast) ;;
    *) echo "scripts/foundry.sh: unknown tool '$tool' (expected forge, anvil or cast)" >&2; exit 2 ;;
esac
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform=linux-amd64 ;;
    Linux-aarch64 | Linux-arm64) platform=linux-arm64 ;;
    Darwin-x86_64) platform=darwin-amd64 ;;
    Darwin-arm64) platform=darwin-arm64 ;;
    *) echo "scripts/foundry.sh: no pinned Foundry build for $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac
binary="$root/node_modules/@foundry-rs/$tool-$platform/bin/$tool"
if [ ! -x "$binary" ]; then
    echo "scripts/foundry.sh: $binary is missing: run 'npm ci' in $root first" >&2
    exit 2
fi

# `forge test` exits 0 with "No tests found" when its cache lists artifacts that out/ lacks (seen
# after other forge runs in the same root), which would pass CI with nothing tested. An unfiltered
# run that finds no test is retried once with --force, and fails if it still finds none.
filtered=0
for arg in "$@"; do
    case "$arg" in
        --match-* | --no-match-* | --mt | --mc | --mp | --nmt | --nmc | --nmp | --rerun) filtered=1 ;;
    esac
done
if [ "$tool" != forge ] || [ "${1:-}" != test ] || [ "$filtered" = 1 ]; then
    exec "$binary" "$@"
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for attempt in 1 2; do
    status=0
    if [ "$attempt" = 1 ]; then
        "$binary" "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
    else
        "$binary" "$@" --force 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
    fi
    if [ "$status" -ne 0 ] || ! grep -q "No tests found" "$log"; then
        exit "$status"
    fi
    if [ "$attempt" = 1 ]; then
        echo "scripts/foundry.sh: forge found no tests (stale cache?); recompiling with --force" >&2
    fi
done
echo "scripts/foundry.sh: forge test ran no tests" >&2
exit 1
