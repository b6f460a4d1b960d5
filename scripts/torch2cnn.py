#!/usr/bin/python3
"""Convert a PyTorch state_dict into a .cnn checkpoint for a cnn config.

    torch2cnn.py STATE_DICT.pt CONFIG.yaml OUT.cnn [--map TORCH=CNN ...]
                 [--cnn PATH] [--allow-unused]

STATE_DICT.pt is a file written by torch.save(model.state_dict(), path)
(a dict of tensors; {"state_dict": ...} and {"model": ...} wrappers and
DataParallel's "module." prefix are unwrapped). CONFIG.yaml is the cnn
config describing the same network; its text is embedded in OUT.cnn, which
`cnn eval`, `cnn predict`, `cnn summary` and `cnn finetune --from` then read.

Names. A torch key is `<module path>.<tensor>`; cnn's tensor is
`<layer>.<param>`. The module path becomes the layer name by, in order:
  1. --map TORCH=CNN rules: the longest TORCH prefix that matches whole
     dot-separated components is replaced by CNN (CNN may be empty; one
     rule applies per key);
  2. torchvision's ResNet shortcut: `X.downsample.0` (conv) and
     `X.downsample.1` (batch norm) become `X.<add>.proj` and
     `X.<add>.proj_bn`, <add> being the add layer of block X that has a
     projection (`add1` when the block's add is unnamed);
  3. everything else keeps its name (conv1, bn1, layer1.0.conv2, fc, ...).
The tensor name follows cnn's layer kind: batch norm and layer norm take
weight -> gamma and bias -> beta (running_mean and running_var as they are,
num_batches_tracked is dropped); conv and dense keep weight and bias. Shapes
already agree: conv [out][in/groups][kh][kw], dense [out][in] as
torch.nn.Linear, batch norm [C].

Checks. The cnn network is read from `cnn summary CONFIG` (the binary given
by --cnn; default build/cli/cnn of this checkout): every parameter of every
layer must get a torch tensor with the right number of values (and, for conv
and dense weights, the right number of outputs), and every torch tensor must
be used (--allow-unused lists the leftovers and goes on). Finally the file
is written beside OUT.cnn and loaded with `cnn summary`; only if cnn takes
it does it replace OUT.cnn. On any failure OUT.cnn is left as it was.
Exit status: 0 done, 1 a mismatch or a failed check, 2 bad usage.

Metadata written: format=cnn-checkpoint, epoch=0, step=0, nclasses (the
output size) and, only when the config's data.normalize gives them, mean and
std. The byte layout is docs/checkpoint.md's.
"""
import argparse
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch
import yaml

# cnn's parameters per layer kind (core/layers/*.c, cnn_layer_param), and
# the torch tensor name each one comes from.
CNN_PARAMS = {
    "conv": [("weight", "weight"), ("bias", "bias")],
    "dense": [("weight", "weight"), ("bias", "bias")],
    # ConvTranspose2d: both weights are [in][out][kh][kw]
    "conv_transpose": [("weight", "weight"), ("bias", "bias")],
    "batchnorm": [("gamma", "weight"), ("beta", "bias"),
                  ("running_mean", "running_mean"), ("running_var", "running_var")],
    "layernorm": [("gamma", "weight"), ("beta", "bias")],
}
DROPPED = {"num_batches_tracked"}
DEFAULT_CNN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                           "cli", "cnn")


def fail(msg):
    print(f"torch2cnn: error: {msg}", file=sys.stderr)
    sys.exit(1)


class Layer:
    """One row of `cnn summary`: what cnn expects of a layer."""

    def __init__(self, name, kind, settings, out, trainable):
        self.name, self.kind, self.settings = name, kind, settings
        self.out = out                      # (c, h, w)
        self.trainable = trainable          # trainable floats, from the table

    def units(self):
        """Outputs of a conv or conv_transpose (filters) or dense layer (units)."""
        c, h, w = self.out
        return c if self.kind in ("conv", "conv_transpose") else c * h * w

    def expected(self):
        """[(cnn param, torch tensor name, values expected)] for this layer."""
        if self.kind not in CNN_PARAMS:
            if self.trainable:
                fail(f"layer '{self.name}': torch2cnn does not know the parameters of "
                     f"layer kind '{self.kind}'")
            return []
        if self.kind in ("batchnorm", "layernorm"):
            per = self.trainable // 2 if self.kind == "layernorm" else self.out[0]
            return [(p, t, per) for p, t in CNN_PARAMS[self.kind]]
        units = self.units()
        bias = "nobias" not in self.settings.split()
        out = [("weight", "weight", self.trainable - (units if bias else 0))]
        if bias:
            out.append(("bias", "bias", units))
        return out


