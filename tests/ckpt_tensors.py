#!/usr/bin/env python3
"""Tensors of a .cnn checkpoint (format: docs/checkpoint.md), for shell tests.

  ckpt_tensors.py FILE                  print "name crc32" for every tensor
  ckpt_tensors.py plant FILE T=SPEC...  rewrite tensors in place; SPEC is V
                                        (every element), alt:V (row k gets V,
                                        negated for odd k) or at:I:V (element I)
  ckpt_tensors.py close A B TOL         the same tensor names and shapes, and
                                        every value of B within TOL * (1 + |a|)
                                        of A's; prints the largest difference
                                        of each tensor, exits 1 otherwise
"""
import struct
import sys
import zlib


def records(payload):
    """(name, dims, offset of the values, number of values) per tensor."""
    at = 0
    for _ in range(2):                      # config, metadata
        (n,) = struct.unpack_from("<I", payload, at)
        at += 4 + n
    (count,) = struct.unpack_from("<I", payload, at)
    at += 4
    for _ in range(count):
        (n,) = struct.unpack_from("<H", payload, at)
        name = bytes(payload[at + 2:at + 2 + n]).decode()
        at += 2 + n
        ndim = payload[at + 1]
        dims = struct.unpack_from("<%dQ" % ndim, payload, at + 2)
        at += 2 + 8 * ndim
        size = 1
        for d in dims:
            size *= d
        yield name, dims, at, size
        at += 4 * size


def read_payload(path):
    with open(path, "rb") as f:
        return bytearray(zlib.decompress(f.read()[48:]))


def plant(path, args):
    specs = dict(a.split("=", 1) for a in args)
    p = read_payload(path)
    for name, dims, at, size in records(p):
        spec = specs.pop(name, None)
        if spec is None:
            continue
        vals = list(struct.unpack_from("<%df" % size, p, at))
        kind, _, arg = spec.rpartition(":")
        if kind == "":
            vals = [float(arg)] * size
        elif kind == "alt":
            row = size // dims[0]
            vals = [float(arg) * (-1) ** (i // row) for i in range(size)]
        else:
            vals[int(kind.split(":")[1])] = float(arg)
        struct.pack_into("<%df" % size, p, at, *vals)
    assert not specs, "no such tensors: %s" % list(specs)
    z = zlib.compress(bytes(p))
    head = b"CNNCKPT\0" + struct.pack("<IIQQIIQ", 1, 0, len(p), len(z), zlib.crc32(p),
                                      zlib.crc32(z), 0)
    with open(path, "wb") as f:
        f.write(head + z)


def close(path_a, path_b, tol):
    pa, pb = read_payload(path_a), read_payload(path_b)
    ta = {name: (dims, at, size) for name, dims, at, size in records(pa)}
    tb = {name: (dims, at, size) for name, dims, at, size in records(pb)}
    ok = sorted(ta) == sorted(tb)
    if not ok:
        print("tensor names differ: %s" % sorted(set(ta) ^ set(tb)))
    for name in sorted(set(ta) & set(tb)):
        (da, aa, na), (db, ab, nb) = ta[name], tb[name]
        if da != db:
            print("%s: shape %s against %s" % (name, da, db))
            ok = False
            continue
        va = struct.unpack_from("<%df" % na, pa, aa)
        vb = struct.unpack_from("<%df" % nb, pb, ab)
        worst, where = 0.0, 0
        for i, (x, y) in enumerate(zip(va, vb)):
            d = abs(x - y) / (1.0 + abs(x))
            if not d <= worst:
                worst, where = d, i
        bad = not worst <= tol
        ok = ok and not bad
        print("%s %s: largest difference %.3g at %d (%r against %r)"
              % ("FAR" if bad else "ok ", name, worst, where, va[where], vb[where]))
    sys.exit(0 if ok else 1)


if sys.argv[1] == "plant":
    plant(sys.argv[2], sys.argv[3:])
elif sys.argv[1] == "close":
    close(sys.argv[2], sys.argv[3], float(sys.argv[4]))
else:
    p = read_payload(sys.argv[1])
    for name, _, at, size in records(p):
        print(name, zlib.crc32(p[at:at + 4 * size]))
