#!/usr/bin/env python3
"""Time Python `imagehash.phash` on a decoded 512x512 RGB image (the Rust bench's input).

    /tmp/phash-venv/bin/python crates/phash/benches/imagehash_baseline.py

Same content as `benches/phash.rs`, already decoded, so only the hash pipeline
(convert("L"), LANCZOS resize, scipy DCT, median) is timed.
"""

import timeit

import imagehash
import numpy as np
from PIL import Image


def test_image():
    y, x = np.mgrid[0:512, 0:512].astype(np.uint32)
    texture = ((x * 2654435761) & 0xFFFFFFFF ^ (y * 40503) & 0xFFFFFFFF) >> 27
    rgb = np.stack([x // 2, y // 2, ((x + y) // 4 + texture) & 0xFF], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def main():
    img = test_image()
    img.load()
    number = 500
    runs = timeit.repeat(lambda: imagehash.phash(img), number=number, repeat=7)
    best = min(runs) / number
    median = sorted(runs)[len(runs) // 2] / number
    print(f"imagehash.phash 512x512 RGB: best {best * 1e3:.3f} ms, median {median * 1e3:.3f} ms per image")
    print(f"hash {imagehash.phash(img)}")


if __name__ == "__main__":
    main()