def run_cnn(cnn, *args):
    try:
        return subprocess.run([cnn, *args], capture_output=True, text=True)
    except OSError as exc:
        fail(f"cannot run the cnn binary '{cnn}' ({exc.strerror}); build it "
             "(ninja -C build) or name it with --cnn PATH")


def cnn_layers(cnn, config):
    """The config's layers as `cnn summary` lists them, in network order."""
    r = run_cnn(cnn, "summary", config, "--batch", "1")
    if r.returncode:
        fail(f"'{cnn} summary {config}' failed:\n{r.stderr.strip()}")
    layers, rows = [], r.stdout.splitlines()
    start = next((i for i, l in enumerate(rows) if l.startswith("layer ")), None)
    if start is None:
        fail(f"cannot read the output of '{cnn} summary'")
    for row in rows[start + 1:]:
        if row.startswith("total:"):
            break
        tok = row.split()
        # name kind settings... inputs output params share MACs RF jump
        m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", tok[-6]) if len(tok) >= 9 else None
        if not m or not tok[-4].endswith("%"):
            fail(f"cannot read this row of '{cnn} summary': {row}")
        layers.append(Layer(tok[0], tok[1], " ".join(tok[2:-7]),
                            tuple(int(v) for v in m.groups()), int(tok[-5])))
    return layers


def listing(lines, what, most=20):
    """Print up to `most` lines under a heading to stderr."""
    if not lines:
        return
    print(f"{len(lines)} {what}:", file=sys.stderr)
    for line in lines[:most]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > most:
        print(f"  ... and {len(lines) - most} more", file=sys.stderr)


