#!/usr/bin/python3
"""Write the progressive JPEG that tests/test_images.c decodes (needs PIL).

    make-jpeg-fixture.py [OUT]

OUT defaults to tests/fixtures/jpeg/progressive.jpg: a 24x16 colour
gradient saved by libjpeg (through PIL) as a progressive JPEG. Its first
scan codes the DC coefficients of all three components and names AC table
0 before any DHT segment defines it, as libjpeg always writes; the test
checks that the scan-table check in data/image.c lets it through.
stb_image_write cannot write progressive files, so this one is committed.
The output is deterministic for a given libjpeg.
"""
import os
import sys

from PIL import Image

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "tests", "fixtures", "jpeg", "progressive.jpg")
W, H = 24, 16
img = Image.new("RGB", (W, H))
img.putdata([(x * 255 // (W - 1), y * 255 // (H - 1), 128) for y in range(H) for x in range(W)])
img.save(out, "JPEG", quality=90, progressive=True)
print(f"wrote {out} ({os.path.getsize(out)} bytes)")
