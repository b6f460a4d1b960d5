#!/usr/bin/python3
"""Write the fixture of tests/test_torch2cnn.c (needs PyTorch and torchvision).

    make-torch2cnn-fixture.py [OUTDIR] [--cnn PATH]

A small ResNet in torchvision's layout -- stem conv1/bn1/maxpool, layer1 a
basic block, layer2 a basic block with a projection shortcut (downsample),
layer3 two bottleneck blocks (the first with a projection), global average
pooling and fc -- built from torchvision's own BasicBlock and Bottleneck,
randomly initialised with random batch-norm statistics, in eval mode. Into
OUTDIR (default tests/fixtures/torch2cnn) go:

    resnet.yaml   the cnn config of the same network
    resnet.cnn    its state_dict converted by scripts/torch2cnn.py
    input.f32     the input, [2][3][24][24] little-endian float32
    logits.f32    PyTorch's logits for it, [2][5] little-endian float32,
                  computed in float64 from the same float32 weights

The state_dict itself is not kept. --cnn is the cnn binary torch2cnn.py
checks with (default: its default, build/cli/cnn of this checkout). Seeded:
a rerun writes the same files.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

CONFIG = """\
# A small ResNet in torchvision's layout, the fixture of test_torch2cnn:
# written by scripts/make-torch2cnn-fixture.py with the weights in
# resnet.cnn, converted from PyTorch by scripts/torch2cnn.py.
name: torch2cnn-resnet
data:
  input: {channels: 3, height: 24, width: 24}
  normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
model:
  defaults:
    conv: {bias: false}
  blocks:
    basic:
      args: {filters: 8, stride: 1}
      layers:
        - conv: {name: conv1, filters: $filters, kernel: 3, stride: $stride, pad: 1}
        - batchnorm: {name: bn1}
        - relu
        - conv: {name: conv2, filters: $filters, kernel: 3, pad: 1}
        - batchnorm: {name: bn2}
        - add: {inputs: [bn2, $input], project: true}
        - relu
    bottleneck:
      args: {filters: 8, stride: 1}
      layers:
        - conv: {name: conv1, filters: $filters, kernel: 1}
        - batchnorm: {name: bn1}
        - relu
        - conv: {name: conv2, filters: $filters, kernel: 3, stride: $stride, pad: 1}
        - batchnorm: {name: bn2}
        - relu
        - conv: {name: conv3, filters: $filters*4, kernel: 1}
        - batchnorm: {name: bn3}
        - add: {inputs: [bn3, $input], project: true}
        - relu
  layers:
    - conv: {name: conv1, filters: 8, kernel: 7, stride: 2, pad: 3}
    - batchnorm: {name: bn1}
    - relu: {name: relu}
    - maxpool: {name: maxpool, size: 3, stride: 2, pad: 1}
    - basic: {name: layer1, repeat: 1}
    - basic: {name: layer2, repeat: 1, filters: 16, stride: 2}
    - bottleneck: {name: layer3, repeat: 2, filters: 8, first: {stride: 2}}
    - globalavgpool: {name: avgpool}
    - dense: {name: fc, units: 5}
  loss: softmax_cross_entropy
"""


def shortcut(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class TinyResNet(nn.Module):
    """torchvision.models.ResNet's forward and names, with widths 8-32."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2, shortcut(8, 16, 2)))
        self.layer3 = nn.Sequential(Bottleneck(16, 8, 2, shortcut(16, 32, 2)),
                                    Bottleneck(32, 8))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main():
    ap = argparse.ArgumentParser(prog="make-torch2cnn-fixture.py")
    ap.add_argument("outdir", nargs="?", default="tests/fixtures/torch2cnn")
    ap.add_argument("--cnn", help="the cnn binary for torch2cnn.py's checks")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    torch.manual_seed(20240611)
    model = TinyResNet()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):   # statistics a trained net might have
                c = m.num_features
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.3)
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(1000)
                assert m.weight.numel() == c
    model.eval()
    x = torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        want = model.double()(x.double()).float()
        model.float()
        got32 = model(x)
    print(f"logits {tuple(want.shape)}, largest |logit| {want.abs().max().item():.4g}; "
          f"PyTorch float32 vs float64: {(got32 - want).abs().max().item():.3g}")

    config = os.path.join(args.outdir, "resnet.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        sd = os.path.join(tmp, "resnet.pt")
        torch.save(model.state_dict(), sd)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch2cnn.py")
        cmd = [sys.executable, script, sd, config, os.path.join(args.outdir, "resnet.cnn")]
        r = subprocess.run(cmd + (["--cnn", args.cnn] if args.cnn else []))
        if r.returncode:
            sys.exit(r.returncode)
    for name, t in (("input.f32", x), ("logits.f32", want)):
        with open(os.path.join(args.outdir, name), "wb") as f:
            f.write(t.contiguous().numpy().astype("<f4").tobytes())
    for name in sorted(os.listdir(args.outdir)):
        print(f"{os.path.join(args.outdir, name)}: "
              f"{os.path.getsize(os.path.join(args.outdir, name))} bytes")


if __name__ == "__main__":
    main()