def load_state_dict(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:                       # torch before 1.13
        obj = torch.load(path, map_location="cpu")
    except Exception as exc:
        fail(f"{path}: cannot load it with torch.load: {exc}")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        fail(f"{path}: not a state_dict (a dict of tensors)")
    sd = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    if len(sd) != len(obj):
        fail(f"{path}: not a state_dict: '{next(k for k in obj if k not in sd)}' "
             "is not a tensor")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def parse_maps(items):
    maps = []
    for item in items:
        if "=" not in item or not item.split("=", 1)[0]:
            print(f"torch2cnn: --map wants TORCH_PREFIX=CNN_PREFIX, got '{item}'",
                  file=sys.stderr)
            sys.exit(2)
        maps.append(tuple(item.split("=", 1)))
    return sorted(maps, key=lambda m: -len(m[0]))   # the longest prefix wins


def rename(module, maps, layer_names):
    """The cnn layer name for a torch module path."""
    for src, dst in maps:
        if module == src or module.startswith(src + "."):
            rest = module[len(src):]
            module = (dst + rest) if dst else rest.lstrip(".")
            break
    m = re.fullmatch(r"(.+)\.downsample\.([01])", module)
    if m:
        block, which = m.groups()
        suffix = ".proj" if which == "0" else ".proj_bn"
        found = [n for n in layer_names if n.startswith(block + ".") and n.endswith(suffix)
                 and "." not in n[len(block) + 1:-len(suffix)]]
        return found[0] if len(found) == 1 else f"{block}.add1{suffix}"
    return module


def metadata(config_path, nclasses):
    lines = ["format=cnn-checkpoint", "epoch=0", "step=0", f"nclasses={nclasses}"]
    with open(config_path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f) or {}
    data = cfg.get("data") or {}
    norm = data.get("normalize")
    channels = (data.get("input") or {}).get("channels", 1)
    if isinstance(norm, dict):
        for key in ("mean", "std"):
            v = norm.get(key)
            v = v if isinstance(v, list) else [v]
            if len(v) == 1:
                v = v * channels
            lines.append(f"{key}=" + " ".join(f"{float(x):.9g}" for x in v))
    return "".join(l + "\n" for l in lines)


def write_cnn(path, config_text, meta, tensors):
    """Write a .cnn file (docs/checkpoint.md). tensors: [(name, shape tuple,
    float32 little-endian C-order bytes)]."""
    parts = [struct.pack("<I", len(config_text)), config_text,
             struct.pack("<I", len(meta)), meta, struct.pack("<I", len(tensors))]
    for name, shape, raw in tensors:
        b = name.encode()
        parts += [struct.pack("<H", len(b)), b, struct.pack("<BB", 0, len(shape)),
                  struct.pack(f"<{len(shape)}Q", *shape), raw]
    payload = b"".join(parts)
    z = zlib.compress(payload, 6)
    header = struct.pack("<8sIIQQIIQ", b"CNNCKPT\0", 1, 0, len(payload), len(z),
                         zlib.crc32(payload), zlib.crc32(z), 0)
    with open(path, "wb") as f:
        f.write(header + z)
        f.flush()
        os.fsync(f.fileno())


def main():
    ap = argparse.ArgumentParser(
        prog="torch2cnn.py", description="Convert a PyTorch state_dict into a .cnn "
        "checkpoint for a cnn config (see the top of this file for the name rules).")
    ap.add_argument("state_dict", help="file saved by torch.save(model.state_dict(), path)")
    ap.add_argument("config", help="the cnn config (YAML) of the same network")
    ap.add_argument("out", help="the .cnn checkpoint to write")
    ap.add_argument("--map", action="append", default=[], metavar="TORCH=CNN",
                    help="rename a torch module prefix to a cnn layer prefix (repeatable)")
    ap.add_argument("--cnn", default=DEFAULT_CNN,
                    help="the cnn binary (default: build/cli/cnn of this checkout)")
    ap.add_argument("--allow-unused", action="store_true",
                    help="only list torch tensors no cnn layer takes")
    args = ap.parse_args()
    maps = parse_maps(args.map)

    layers = cnn_layers(args.cnn, args.config)
    by_name = {l.name: l for l in layers}
    sd = load_state_dict(args.state_dict)

    # Every torch tensor to the cnn tensor name it fills.
    given, unused = {}, []
    for key, value in sd.items():
        module, _, tensor = key.rpartition(".")
        if tensor in DROPPED:
            continue
        layer = by_name.get(rename(module, maps, by_name))
        param = next((p for p, t in CNN_PARAMS.get(layer.kind, []) if t == tensor),
                     None) if layer else None
        if param is None:
            unused.append(f"{key} {tuple(value.shape)}")
            continue
        given[f"{layer.name}.{param}"] = (key, value)

    errors, tensors, used = [], [], set()
    for layer in layers:
        for param, _, size in layer.expected():
            name = f"{layer.name}.{param}"
            if name not in given:
                hint = ""
                if param == "bias" and f"{layer.name}.weight" in given:
                    hint = f"; if the torch layer has no bias, give '{layer.name}' bias: false"
                errors.append(f"'{name}' ({size} values, layer kind {layer.kind}): "
                              f"no torch tensor{hint}")
                continue
            key, value = given[name]
            used.add(name)
            shape = tuple(value.shape)
            if value.numel() != size:
                errors.append(f"'{key}' {shape} ({value.numel()} values) does not fit "
                              f"cnn's '{name}' ({size} values)")
                continue
            if param == "weight" and layer.kind in ("conv", "dense"):
                units = layer.units()
                dims, layout = (4, "[out][in][kh][kw]") if layer.kind == "conv" \
                    else (2, "[out][in] as torch.nn.Linear")
                if value.dim() != dims or shape[0] != units:
                    errors.append(f"'{key}' {shape} does not fit cnn's '{name}' "
                                  f"({units} outputs, {layout})")
                    continue
            arr = value.detach().to(torch.float32).contiguous().numpy()
            tensors.append((name, shape, arr.astype("<f4").tobytes()))
    for name, (key, value) in given.items():    # e.g. a bias where cnn has none
        if name not in used:
            unused.append(f"{key} {tuple(value.shape)} (cnn's '{name}' does not exist)")
    if errors or (unused and not args.allow_unused):
        print("torch2cnn: error: the state_dict does not fit the config", file=sys.stderr)
        listing(errors, "cnn parameter(s) without a fitting torch tensor")
        listing(unused, "torch tensor(s) no cnn layer takes (rename with --map, or "
                "--allow-unused to leave them out)")
        sys.exit(1)
    listing(unused, "torch tensor(s) left out (--allow-unused)")

    with open(args.config, encoding="utf-8") as f:
        config_text = f.read().encode("utf-8")
    out = layers[-1].out
    meta = metadata(args.config, out[0] * out[1] * out[2]).encode("utf-8")
    # Written beside OUT, which it replaces only once cnn itself has loaded
    # it: every tensor present with the right size.
    tmp = f"{args.out}.tmp.{os.getpid()}"
    try:
        write_cnn(tmp, config_text, meta, tensors)
        r = run_cnn(args.cnn, "summary", tmp, "--batch", "1")
        if r.returncode:
            fail(f"cnn refuses the converted checkpoint:\n{r.stderr.strip()}")
        os.replace(tmp, args.out)
    except OSError as exc:
        fail(f"{args.out}: {exc.strerror}")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    total = sum(int(np.prod(s)) for _, s, _ in tensors)
    print(f"{args.out}: {len(tensors)} tensors, {total} values, from {len(sd)} "
          f"torch tensors ({len(unused)} left out)")


if __name__ == "__main__":
    main()
