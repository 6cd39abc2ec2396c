#!/usr/bin/env bash
# GPU determinism check of verinfer's pipelines on the tiny random-weight models.
#
# On a machine with an NVIDIA GPU:
#   VERINFER_BIN=path/to/verinfer GPU_CHECK_OUT=dir bash scripts/gpu-check.sh
# Without VERINFER_BIN it builds `cargo build --release --locked -p verinfer --features cuda`
# (needs cargo and the CUDA toolkit) and uses that binary.
#
# Checks (each FAIL makes the script exit 1):
#   - the same image task twice on the GPU gives byte-identical PNGs (ddim and euler_ancestral);
#   - the same text task twice on the GPU gives identical tokens (greedy and sampled);
#   - image pHashes of GPU f32, GPU f16 and CPU f32 are pairwise within the contract's Hamming
#     threshold (10 bits, `script/Deploy.s.sol`'s default).
# Reported, never a failure: GPU bf16 vs f32 distances, and whether GPU text equals CPU text
# (text results are paired per GPU model, so they need not).
#
# Environment:
#   VERINFER_BIN         the verinfer binary, built with `--features cuda`
#   GPU_CHECK_OUT        where gpu-check.log and summary.txt go (default: ./gpu-check-out)
#   GPU_CHECK_WORK       scratch directory for models and outputs (default: a new temp dir)
#   GPU_CHECK_DEVICE     the GPU (default: cuda:0)
#   GPU_CHECK_THRESHOLD  the Hamming threshold in bits (default: 10)
#   GPU_CHECK_SIZE       image side in pixels (default: 128)
# When libraries the binary needs (libcuda, libcublas, libcublasLt, libcurand, libcudart) are not
# on the loader's path, the script looks for them (pip's nvidia-* packages of the python3 on the
# PATH first, then /usr/local/nvidia, /usr/local/cuda, /opt, /usr, /root, /home) and adds their
# folders to LD_LIBRARY_PATH. Exit status: 0 all checks passed, 1 a check failed, 2 no usable
# binary or libraries.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${GPU_CHECK_OUT:-$PWD/gpu-check-out}
device=${GPU_CHECK_DEVICE:-cuda:0}
threshold=${GPU_CHECK_THRESHOLD:-10}
size=${GPU_CHECK_SIZE:-128}
# Plain logs: the binary's tracing output without colour codes.
export NO_COLOR=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
mkdir -p "$work"
log=$out/gpu-check.log
summary=$out/summary.txt
: >"$log"
: >"$summary"

say() { echo "$*" | tee -a "$log"; }
report() { echo "$*" | tee -a "$log" >>"$summary"; }
failures=0
pass() { report "PASS  $*"; }
fail() {
    report "FAIL  $*"
    failures=$((failures + 1))
}
info() { report "INFO  $*"; }

# --- the binary -----------------------------------------------------------------------------
bin=${VERINFER_BIN:-}
if [[ -z $bin ]]; then
    if ! command -v cargo >/dev/null; then
        echo "gpu-check: set VERINFER_BIN to a verinfer built with --features cuda (no cargo here)" >&2
        exit 2
    fi
    say "building: cargo build --release --locked -p verinfer --features cuda"
    (cd "$root" && cargo build --release --locked -p verinfer --features cuda) 2>&1 | tee -a "$log"
    bin=${CARGO_TARGET_DIR:-$root/target}/release/verinfer
fi
[[ -x $bin ]] || {
    echo "gpu-check: $bin is not an executable" >&2
    exit 2
}

# Libraries the binary links that the loader cannot find: look for them (pip's nvidia-*
# packages of the Python on the PATH first, then the usual places) and extend the path.
missing_libs() { ldd "$bin" 2>/dev/null | awk '/not found/ {print $1}'; }
if [[ -n $(missing_libs) ]]; then
    roots=()
    if command -v python3 >/dev/null; then
        for dir in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
            [[ -d $dir/nvidia ]] && roots+=("$dir/nvidia")
        done
    fi
    for dir in /usr/local/nvidia /usr/local/cuda /opt /usr /root /home; do
        [[ -d $dir ]] && roots+=("$dir")
    done
    for lib in $(missing_libs); do
        for dir in "${roots[@]}"; do
            found=$(find "$dir" -xdev -name "$lib" -print -quit 2>/dev/null)
            if [[ -n $found ]]; then
                LD_LIBRARY_PATH=$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
                export LD_LIBRARY_PATH
                break
            fi
        done
    done
    say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
