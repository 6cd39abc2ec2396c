#!/usr/bin/env python3
"""Generate the pHash test images and their `imagehash.phash` reference vectors.

Peers hash images in Python with `imagehash.phash` (Pillow + scipy); `verinfer-phash`
must agree bit for bit. This script builds a deterministic, varied image set under
`images/` and writes `vectors.json` (file name -> 16 hex digits, as `str(imagehash)`).

    python3 -m venv /tmp/phash-venv
    /tmp/phash-venv/bin/pip install 'imagehash==4.3.*' pillow scipy numpy simplejpeg
    /tmp/phash-venv/bin/python crates/phash/testdata/generate.py

The images are committed, so the Rust test only reads files. Re-running regenerates
every image (same seeds, same pixels) and recomputes every vector from the files on
disk; the vectors are always computed by opening the saved file, exactly as a peer
would. Pass `--vectors-only` to keep the images and only recompute the vectors.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import io

import imagehash
import numpy as np
import PIL
import scipy
import simplejpeg  # libjpeg-turbo encoder for the 4:4:0 and 4:1:1 samplings Pillow cannot write
from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
VECTORS = HERE / "vectors.json"


# ---------------------------------------------------------------- synthetic content


def grid(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x / max(w - 1, 1), y / max(h - 1, 1)


def scene(seed, w, h, noise=4.0, shapes=7):
    """Photo-like RGB scene: sky/ground gradients, soft-edged shapes, sensor noise."""
    rng = np.random.default_rng(seed)
    u, v = grid(w, h)
    sky = np.stack([90 + 80 * v, 140 + 60 * v, 230 - 40 * v], axis=-1)
    ground = np.stack([70 + 60 * u, 110 + 50 * v, 40 + 30 * u], axis=-1)
    horizon = 0.55 + 0.08 * np.sin(u * 6.0 + seed)
    t = np.clip((v - horizon) * 25.0 + 0.5, 0.0, 1.0)[..., None]
    img = sky * (1 - t) + ground * t
    for _ in range(shapes):
        cx, cy = rng.uniform(0.1, 0.9, 2)
        rx, ry = rng.uniform(0.05, 0.3, 2)
        color = rng.uniform(0, 255, 3)
        d = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
        if rng.uniform() < 0.4:  # some boxes instead of ellipses
            d = np.maximum(np.abs(u - cx) / rx, np.abs(v - cy) / ry)
        a = np.clip((1.0 - d) * rng.uniform(3, 30), 0.0, 1.0)[..., None]
        shade = 0.75 + 0.25 * np.cos((u - cx) * 8)[..., None]
        img = img * (1 - a) + (color * shade) * a
    img += rng.normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def rgb(arr):
    return Image.fromarray(arr, "RGB")


# ---------------------------------------------------------------- raw PNG writer
# Pillow cannot write 16-bit RGB/RGBA/LA, 2/4-bit grayscale or 16-bit gray + tRNS,
# so those few files are written by hand (unfiltered scanlines, one IDAT).


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path, width, height, bit_depth, color_type, rows, extra=b""):
    raw = b"".join(b"\x00" + row for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )
    path.write_bytes(data)


def write_png16(path, arr, color_type, extra=b""):
    arr = np.ascontiguousarray(arr.astype(">u2"))
    h, w = arr.shape[:2]
    write_png(path, w, h, 16, color_type, [arr[y].tobytes() for y in range(h)], extra)


def write_png_lowbit_gray(path, arr, bits):
    h, w = arr.shape
    per_byte = 8 // bits
    rows = []
    for y in range(h):
        out = bytearray()
        for x0 in range(0, w, per_byte):
            byte = 0
            for i in range(per_byte):
                val = int(arr[y, x0 + i]) if x0 + i < w else 0
                byte |= val << (8 - bits * (i + 1))
            out.append(byte)
        rows.append(bytes(out))
    write_png(path, w, h, bits, 0, rows)


def first_scans(img, keep):
    """A progressive JPEG of `img` with only its first `keep` scans, then EOI."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, progressive=True)
    data = buf.getvalue()
    pos, scans = 2, 0
    while True:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 2 + length
        if marker == 0xDA:  # skip entropy-coded data up to the next non-RST marker
            while not (data[pos] == 0xFF and data[pos + 1] != 0 and not 0xD0 <= data[pos + 1] <= 0xD7):
                pos += 1
            scans += 1
            if scans == keep:
                return data[:pos] + b"\xff\xd9"


# ---------------------------------------------------------------- the image set


