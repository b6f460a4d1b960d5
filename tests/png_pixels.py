#!/usr/bin/env python3
"""Pixels of an 8-bit RGB or grey PNG (no interlacing), for shell tests.

  png_pixels.py FILE X Y W H    the distinct colours of the rectangle, one
                                "R G B count" line each, most frequent first
"""
import struct
import sys
import zlib


def decode(path):
    """(width, height, rows of RGB tuples)"""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    at, idat, ihdr = 8, b"", None
    while at < len(data):
        (n,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4:at + 8]
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3}.get(ctype)
    if depth != 8 or channels is None or interlace:
        sys.exit(f"{path}: only 8-bit grey or RGB, not interlaced")
    raw = zlib.decompress(idat)
    stride = w * channels
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[x * channels:(x + 1) * channels]) * (3 // channels)
                     for x in range(w)])
        prev = line
    return w, h, rows


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    w, h, rows = decode(sys.argv[1])
    x0, y0, rw, rh = (int(v) for v in sys.argv[2:])
    if x0 < 0 or y0 < 0 or x0 + rw > w or y0 + rh > h:
        sys.exit(f"{sys.argv[1]}: the rectangle is outside the {w}x{h} image")
    counts = {}
    for y in range(y0, y0 + rh):
        for x in range(x0, x0 + rw):
            counts[rows[y][x]] = counts.get(rows[y][x], 0) + 1
    for rgb, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(*rgb, n)


if __name__ == "__main__":
    main()