fi
if [[ -n $(missing_libs) ]]; then
    ldd "$bin" | tee -a "$log"
    echo "gpu-check: libraries not found: $(missing_libs | tr '\n' ' ')" >&2
    exit 2
fi
ldd "$bin" >>"$log"

# --- the machine ----------------------------------------------------------------------------
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "binary: $bin ($("$bin" --version))"
if command -v nvidia-smi >/dev/null; then
    gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader -i 0 2>&1 || true)
    info "gpu (nvidia-smi): $gpu"
fi
info "identity: $("$bin" identity --json 2>>"$log")"
info "device $device, image ${size}x${size}, 2 images, 4 steps; threshold $threshold bits"

# --- models and task args -------------------------------------------------------------------
models=$work/models
t0=$(date +%s.%N)
"$bin" model make-tiny --out "$models" --seed 7 >"$work/digests.txt" 2>>"$log"
say "tiny models in $models ($(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $t0}") s):"
tee -a "$log" <"$work/digests.txt"
digest_of() { awk -v dir="$models/$1" '$2 == dir {print $1}' "$work/digests.txt"; }
sd=$(digest_of tiny-sd)
llama=$(digest_of tiny-llama)

image_args() { # scheduler precision
    printf '{"kind":"image","version":2,"model":{"name":"tiny-sd","digest":"%s"},"prompt":"a photo of a cat sitting on a red chair","negative_prompt":"blurry","width":%s,"height":%s,"steps":4,"guidance_scale":7.5,"scheduler":"%s","num_images":2,"seed":42,"precision":"%s"}' \
        "$sd" "$size" "$size" "$1" "$2"
}
text_args() { # sampling-json
    printf '{"kind":"text","version":2,"model":{"name":"tiny-llama","digest":"%s"},"input":{"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Tell me a story about a robot."}]},"max_tokens":48,"sampling":%s,"seed":1234,"stop":[]}' \
        "$llama" "$1"
}

# run NAME DEVICE ARGS-JSON [soft]: runs the task into $work/runs/NAME; stdout (pHashes or the
# text digest) in $work/runs/NAME.out, seconds in $work/runs/NAME.secs. A failed run is a FAIL,
# or only INFO with `soft`.
mkdir -p "$work/runs"
run() {
    local name=$1 dev=$2 soft=${4:-} args=$work/runs/$1.json start
    printf '%s' "$3" >"$args"
    start=$(date +%s.%N)
    if ! "$bin" run-task --args "$args" --models "$models" --out "$work/runs/$name" --device "$dev" \
        >"$work/runs/$name.out" 2>>"$log"; then
        if [[ -n $soft ]]; then
            info "$name: run-task failed on $dev (see gpu-check.log) (not a check)"
        else
            fail "$name: run-task failed on $dev (see gpu-check.log)"
        fi
        return 1
    fi
    awk "BEGIN {printf \"%.2f\", $(date +%s.%N) - $start}" >"$work/runs/$name.secs"
    say "ran $name on $dev in $(cat "$work/runs/$name.secs") s: $(tr '\n' ' ' <"$work/runs/$name.out")"
}

hamming() { # two 0x-prefixed 64-bit hashes
    local x=$(($1 ^ $2)) n=0 i
    for ((i = 0; i < 64; i++)); do n=$((n + ((x >> i) & 1))); done
    echo "$n"
}
# distances A B: the per-image Hamming distances of two runs' pHashes, space-separated.
distances() {
    paste -d' ' "$work/runs/$1.out" "$work/runs/$2.out" | while read -r a b; do
        printf '%s ' "$(hamming "$a" "$b")"
    done
}
# within A B WHAT: PASS when every image's distance is <= threshold.
within() {
    local d max=0 x
    d=$(distances "$1" "$2")
    for x in $d; do ((x > max)) && max=$x; done
    if ((max <= threshold)); then
        pass "image $3: pHash distances ${d% } (max $max <= $threshold)"
    else
        fail "image $3: pHash distances ${d% } (max $max > $threshold)"
    fi
}

