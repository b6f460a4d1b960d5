#!/usr/bin/env python3
"""Writes the synthetic seed inputs of the fuzz targets (tests/fuzz/) into
tests/fuzz/corpus/<target>/seed-*: tiny IDX pairs, tiny images of every
format cnn_image_decode takes (PNG in each colour type and bit depth,
interlaced too; BMP of 1 to 32 bits; TGA plain, RLE and colour-mapped; GIF;
a progressive JPEG), and checkpoints. Standard library only, deterministic.

Seeds that are copies of other files (configs, the baseline JPEGs written by
make_image_fixtures, a checkpoint written by `cnn train`) are added by hand;
docs/fuzzing.md lists them. Each input starts with the target's option
bytes (see the comment at the top of each fuzz_<target>.c).

usage: tests/fuzz/make_seeds.py [CORPUS_DIR]   (default: next to this file)
"""
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")


def save(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- IDX: option byte, image part length (u16 BE), images, labels --------

def idx_images(n, h, w, magic=0x803):
    return struct.pack(">IIII", magic, n, h, w) + bytes((i * 37) % 256 for i in range(n * h * w))


def idx_labels(n, top=9, magic=0x801):
    return struct.pack(">II", magic, n) + bytes(i % (top + 1) for i in range(n))


def idx_input(opts, images, labels):
    return bytes([opts]) + struct.pack(">H", len(images)) + images + labels


def gz(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def idx_seeds():
    save("idx", "plain", idx_input(0, idx_images(3, 4, 5), idx_labels(3)))
    save("idx", "limit2", idx_input(2, idx_images(4, 2, 2), idx_labels(4, 3)))
    save("idx", "gzip-both", idx_input(4 | 8, idx_images(3, 3, 3), idx_labels(3, 1)))
    save("idx", "gzip-images", idx_input(4 | 1, idx_images(2, 1, 7), idx_labels(2)))
    # already gzipped in the input: the trailer and what follows it are reached
    save("idx", "pregzipped", idx_input(0, gz(idx_images(2, 2, 2)), gz(idx_labels(2))))
    save("idx", "counts-differ", idx_input(0, idx_images(3, 2, 2), idx_labels(2)))
    save("idx", "swapped", idx_input(0, idx_labels(2), idx_images(2, 2, 2)))
    save("idx", "trailing", idx_input(0, idx_images(1, 2, 2) + b"x", idx_labels(1) + b"y"))
    save("idx", "truncated", idx_input(0, idx_images(5, 4, 4)[:40], idx_labels(5)))
    save("idx", "label255", idx_input(0, idx_images(2, 1, 1),
                                      struct.pack(">II", 0x801, 2) + b"\xff\x00"))
    z = bytearray(gz(idx_images(2, 3, 3)))
    z[12] ^= 0x5A                                    # inside the deflate stream
    save("idx", "gzip-corrupt", idx_input(0, bytes(z), gz(idx_labels(2))))
    z = bytearray(gz(idx_labels(2)))
    z[-6] ^= 0x01                                    # the trailer's CRC
    save("idx", "gzip-bad-crc", idx_input(0, gz(idx_images(2, 3, 3)), bytes(z)))


# ---- images: option byte, out height-1, out width-1, the file --------------

def img_input(c, mode, h, w, data):
    return bytes([(c - 1) | mode << 2, h - 1, w - 1]) + data


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, color, depth, rows, plte=None, trns=None, interlace=0, filters=True):
    """rows: raw (unfiltered) scanline bytes, already split per pass when
    interlaced; each gets a filter byte (cycling 0-4 when `filters`)."""
    raw = b""
    for i, r in enumerate(rows):
        f = i % 5 if filters else 0
        raw += bytes([f]) + filter_row(f, r, rows[i - 1] if i else bytes(len(r)),
                                       bpp(color, depth))
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    if plte:
        out += png_chunk(b"PLTE", plte)
    if trns:
        out += png_chunk(b"tRNS", trns)
    z = zlib.compress(raw, 9)
    out += png_chunk(b"IDAT", z[: len(z) // 2]) + png_chunk(b"IDAT", z[len(z) // 2:])
    return out + png_chunk(b"IEND", b"")


def bpp(color, depth):
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    return max(1, ch * depth // 8)


def filter_row(f, row, prev, b):
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - b] if i >= b else 0
        up = prev[i] if len(prev) == len(row) else 0
        c = prev[i - b] if i >= b and len(prev) == len(row) else 0
        if f == 0:
            p = 0
        elif f == 1:
            p = a
        elif f == 2:
            p = up
        elif f == 3:
            p = (a + up) // 2
        else:
            pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
            p = a if pa <= pb and pa <= pc else up if pb <= pc else c
        out.append((x - p) & 0xFF)
    return bytes(out)


def pixels(w, h, ch, depth=8):
    vals = []
    for y in range(h):
        row = []
        for x in range(w):
            for k in range(ch):
                row.append((x * 53 + y * 97 + k * 71) % (1 << depth))
        vals.append(row)
    return vals


def pack_row(vals, depth):
    if depth == 8:
        return bytes(vals)
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in vals)
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = acc << depth | v
        n += depth
        if n == 8:
            out.append(acc)
            acc = n = 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def png_simple(w, h, color, depth, **kw):
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    rows = [pack_row(r, depth) for r in pixels(w, h, ch, depth)]
    return png(w, h, color, depth, rows, **kw)


def png_adam7(w, h):
    """An interlaced 8-bit RGB PNG: the seven Adam7 passes."""
    grid = pixels(w, h, 3)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
              (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = []
    for x0, y0, dx, dy in passes:
        for y in range(y0, h, dy):
            r = []
            for x in range(x0, w, dx):
                r += grid[y][3 * x: 3 * x + 3]
            if r:
                rows.append(bytes(r))
    return png(w, h, 2, 8, rows, interlace=1, filters=False)


def bmp(w, h, bits, top_down=False, bitfields=False):
    ch_px = pixels(w, h, 3)
    pal = b""
    if bits <= 8:
        ncol = 1 << bits
        pal = b"".join(bytes([(i * 40) % 256, (i * 90) % 256, (i * 20) % 256, 0])
                       for i in range(ncol))
    rows = []
    for y in range(h):
        vals = ch_px[y]
        if bits <= 8:
            row = pack_row([(x + y) % (1 << bits) for x in range(w)], bits)
        elif bits == 16:
            row = b"".join(struct.pack("<H", (vals[3 * x] >> 3) << 11 |
                                       (vals[3 * x + 1] >> 2) << 5 | vals[3 * x + 2] >> 3)
                           for x in range(w))
        elif bits == 24:
            row = b"".join(bytes([vals[3 * x + 2], vals[3 * x + 1], vals[3 * x]])
                           for x in range(w))
        else:
            row = b"".join(bytes([vals[3 * x + 2], vals[3 * x + 1], vals[3 * x], 200])
                           for x in range(w))
        row += bytes((-len(row)) % 4)
        rows.append(row)
    if not top_down:
        rows.reverse()
    data = b"".join(rows)
    if not bitfields:            # BITMAPINFOHEADER
        info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bits, 0,
                           len(data), 2835, 2835, (1 << bits) if bits <= 8 else 0, 0)
    elif bits == 16:             # BITMAPINFOHEADER and three masks after it
        info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bits, 3,
                           len(data), 2835, 2835, 0, 0)
        info += struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    else:                        # BITMAPV4HEADER: masks with alpha, colour space
        info = struct.pack("<IiiHHIIiiII", 108, w, -h if top_down else h, 1, bits, 3,
                           len(data), 2835, 2835, 0, 0)
        info += struct.pack("<IIII", 0xFF0000, 0xFF00, 0xFF, 0xFF000000)
        info += b"BGRs" + bytes(36 + 12)
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + pal + data


def tga(w, h, kind, bits, rle=False, cmap=False):
    img_type = (9 if cmap else 10 if kind == "rgb" else 11) if rle else \
               (1 if cmap else 2 if kind == "rgb" else 3)
    cmap_spec = struct.pack("<HHB", 0, 4, 24) if cmap else bytes(5)
    hdr = struct.pack("<BBB", 0, 1 if cmap else 0, img_type) + cmap_spec + \
        struct.pack("<HHHHBB", 0, 0, w, h, 8 if cmap else bits, 0x20)
    pal = bytes(range(12)) if cmap else b""
    px = []
    for y in range(h):
        for x in range(w):
            if cmap or kind == "grey":
                px.append(bytes([(x + y) % 4 if cmap else (x * 30 + y * 7) % 256]))
            else:
                b = bytes([(x * 50) % 256, (y * 70) % 256, (x * y) % 256])
                px.append(b + (b"\x80" if bits == 32 else b""))
    if not rle:
        return hdr + pal + b"".join(px)
    out, i = b"", 0
    while i < len(px):          # runs of 2+ equal pixels, else raw packets
        j = i
        while j + 1 < len(px) and px[j + 1] == px[i] and j - i < 127:
            j += 1
        if j > i:
            out += bytes([0x80 | (j - i)]) + px[i]
            i = j + 1
        else:
            k = i
            while k + 1 < len(px) and px[k + 1] != px[k] and k - i < 127:
                k += 1
            out += bytes([k - i]) + b"".join(px[i:k + 1])
            i = k + 1
    return hdr + pal + out


def lzw(indices, min_size):
    """GIF LZW: a fresh table after every few codes keeps the code size fixed."""
    clear, eoi = 1 << min_size, (1 << min_size) + 1
    size = min_size + 1
    codes = [clear]
    room = (1 << size) - eoi - 2
    for k, v in enumerate(indices):
        if k and k % room == 0:
            codes.append(clear)
        codes.append(v)
    codes.append(eoi)
    acc = n = 0
    out = bytearray()
    for c in codes:
        acc |= c << n
        n += size
        while n >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            n -= 8
    if n:
        out.append(acc)
    blocks = b""
    for i in range(0, len(out), 255):
        blocks += bytes([len(out[i:i + 255])]) + out[i:i + 255]
    return bytes([min_size]) + blocks + b"\x00"


def gif(w, h, frames=1, interlaced=False, transparent=False):
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF1, 0, 0)   # 4-colour table
    out += bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255])
    for f in range(frames):
        if transparent or frames > 1:
            out += b"\x21\xF9\x04" + bytes([1 if transparent else 0]) + b"\x0a\x00\x02\x00"
        out += b"\x2C" + struct.pack("<HHHHB", 0, 0, w, h, 0x40 if interlaced else 0)
        out += lzw([(x + y + f) % 4 for y in range(h) for x in range(w)], 2)
    return out + b"\x3B"


