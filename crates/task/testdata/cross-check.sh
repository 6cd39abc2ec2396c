#!/usr/bin/env bash
# Cross-checks testdata/vectors.json against implementations other than this crate:
#   - every keccak256 and ABI encoding with Foundry's `cast` (its native binary from node_modules),
#   - the model digest with Python's hashlib,
#   - text digests and commitments with solc's own abi.encode (solidity/Vectors.t.sol via forge).
# Usage: crates/task/testdata/cross-check.sh   (needs `npm ci` in the repo root, python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
# The native binaries: npm's node_modules/.bin launchers exit 0 even when the tool fails.
cast="$repo/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
forge="$repo/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"

python3 - "$here/vectors.json" "$here/.." "$cast" <<'PY'
import hashlib, json, struct, subprocess, sys
vectors_path, crate, cast = sys.argv[1:]
v = json.load(open(vectors_path))
def run(*args):
    return subprocess.run([cast, *args], check=True, capture_output=True, text=True).stdout.strip()
def keccak_bytes(data):
    return run("keccak", "0x" + data.hex()) if data else run("keccak", "")
def check(what, got, want):
    if got.lower() != want.lower():
        sys.exit(f"MISMATCH {what}: cast/python {got} != vectors {want}")
    print(f"ok  {what}")
check("INVALID_ARGS", run("keccak", v["invalid_args"]["preimage_utf8"]), v["invalid_args"]["keccak256"])
for a in v["args"]:
    if "file" in a:
        check(f"args file {a['file']}", keccak_bytes(open(f"{crate}/{a['file']}", "rb").read()), a["keccak256"])
    else:
        check(f"canonical args of {a['canonical_of']}", keccak_bytes(a["canonical_utf8"].encode()), a["keccak256"])
reasons = {"stop": 0, "length": 1, "stop_sequence": 2}
for t in v["text_digests"]:
    enc = run("abi-encode", "f(string,string,uint32[],uint8)", "verinfer.text.v1", t["text"],
              "[" + ",".join(map(str, t["token_ids"])) + "]", str(reasons[t["finish_reason"]]))
    check(f"text encoding {t['text']!r}", enc, t["abi_encoding"])
    check(f"text digest {t['text']!r}", run("keccak", enc), t["digest"])
for c in v["commitments"]:
    if c["kind"] == "image":
        enc = run("abi-encode", "f(uint256,address,uint64[],bytes32)", c["task_id"], c["node"],
                  "[" + ",".join(c["phashes"]) + "]", c["salt"])
    else:
        result = c["digest"] if c["kind"] == "text" else v["invalid_args"]["keccak256"]
        enc = run("abi-encode", "f(uint256,address,bytes32,bytes32)", c["task_id"], c["node"], result, c["salt"])
    check(f"{c['kind']} commitment encoding", enc, c["abi_encoding"])
    check(f"{c['kind']} commitment", run("keccak", enc), c["commitment"])
exts = (".json", ".safetensors", ".txt", ".model")
for m in v["model_digests"]:
    files = sorted((f["path"], f["content_utf8"].encode()) for f in m["files"]
                   if f["path"].endswith(exts) and not any(p.startswith(".") for p in f["path"].split("/")))
    files.sort(key=lambda f: f[0].encode())
    h = hashlib.sha256()
    for path, content in files:
        h.update(path.encode() + b"\0" + struct.pack(">Q", len(content)) + content)
    check("model digest", "sha256:" + h.hexdigest(), m["digest"])
PY

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/test"
cp "$here/solidity/Vectors.t.sol" "$work/test/"
cat > "$work/foundry.toml" <<TOML
[profile.default]
src = "test"
test = "test"
out = "out"
offline = true
auto_detect_solc = false
solc = "$repo/tools/solc/solc"
TOML
(cd "$work" && "$forge" test --root "$work" -q) && echo "ok  solc abi.encode (solidity/Vectors.t.sol)"
