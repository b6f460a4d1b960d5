#!/usr/bin/python3
"""Write the PyTorch reference of tests/test_upsample.c (needs PyTorch).

    make-upsample-fixture.py [OUT]

For a few small cases of nn.Upsample (nearest, and bilinear with
align_corners=False) and nn.ConvTranspose2d, writes into OUT (default
tests/fixtures/upsample/reference.txt) the input, the weights, PyTorch's
output and the gradients of sum(output * dy) for a random dy, computed in
float64 from float32 values. One line per item, whitespace-separated:

    case NAME KIND             a new case of layer KIND (upsample, conv_transpose)
    opt KEY VALUE              a layer option as cnn's YAML spells it ([h,w] lists)
    in N C H W                 the input shape; `out N C H W` the output's
    x|weight|bias|y|dy|dx|dweight|dbias V...   the tensors, flat, row-major

Lines starting with # are comments. Seeded: a rerun writes the same file.
"""
import os
import sys

import torch
from torch import nn

UPSAMPLE = [
    # name, input shape, scale, mode
    ("nearest_x2", (2, 3, 3, 4), 2, "nearest"),
    ("nearest_2x3", (1, 2, 3, 2), (2, 3), "nearest"),
    ("bilinear_x2", (2, 2, 4, 5), 2, "bilinear"),
    ("bilinear_x3", (1, 2, 3, 3), 3, "bilinear"),
    ("bilinear_3x2", (1, 1, 4, 3), (3, 2), "bilinear"),
    ("bilinear_1x2_plane", (1, 2, 1, 2), 2, "bilinear"),
]

CONV_T = [
    # name, input shape, filters, kernel, stride, pad, output_padding, bias
    ("k3_s1", (2, 3, 4, 4), 2, 3, 1, 0, 0, True),
    ("k4_s2_p1", (2, 3, 4, 5), 4, 4, 2, 1, 0, True),
    ("k3_s2_p1_op1", (1, 2, 3, 4), 3, 3, 2, 1, 1, True),
    ("k3x2_s2x3_p1x0_op1x2_nobias", (2, 2, 5, 3), 2, (3, 2), (2, 3), (1, 0), (1, 2), False),
    ("k5_s3_p2", (1, 3, 3, 3), 2, 5, 3, 2, 0, True),
    ("k3_s2_p3", (1, 2, 5, 5), 2, 3, 2, 3, 0, True),
]


def opt_text(v):
    if isinstance(v, tuple):
        return "[%d,%d]" % v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def tensor_line(name, t):
    vals = t.detach().reshape(-1).tolist()
    return name + " " + " ".join("%.9g" % v for v in vals) + "\n"


def shape_line(name, t):
    return name + " " + " ".join(str(d) for d in t.shape) + "\n"


def f32(t):
    """Round to float32, compute in float64."""
    return t.float().double()


def run_case(module, x, out):
    x = x.clone().requires_grad_(True)
    y = module(x)
    dy = f32(torch.randn(y.shape, dtype=torch.float64))
    (y * dy).sum().backward()
    out.write(shape_line("in", x))
    out.write(tensor_line("x", x))
    for name, p in module.named_parameters():
        out.write(tensor_line(name, p))
    out.write(shape_line("out", y))
    out.write(tensor_line("y", y))
    out.write(tensor_line("dy", dy))
    out.write(tensor_line("dx", x.grad))
    for name, p in module.named_parameters():
        out.write(tensor_line("d" + name, p.grad))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/upsample/reference.txt"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    torch.manual_seed(9)
    with open(path, "w") as out:
        out.write("# PyTorch %s: nn.Upsample and nn.ConvTranspose2d in float64 on "
                  "float32 values;\n# written by scripts/make-upsample-fixture.py\n"
                  % torch.__version__)
        for name, shape, scale, mode in UPSAMPLE:
            sf = scale if isinstance(scale, int) else tuple(float(s) for s in scale)
            kw = {"align_corners": False} if mode == "bilinear" else {}
            m = nn.Upsample(scale_factor=sf, mode=mode, **kw)
            out.write("case %s upsample\n" % name)
            out.write("opt scale %s\nopt mode %s\n" % (opt_text(scale), mode))
            run_case(m, f32(torch.randn(shape, dtype=torch.float64)), out)
        for name, shape, filters, k, s, p, op, bias in CONV_T:
            m = nn.ConvTranspose2d(shape[1], filters, k, stride=s, padding=p,
                                   output_padding=op, bias=bias).double()
            with torch.no_grad():
                for prm in m.parameters():
                    prm.copy_(f32(torch.randn(prm.shape, dtype=torch.float64)) * 0.5)
            out.write("case %s conv_transpose\n" % name)
            out.write("opt filters %d\nopt kernel %s\nopt stride %s\nopt pad %s\n"
                      "opt output_padding %s\nopt bias %s\n"
                      % (filters, opt_text(k), opt_text(s), opt_text(p), opt_text(op),
                         opt_text(bias)))
            run_case(m, f32(torch.randn(shape, dtype=torch.float64)), out)
    print("wrote %s" % path)


if __name__ == "__main__":
    main()