class Bits:
    """JPEG entropy-coded bits, with 0xFF byte stuffing."""

    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, nbits):
        for i in range(nbits - 1, -1, -1):
            self.acc = self.acc << 1 | (value >> i & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def jpeg_progressive():
    """A 16x16 grey progressive JPEG (SOF2): a DC first scan with successive
    approximation, an AC first scan, then DC and AC refinement scans."""
    def seg(marker, body):
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    dc_syms = list(range(12))                        # all 4-bit codes
    ac_syms = [0x00, 0x01, 0x02, 0x10, 0x11, 0xF0]   # all 3-bit codes
    dc_code = {s: (i, 4) for i, s in enumerate(dc_syms)}
    ac_code = {s: (i, 3) for i, s in enumerate(ac_syms)}
    dht = bytes([0x00]) + bytes([0, 0, 0, 12] + [0] * 12) + bytes(dc_syms)
    dht += bytes([0x10]) + bytes([0, 0, 6] + [0] * 13) + bytes(ac_syms)
    dcs = [41, -21, 11, 1]                           # per block, quantised
    ac1 = [3, 0, -2, 0]                              # coefficient 1 per block

    def category(v):
        s = abs(v).bit_length()
        return s, (v if v >= 0 else v + (1 << s) - 1)

    def sos(ss, se, ah, al):
        return seg(0xDA, bytes([1, 1, 0x00, ss, se, ah << 4 | al]))

    out = b"\xFF\xD8" + seg(0xDB, bytes([0]) + bytes([1] * 64))
    out += seg(0xC2, struct.pack(">BHHB", 8, 16, 16, 1) + bytes([1, 0x11, 0]))
    out += seg(0xC4, dht)
    b, pred = Bits(), 0                              # DC first, Al = 1
    for dc in dcs:
        s, bits = category((dc >> 1) - pred)
        pred = dc >> 1
        b.put(*dc_code[s])
        b.put(bits, s)
    out += sos(0, 0, 0, 1) + b.flush()
    b = Bits()                                       # AC first, Al = 1
    for a in ac1:
        v = a >> 1 if a > 0 else -((-a) >> 1)
        if v:
            s, bits = category(v)
            b.put(*ac_code[s])
            b.put(bits, s)
        b.put(*ac_code[0x00])                        # EOB
    out += sos(1, 63, 0, 1) + b.flush()
    b = Bits()                                       # DC refinement
    for dc in dcs:
        b.put(dc & 1, 1)
    out += sos(0, 0, 1, 0) + b.flush()
    b = Bits()                                       # AC refinement
    for a in ac1:
        b.put(*ac_code[0x00])                        # EOB, then corrections
        if a >> 1 if a > 0 else -((-a) >> 1):
            b.put(abs(a) & 1, 1)
    out += sos(1, 63, 1, 0) + b.flush()
    return out + b"\xFF\xD9"


def image_seeds():
    s = lambda name, data, c=3, mode=0, h=5, w=7: save("image", name, img_input(c, mode, h, w, data))
    s("png-grey8", png_simple(5, 4, 0, 8), c=1)
    s("png-grey1", png_simple(9, 3, 0, 1), c=1, mode=1)
    s("png-grey16", png_simple(3, 3, 0, 16), c=2, mode=2)
    s("png-greyalpha", png_simple(4, 4, 4, 8), c=2)
    s("png-rgb8", png_simple(6, 5, 2, 8), mode=1)
    s("png-rgb16", png_simple(3, 2, 2, 16), c=4, mode=2)
    s("png-rgba", png_simple(5, 3, 6, 8), c=4)
    s("png-palette4", png_simple(7, 3, 3, 4, plte=bytes(range(48)),
                                 trns=bytes([0, 128, 255])), c=4, mode=1)
    s("png-adam7", png_adam7(9, 9), mode=2, h=3, w=3)
    s("bmp-1", bmp(9, 3, 1), c=1)
    s("bmp-4", bmp(5, 4, 4))
    s("bmp-8-topdown", bmp(6, 3, 8, top_down=True), mode=2)
    s("bmp-16-565", bmp(3, 3, 16, bitfields=True), c=4)
    s("bmp-24", bmp(5, 5, 24), mode=1, h=2, w=9)
    s("bmp-32-alpha", bmp(4, 2, 32, bitfields=True), c=4, mode=2)
    s("tga-rgb24", tga(4, 3, "rgb", 24))
    s("tga-rgba32-rle", tga(6, 2, "rgb", 32, rle=True), c=4)
    s("tga-grey-rle", tga(5, 5, "grey", 8, rle=True), c=1, mode=1)
    s("tga-cmap", tga(3, 4, "rgb", 8, cmap=True), mode=2)
    s("gif-one", gif(5, 4), c=1)
    s("gif-interlaced-2frames", gif(9, 9, frames=2, interlaced=True, transparent=True),
      c=4, mode=1)
    s("jpeg-progressive", jpeg_progressive(), c=1, mode=0, h=4, w=4)


# ---- checkpoints: byte 0 even = a file as is, odd = a payload to wrap ----

def payload(config, meta, tensors):
    p = struct.pack("<I", len(config)) + config + struct.pack("<I", len(meta)) + meta
    p += struct.pack("<I", len(tensors))
    for name, dims, vals in tensors:
        p += struct.pack("<H", len(name)) + name + bytes([0, len(dims)])
        p += b"".join(struct.pack("<Q", d) for d in dims)
        p += b"".join(struct.pack("<f", v) for v in vals)
    return p


def ckpt_file(p):
    z = zlib.compress(p, 6)
    hdr = b"CNNCKPT\0" + struct.pack("<IIQQIIQ", 1, 0, len(p), len(z),
                                     zlib.crc32(p) & 0xFFFFFFFF,
                                     zlib.crc32(z) & 0xFFFFFFFF, 0)
    return hdr + z


def checkpoint_seeds():
    config = b"name: tiny\ndata:\n  input: {channels: 1, height: 2, width: 2}\n" \
             b"model:\n  layers:\n    - dense: {name: output, units: 2}\n"
    meta = b"epoch=1\nstep=3\nrng=12345\nmean=0.5\nstd=0.25\nclass.0=cat\nclass.1=dog\n"
    tensors = [(b"output.weight", [2, 4], [0.1 * i for i in range(8)]),
               (b"output.bias", [2], [0.0, -1.0]),
               (b"scalar", [], [3.5]),
               (b"empty", [0, 3], [])]
    p = payload(config, meta, tensors)
    save("checkpoint", "file", b"\x00" + ckpt_file(p))
    save("checkpoint", "payload", b"\x01" + p)
    save("checkpoint", "payload-empty", b"\x01" + payload(b"", b"", []))
    save("checkpoint", "payload-8dims", b"\x01" + payload(
        b"x: 1\n", b"k=v", [(b"t", [1, 1, 1, 1, 1, 1, 1, 2], [1.0, 2.0])]))


if __name__ == "__main__":
    idx_seeds()
    image_seeds()
    checkpoint_seeds()
