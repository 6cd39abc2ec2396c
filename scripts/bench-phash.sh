#!/usr/bin/env bash
# End-to-end pHash benchmark: `verinfer phash` (the debug build the README builds) against Python
# `imagehash.phash` over the same folder of real photographs, files read and decoded included.
#
#   bash scripts/bench-phash.sh
#
# The photographs come from PyPI: the sample images that the scikit-image, scikit-learn and
# matplotlib wheels ship (22 photographs, PNG and JPEG), each used as shipped, re-encoded as a
# full-size JPEG (quality 90), and at half size as JPEG (quality 85) and PNG: 88 files. Nothing
# is committed; wheels, venv and photos live under the work directory. Both sides must print the
# same hashes (verinfer's pHash is bit-identical to imagehash's), or the script fails.
#
# Timing uses hyperfine when it is installed (`apt-get install hyperfine`), else a Python timer;
# both report wall time and CPU time (user + system) per run over the whole folder, each command
# one process (Python's start-up and imports count, as the binary's start-up does).
#
# Environment:
#   VERINFER_BIN       the binary to time (default: build `cargo build --locked -p verinfer` and
#                      time target/debug/verinfer, as the README builds it)
#   BENCH_PHASH_DIR    work directory (default: target/bench-phash)
#   BENCH_PHASH_RUNS   timed runs per command (default: 10, after 2 warm-up runs)
#   PYTHON             the Python that makes the venv (default: python3)
# Exit status: 0 when the hashes agree (whether or not the 3x goal is met), 1 when they differ.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${BENCH_PHASH_DIR:-$root/target/bench-phash}
runs=${BENCH_PHASH_RUNS:-10}
python=${PYTHON:-python3}
venv=$work/venv
photos=$work/photos
mkdir -p "$work"

# The Python side, pinned to the versions crates/phash's test vectors were made with.
pins=(imagehash==4.3.2 pillow==13.0.0 scipy==1.17.1 numpy==2.4.6)
# Wheels whose sample data are the photographs (only their image files are used).
sources=(scikit-image==0.25.2 scikit-learn==1.9.1 matplotlib==3.11.2)

# shellcheck source=scripts/lib/pinned-venv.sh
source "$root/scripts/lib/pinned-venv.sh"
pinned_venv "$python" "$venv" bench-phash "${pins[@]}"

if [[ ! -f $photos/.complete || $(cat "$photos/.complete") != "${sources[*]}" ]]; then
    echo "bench-phash: fetching the sample photographs (${sources[*]})"
    rm -rf "$photos" "$work/wheels"
    mkdir -p "$photos"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-input --no-deps \
        --only-binary=:all: --dest "$work/wheels" "${sources[@]}"
    "$venv/bin/python" - "$work/wheels" "$photos" <<'EOF'
import glob
import io
import os
import sys
import zipfile

from PIL import Image

wheels, out = sys.argv[1:]
# Photographs only: no drawings, charts, silhouettes or synthetic test patterns.
wanted = {
    "skimage/data/": [
        "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
        "coffee.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
        "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg",
        "rocket.jpg", "text.png",
    ],
    "sklearn/datasets/images/": ["china.jpg", "flower.jpg"],
    "matplotlib/mpl-data/sample_data/": ["grace_hopper.jpg"],
}
found = 0
for wheel in sorted(glob.glob(os.path.join(wheels, "*.whl"))):
    with zipfile.ZipFile(wheel) as archive:
        for folder, names in wanted.items():
            for name in names:
                try:
                    data = archive.read(folder + name)
                except KeyError:
                    continue
                found += 1
                stem, ext = os.path.splitext(name)
                with open(os.path.join(out, name), "wb") as f:
                    f.write(data)
                img = Image.open(io.BytesIO(data))
                if img.mode not in ("L", "RGB"):
                    img = img.convert("RGB")
                img.save(os.path.join(out, f"{stem}-q90.jpg"), quality=90)
                half = img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.LANCZOS)
                half.save(os.path.join(out, f"{stem}-half.jpg"), quality=85)
                half.save(os.path.join(out, f"{stem}-half.png"))
