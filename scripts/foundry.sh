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
exec "$binary" "$@"