# --- images ---------------------------------------------------------------------------------
for scheduler in ddim euler_ancestral; do
    s=img-$scheduler
    run "$s-gpu-f32-a" "$device" "$(image_args "$scheduler" f32)" || continue
    if run "$s-gpu-f32-b" "$device" "$(image_args "$scheduler" f32)"; then
        identical=yes pngs=0
        for png in "$work/runs/$s-gpu-f32-a"/*.png; do
            pngs=$((pngs + 1))
            cmp -s "$png" "$work/runs/$s-gpu-f32-b/$(basename "$png")" || identical=no
        done
        if [[ $identical == yes ]]; then
            pass "image $scheduler: two f32 runs on $device are byte-identical ($pngs PNGs)"
        else
            fail "image $scheduler: two f32 runs on $device differ (pHash distances $(distances "$s-gpu-f32-a" "$s-gpu-f32-b"))"
        fi
    fi
    gpu_f16=no cpu_f32=no
    run "$s-gpu-f16" "$device" "$(image_args "$scheduler" f16)" && gpu_f16=yes
    run "$s-cpu-f32" cpu "$(image_args "$scheduler" f32)" && cpu_f32=yes
    [[ $gpu_f16 == yes ]] && within "$s-gpu-f32-a" "$s-gpu-f16" "$scheduler $device f32 vs $device f16"
    [[ $cpu_f32 == yes ]] && within "$s-gpu-f32-a" "$s-cpu-f32" "$scheduler $device f32 vs cpu f32"
    [[ $gpu_f16 == yes && $cpu_f32 == yes ]] && within "$s-gpu-f16" "$s-cpu-f32" "$scheduler $device f16 vs cpu f32"
    if run "$s-gpu-bf16" "$device" "$(image_args "$scheduler" bf16)" soft; then
        d=$(distances "$s-gpu-f32-a" "$s-gpu-bf16")
        info "image $scheduler: $device f32 vs $device bf16 pHash distances ${d% } (not a check)"
    fi
done

# --- text -----------------------------------------------------------------------------------
tokens() { tr -d ' \n' <"$work/runs/$1/output.json" | sed 's/.*"token_ids":\[\([^]]*\)\].*/\1/'; }
for sampling in greedy sample; do
    case $sampling in
    greedy) json='{"mode":"greedy"}' ;;
    sample) json='{"mode":"sample","temperature":1.0,"top_p":0.95,"top_k":50}' ;;
    esac
    t=text-$sampling
    run "$t-gpu-a" "$device" "$(text_args "$json")" || continue
    if run "$t-gpu-b" "$device" "$(text_args "$json")"; then
        if cmp -s "$work/runs/$t-gpu-a/output.json" "$work/runs/$t-gpu-b/output.json"; then
            pass "text $sampling: two runs on $device are token-identical ($(tokens "$t-gpu-a" | awk -F, '{print NF}') tokens, digest $(cat "$work/runs/$t-gpu-a.out"))"
        else
            fail "text $sampling: two runs on $device differ: [$(tokens "$t-gpu-a")] vs [$(tokens "$t-gpu-b")]"
        fi
    fi
    if run "$t-cpu" cpu "$(text_args "$json")"; then
        if cmp -s "$work/runs/$t-gpu-a/output.json" "$work/runs/$t-cpu/output.json"; then
            info "text $sampling: $device and cpu are token-identical"
        else
            a=$(tokens "$t-gpu-a" | tr ',' '\n') b=$(tokens "$t-cpu" | tr ',' '\n')
            same=$(paste -d' ' <(echo "$a") <(echo "$b") | awk '$1 != $2 {exit} {n++} END {print n + 0}')
            info "text $sampling: $device and cpu differ (first $same tokens equal; $(echo "$a" | wc -l) vs $(echo "$b" | wc -l) tokens) (not a check)"
        fi
    fi
done

# --- summary --------------------------------------------------------------------------------
timings=$(for f in "$work"/runs/*.secs; do printf '%s=%s ' "$(basename "$f" .secs)" "$(cat "$f")"; done)
info "seconds per run (each a new process: CUDA init, model load, generation): ${timings% }"
say "scratch: $work"
if ((failures == 0)); then
    report "RESULT: PASS"
else
    report "RESULT: FAIL ($failures failed)"
fi
echo
cat "$summary"
((failures == 0))