def build_images():
    IMAGES.mkdir(parents=True, exist_ok=True)
    for old in IMAGES.iterdir():
        old.unlink()

    def save(name, img, **kw):
        img.save(IMAGES / name, **kw)

    # Photo-like scenes, assorted sizes (both resize orders, odd sizes, upscaling).
    for seed, (w, h) in enumerate([(512, 512), (640, 360), (333, 517), (257, 193), (96, 64), (48, 20)]):
        save(f"scene_{seed}_{w}x{h}.png", rgb(scene(seed, w, h)))
    # JPEG: 4:2:0 (default), 4:4:4, 4:2:2, progressive, odd size, grayscale.
    save("jpeg_q90_420.jpg", rgb(scene(10, 512, 384)), quality=90)
    save("jpeg_q95_444.jpg", rgb(scene(11, 400, 300)), quality=95, subsampling=0)
    save("jpeg_q75_422.jpg", rgb(scene(12, 321, 239)), quality=75, subsampling=1)
    save("jpeg_progressive.jpg", rgb(scene(13, 500, 333)), quality=85, progressive=True)
    save("jpeg_odd_33x17.jpg", rgb(scene(14, 33, 17)), quality=90)
    save("jpeg_gray.jpg", rgb(scene(15, 300, 200)).convert("L"), quality=90)
    save("jpeg_noise.jpg", rgb(np.random.default_rng(16).integers(0, 256, (128, 160, 3), dtype=np.uint8)), quality=80)
    save("jpeg_q100_optimized.jpg", rgb(scene(17, 200, 150)), quality=100, optimize=True)
    save("jpeg_restart_markers.jpg", rgb(scene(18, 257, 131)), quality=85, restart_marker_blocks=3)
    save("jpeg_gray_progressive.jpg", rgb(scene(19, 180, 181)).convert("L"), quality=70, progressive=True)
    save("jpeg_tiny_1x1.jpg", Image.new("RGB", (1, 1), (30, 200, 90)), quality=90)
    save("jpeg_cmyk.jpg", Image.fromarray(np.dstack([scene(24, 150, 100), scene(25, 150, 100)[..., :1]]), "CMYK"), quality=85)
    for sampling in ("440", "411"):
        data = simplejpeg.encode_jpeg(scene(26, 203, 97), quality=88, colorsubsampling=sampling)
        (IMAGES / f"jpeg_{sampling}.jpg").write_bytes(data)
    # YCCK: libjpeg reads a 4-component file as YCCK when its Adobe transform is 2.
    ycck = bytearray(simplejpeg.encode_jpeg(np.dstack([scene(27, 120, 80), scene(28, 120, 80)[..., :1]]), 85, "CMYK"))
    ycck[ycck.find(b"Adobe") + 11] = 2
    (IMAGES / "jpeg_ycck.jpg").write_bytes(bytes(ycck))
    # Progressive file cut after 3 scans: libjpeg block-smooths the unrefined
    # coefficients; verinfer-phash falls back to the `image` crate here (not bit-exact).
    (IMAGES / "jpeg_progressive_partial.jpg").write_bytes(first_scans(rgb(scene(50, 160, 120)), 3))

    # Gradients.
    u, v = grid(256, 192)
    save("gradient_horizontal.png", Image.fromarray(np.rint(u * 255).astype(np.uint8), "L"))
    save("gradient_vertical.png", Image.fromarray(np.rint(v * 255).astype(np.uint8), "L"))
    diag = np.stack([u * 255, v * 255, (1 - u) * 128 + v * 127], axis=-1)
    save("gradient_diagonal_rgb.png", rgb(np.rint(diag).astype(np.uint8)))
    r = np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2)
    save("gradient_radial.png", Image.fromarray(np.rint(np.clip(255 - r * 360, 0, 255)).astype(np.uint8), "L"))

    # Noise.
    rng = np.random.default_rng(100)
    save("noise_rgb_64.png", rgb(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    save("noise_gray_120x90.png", Image.fromarray(rng.integers(0, 256, (90, 120), dtype=np.uint8), "L"))
    save("noise_rgb_32x32.png", rgb(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))  # no resize at all
    save("noise_gray_32x200.png", Image.fromarray(rng.integers(0, 256, (200, 32), dtype=np.uint8), "L"))  # vertical pass only
    save("noise_gray_200x32.png", Image.fromarray(rng.integers(0, 256, (32, 200), dtype=np.uint8), "L"))  # horizontal pass only

    # Flat and symmetric images: many DCT coefficients are exactly zero, so the median
    # ties and the result depends on the DCT reproducing scipy's exact zeros.
    save("flat_gray_128.png", Image.new("L", (50, 50), 128))
    save("flat_rgb.png", Image.new("RGB", (40, 30), (10, 200, 30)))
    save("flat_black.png", Image.new("L", (16, 16), 0))
    save("flat_white.png", Image.new("RGB", (100, 100), (255, 255, 255)))
    yy, xx = np.mgrid[0:64, 0:64]
    save("checkerboard.png", Image.fromarray((((xx // 8) + (yy // 8)) % 2 * 255).astype(np.uint8), "L"))
    save("stripes_vertical.png", Image.fromarray(((xx // 4) % 2 * 200 + 20).astype(np.uint8), "L"))
    save("stripes_horizontal_rgb.png", rgb(np.stack([(yy // 5) % 2 * 255] * 3, axis=-1).astype(np.uint8)))
    save("centered_disc.png", Image.fromarray(np.where((xx - 31.5) ** 2 + (yy - 31.5) ** 2 < 400, 230, 30).astype(np.uint8), "L"))

    # Extreme shapes: tiny, upscaled, tall/wide, huge.
    save("tiny_1x1.png", Image.new("RGB", (1, 1), (200, 100, 50)))
    save("tiny_2x2.png", rgb(np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [0, 0, 255]]], dtype=np.uint8)))
    save("tiny_3x5.png", rgb(np.random.default_rng(3).integers(0, 256, (5, 3, 3), dtype=np.uint8)))
    save("tiny_7x3_gray.png", Image.fromarray(np.random.default_rng(7).integers(0, 256, (3, 7), dtype=np.uint8), "L"))
    save("upscale_10x10.png", rgb(scene(20, 10, 10, noise=10)))
    save("upscale_5x40.png", rgb(scene(21, 5, 40, noise=10)))
    save("tall_40x1000.png", rgb(scene(22, 40, 1000, noise=2)))
    save("wide_1000x40.png", rgb(scene(23, 1000, 40, noise=2)))
    hu, hv = grid(3000, 2000)
    huge = np.stack([hu * 255, hv * 255, 128 + 100 * np.sin(hu * 7) * np.cos(hv * 5)], axis=-1)
    save("huge_3000x2000.png", rgb(np.rint(huge).astype(np.uint8)))

    # Alpha and other modes.
    base = scene(30, 200, 150)
    au, av = grid(200, 150)
    alpha = np.clip(au * 300 - 40, 0, 255).astype(np.uint8)  # left strip fully transparent, colour kept
    save("rgba_alpha.png", Image.fromarray(np.dstack([base, alpha]), "RGBA"))
    checker_alpha = (np.indices((160, 160)).sum(0) % 3 == 0).astype(np.uint8) * 255
    save("rgba_binary_alpha.png", Image.fromarray(np.dstack([scene(31, 160, 160), checker_alpha]), "RGBA"))
    gray = rgb(scene(32, 180, 120)).convert("L")
    save("gray_l.png", gray)
    save("gray_la.png", Image.merge("LA", [gray, Image.fromarray(np.rint(np.clip(grid(180, 120)[1] * 255, 0, 255)).astype(np.uint8), "L")]))
    save("gray_l_trns.png", gray, transparency=int(np.asarray(gray)[0, 0]))
    save("rgb_trns.png", rgb(scene(33, 120, 90)), transparency=(90, 140, 230))
    pal = rgb(scene(34, 220, 160)).quantize(64)
    save("palette_p64.png", pal)
    save("palette_p_trns.png", pal, transparency=3)
    save("palette_p16_4bit.png", rgb(scene(35, 150, 110)).quantize(16), bits=4)
    save("bilevel_1bit.png", rgb(scene(36, 130, 97)).convert("1"))

    # 16-bit grayscale: Pillow opens it as "I;16" and convert("L") clamps at 255.
    g16 = np.rint(grid(160, 120)[0] * 60000 + grid(160, 120)[1] * 5000).astype(np.uint16)
    Image.fromarray(g16).save(IMAGES / "gray16_wide_range.png")
    g16_low = np.random.default_rng(40).integers(0, 256, (100, 90)).astype(np.uint16) + np.rint(grid(90, 100)[0] * 40).astype(np.uint16)
    Image.fromarray(g16_low).save(IMAGES / "gray16_low_values.png")
    write_png16(IMAGES / "gray16_trns.png", g16_low, 0, png_chunk(b"tRNS", struct.pack(">H", int(g16_low[0, 0]))))
    # 16-bit colour: Pillow keeps the most significant byte of each sample.
    s16 = scene(41, 150, 100).astype(np.uint16) * 257 + np.random.default_rng(41).integers(0, 257, (100, 150, 3)).astype(np.uint16)
    write_png16(IMAGES / "rgb16.png", s16, 2)
    a16 = np.rint(grid(150, 100)[0] * 65535).astype(np.uint16)[..., None]
    write_png16(IMAGES / "rgba16.png", np.concatenate([s16, a16], axis=-1), 6)
    write_png16(IMAGES / "gray_alpha16.png", np.stack([s16[..., 1], a16[..., 0]], axis=-1), 4)
    # Low bit depth grayscale: Pillow scales 2-bit by 0x55 and 4-bit by 0x11.
    lb = np.asarray(rgb(scene(42, 75, 50)).convert("L"))
    write_png_lowbit_gray(IMAGES / "gray_2bit.png", lb >> 6, 2)
    write_png_lowbit_gray(IMAGES / "gray_4bit.png", lb >> 4, 4)


def compute_vectors():
    vectors = {}
    for path in sorted(IMAGES.iterdir()):
        with Image.open(path) as img:
            vectors[path.name] = str(imagehash.phash(img))
    VECTORS.write_text(json.dumps(vectors, indent=2, sort_keys=True) + "\n")
    return vectors


def main():
    if "--vectors-only" not in sys.argv[1:]:
        build_images()
    vectors = compute_vectors()
    total = sum(p.stat().st_size for p in IMAGES.iterdir())
    print(
        f"{len(vectors)} vectors, images {total / 1e6:.2f} MB "
        f"(imagehash {imagehash.__version__}, Pillow {PIL.__version__}, "
        f"scipy {scipy.__version__}, numpy {np.__version__})"
    )


if __name__ == "__main__":
    main()
