#!/usr/bin/env python3
"""An independent implementation of verinfer's token selection (task format v2), written from
docs/task-format.md §4.1 with the Python standard library only (ChaCha20 included), that prints
the test vectors pinned in crates/inference/src/llm/sampler.rs and printed in §6 of the doc.

    python3 crates/inference/testdata/sampler_vectors.py

`math.exp` is the platform's, not the `libm` crate's; the two may differ in the last bit, which
does not move a token in these vectors.
"""

import math
import struct

MASK = 0xFFFFFFFF


def rotl(v, n):
    return ((v << n) & MASK) | (v >> (32 - n))


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK
    s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK
    s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotl(s[b] ^ s[c], 7)


def chacha20_block(key, counter, nonce):
    """64 keystream bytes: DJB's ChaCha20 with a 64-bit block counter and a 64-bit nonce."""
    state = list(struct.unpack("<4I", b"expand 32-byte k"))
    state += list(struct.unpack("<8I", key))
    state += [counter & MASK, counter >> 32, nonce & MASK, nonce >> 32]
    x = state[:]
    for _ in range(10):
        quarter(x, 0, 4, 8, 12)
        quarter(x, 1, 5, 9, 13)
        quarter(x, 2, 6, 10, 14)
        quarter(x, 3, 7, 11, 15)
        quarter(x, 0, 5, 10, 15)
        quarter(x, 1, 6, 11, 12)
        quarter(x, 2, 7, 8, 13)
        quarter(x, 3, 4, 9, 14)
    return struct.pack("<16I", *((a + b) & MASK for a, b in zip(x, state)))


class Uniforms:
    """The seed as 8 little-endian bytes + 24 zero bytes is the key; stream 0 is the nonce."""

    def __init__(self, seed, stream=0):
        self.key = struct.pack("<Q", seed) + bytes(24)
        self.stream = stream
        self.buffer = b""
        self.counter = 0

    def word(self):
        if not self.buffer:
            self.buffer = chacha20_block(self.key, self.counter, self.stream)
            self.counter += 1
        word, self.buffer = struct.unpack("<Q", self.buffer[:8])[0], self.buffer[8:]
        return word

    def uniform(self):
        return (self.word() >> 11) * 2.0**-53


def sample(logits, uniform, temperature, top_k=None, top_p=None):
    # 1. rank: logit descending, then token id ascending (-0.0 == 0.0 in Python's comparison).
    ranked = sorted(range(len(logits)), key=lambda i: (-logits[i], i))
    # 2. top-k.
    if top_k is not None:
        ranked = ranked[:top_k]
    # 3. weights relative to the first kept token.
    first = logits[ranked[0]]
    weights = [math.exp((logits[i] - first) / temperature) for i in ranked]
    # 4. top-p: the shortest prefix whose running sum reaches top_p * S.
    if top_p is not None and top_p < 1.0:
        threshold = top_p * rank_sum(weights)
        running = 0.0
        for n, w in enumerate(weights):
            running += w
            if running >= threshold:
                weights = weights[: n + 1]
                break
    # 5. draw.
    target = uniform * rank_sum(weights)
    running = 0.0
    for n, w in enumerate(weights):
        running += w
        if target < running:
            return ranked[n]
    return ranked[len(weights) - 1]


def rank_sum(weights):
    total = 0.0
    for w in weights:
        total += w
    return total


def greedy(logits):
    return min(range(len(logits)), key=lambda i: (-logits[i], i))


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


SEED = 42
LOGITS = [f32(v) for v in [1.5, -0.25, 3.0, 0.0, 2.75, float("-inf"), 3.0, -1.0]]
CONFIGS = [
    ("greedy", None),
    ("T=1.0", dict(temperature=1.0)),
    ("T=0.7, top_k=3", dict(temperature=0.7, top_k=3)),
    ("T=1.3, top_p=0.8", dict(temperature=1.3, top_p=0.8)),
    ("T=2.0, top_k=6, top_p=0.95", dict(temperature=2.0, top_k=6, top_p=0.95)),
]
STEPS = 16


def main():
    for seed in (0, 1234):
        stream = Uniforms(seed)
        words = [stream.word() for _ in range(4)]
        uniforms = [(w >> 11) * 2.0**-53 for w in words]
        print(f"seed {seed}: words {words}")
        print(f"seed {seed}: uniforms {[repr(u) for u in uniforms]}")
    print(f"logits {LOGITS}, seed {SEED}")
    for name, config in CONFIGS:
        if config is None:
            tokens = [greedy(LOGITS)] * STEPS
        else:
            stream = Uniforms(SEED)
            tokens = [sample(LOGITS, stream.uniform(), **config) for _ in range(STEPS)]
        print(f"{name}: {tokens}")


if __name__ == "__main__":
    main()