expected = sum(len(names) for names in wanted.values())
if found != expected:
    sys.exit(f"bench-phash: found {found} of {expected} sample photographs in the wheels")
EOF
    echo "${sources[*]}" >"$photos/.complete"
fi
files=("$photos"/*.png "$photos"/*.jpg)

bin=${VERINFER_BIN:-}
if [[ -z $bin ]]; then
    echo "bench-phash: cargo build --locked -p verinfer"
    (cd "$root" && cargo build --locked -p verinfer)
    bin=$("$venv/bin/python" -c 'import os, sys; print(os.path.join(sys.argv[1], "debug", "verinfer"))' \
        "${CARGO_TARGET_DIR:-$root/target}")
fi

hasher=$work/imagehash_files.py
cat >"$hasher" <<'EOF'
"""Print FILE<TAB>HASH like `verinfer phash`: str(imagehash.phash(PIL.Image.open(FILE)))."""
import sys

import imagehash
from PIL import Image

for path in sys.argv[1:]:
    print(f"{path}\t{imagehash.phash(Image.open(path))}")
EOF

# Same hashes on both sides first: the comparison is only meaningful for equal work.
"$bin" phash "${files[@]}" >"$work/verinfer.out"
"$venv/bin/python" "$hasher" "${files[@]}" >"$work/imagehash.out"
if ! cmp -s "$work/verinfer.out" "$work/imagehash.out"; then
    diff "$work/imagehash.out" "$work/verinfer.out" | head -20 >&2
    echo "bench-phash: verinfer and imagehash disagree (above: < imagehash, > verinfer)" >&2
    exit 1
fi

bytes=$(cat "${files[@]}" | wc -c)
jobs=$("$venv/bin/python" -c 'import os; print(len(os.sched_getaffinity(0)))')
echo "bench-phash: ${#files[@]} files ($((bytes / 1024)) KiB), identical hashes; $jobs CPUs; $runs runs each"
names=("verinfer phash" "verinfer phash -j 1" "imagehash (Python)")
commands=(
    "$bin phash ${files[*]}"
    "$bin phash -j 1 ${files[*]}"
    "$venv/bin/python $hasher ${files[*]}"
)
json=$work/results.json
if command -v hyperfine >/dev/null; then
    hyperfine --shell=none --warmup 2 --runs "$runs" --output=null --style=none \
        --export-json "$json" "${commands[@]}" >/dev/null
else
    "$venv/bin/python" - "$runs" "$json" "${commands[@]}" <<'EOF'
import json
import os
import resource
import statistics
import subprocess
import sys
import time

runs, out, commands = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
results = []
for command in commands:
    walls, users, systems = [], [], []
    for i in range(2 + runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command.split(), check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i >= 2:
            walls.append(wall)
            users.append(after.ru_utime - before.ru_utime)
            systems.append(after.ru_stime - before.ru_stime)
    results.append({
        "command": command, "mean": statistics.mean(walls), "stddev": statistics.stdev(walls),
        "min": min(walls), "user": statistics.mean(users), "system": statistics.mean(systems),
    })
with open(out, "w") as f:
    json.dump({"results": results}, f)
EOF
fi

"$venv/bin/python" - "$json" "${names[@]}" <<'EOF'
import json
import sys

results = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
for name, r in zip(names, results):
    cpu = r["user"] + r["system"]
    print(f"  {name:22} wall {r['mean']:.3f} s ± {r['stddev']:.3f} (min {r['min']:.3f}), "
          f"CPU {cpu:.3f} s (user {r['user']:.3f}, system {r['system']:.3f})")
ours, serial, python = results
wall = python["mean"] / ours["mean"]
cpu = (python["user"] + python["system"]) / (ours["user"] + ours["system"])
serial_cpu = (python["user"] + python["system"]) / (serial["user"] + serial["system"])
print(f"  verinfer vs imagehash: {wall:.2f}x wall, {cpu:.2f}x CPU "
      f"(-j 1: {python['mean'] / serial['mean']:.2f}x wall, {serial_cpu:.2f}x CPU)")
print(f"  goal >= 3x faster (wall): {'met' if wall >= 3 else 'NOT met'}")
EOF
