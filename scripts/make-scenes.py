#!/usr/bin/env python3
"""Write small synthetic landscape pictures as 24-bit BMP files, for the
pretext-task tests (tests/test_tasks.sh): a sky that darkens upward over
ground of another colour, the horizon at a random height, and a sun disc.
Colour follows position and brightness, so colorization, context
prediction and contrastive learning all have something to learn.

  make-scenes.py OUTDIR N SIZE SEED    OUTDIR/{day,dusk}/NNN.bmp
"""
import os
import random
import struct
import sys


def bmp(path, w, h, pixel):
    """pixel(x, y) -> (r, g, b) in 0..255; BMP rows go bottom up, BGR,
    each padded to a multiple of 4 bytes."""
    pad = (4 - 3 * w % 4) % 4
    rows = bytearray()
    for y in range(h - 1, -1, -1):
        for x in range(w):
            r, g, b = pixel(x, y)
            rows += bytes((b, g, r))
        rows += b"\0" * pad
    head = struct.pack("<2sIHHI", b"BM", 54 + len(rows), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(head + info + rows)


def scene(rng, size, dusk):
    horizon = rng.randint(size // 3, 2 * size // 3)
    sky = (250, 140, 60) if dusk else (90, 150, 235)
    ground = rng.choice([(60, 140, 50), (150, 110, 60), (200, 190, 120)])
    sun = (rng.randint(2, size - 3), rng.randint(1, horizon - 2), rng.randint(1, 3))
    noise = [[rng.randint(-12, 12) for _ in range(size)] for _ in range(size)]

    def pixel(x, y):
        if (x - sun[0]) ** 2 + (y - sun[1]) ** 2 <= sun[2] ** 2:
            c = (255, 230, 120)
        elif y < horizon:
            k = 0.45 + 0.55 * y / horizon          # darker towards the top
            c = tuple(int(v * k) for v in sky)
        else:
            k = 1.0 - 0.4 * (y - horizon) / size   # darker towards the bottom
            c = tuple(int(v * k) for v in ground)
        return tuple(max(0, min(255, v + noise[y][x])) for v in c)
    return pixel


def main():
    out, n, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    for i in range(n):
        cls = "dusk" if i % 2 else "day"
        os.makedirs(os.path.join(out, cls), exist_ok=True)
        bmp(os.path.join(out, cls, "%03d.bmp" % i), size, size, scene(rng, size, i % 2))


if __name__ == "__main__":
    main()
