#!/usr/bin/env python3
"""Print "name crc32" for every tensor of a .cnn checkpoint (docs/checkpoint.md),
so shell tests can tell which tensors changed between two checkpoints."""
import struct
import sys
import zlib


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    payload = zlib.decompress(data[48:])
    at = 0
    for _ in range(2):                      # config, metadata
        (n,) = struct.unpack_from("<I", payload, at)
        at += 4 + n
    (count,) = struct.unpack_from("<I", payload, at)
    at += 4
    for _ in range(count):
        (n,) = struct.unpack_from("<H", payload, at)
        name = payload[at + 2:at + 2 + n].decode()
        at += 2 + n
        ndim = payload[at + 1]
        dims = struct.unpack_from("<%dQ" % ndim, payload, at + 2)
        at += 2 + 8 * ndim
        size = 4
        for d in dims:
            size *= d
        yield name, zlib.crc32(payload[at:at + size])
        at += size


for name, crc in tensors(sys.argv[1]):
    print(name, crc)
