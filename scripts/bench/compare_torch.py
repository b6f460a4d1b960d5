"""PyTorch side of scripts/bench/compare: the same four networks as the cnn
configs, timed the way `cnn bench` times them, on one random batch held in
memory. Run with /usr/bin/python3 (Debian's python3-torch) and
OPENBLAS_NUM_THREADS=1; the thread count is set here with
torch.set_num_threads (and one inter-op thread), PyTorch's fastest setting
on this kind of machine.

usage:
  compare_torch.py params MODEL...
      prints "MODEL PARAMETERS" per model (sum of numel of net.parameters())
  compare_torch.py train|infer MODEL THREADS BATCH STEPS WARMUP
      train: WARMUP then STEPS timed steps of forward + cross-entropy loss +
             backward + SGD step (lr 0.01, momentum 0.9, no weight decay),
             in training mode (batch norm on batch statistics);
      infer: WARMUP then STEPS timed forward passes in evaluation mode under
             torch.inference_mode();
      prints "images_per_s X peak_mib Y params Z", peak_mib being this
      process's peak resident memory (getrusage ru_maxrss).

MODEL: lenet5 (configs/lenet5-fashion.yaml, 1x28x28), resnet20
(configs/resnet20.yaml, 3x32x32, option B projection shortcuts), vgg-small
(configs/vgg-small.yaml, 3x32x32), resnet18-64 (configs/resnet18.yaml at
64x64: torchvision.models.resnet18 with its 1000-way head).
"""
import resource
import sys
import time


def main():
    cmd = sys.argv[1]
    if cmd == "params":
        import torch
        torch.set_num_threads(1)
        for name in sys.argv[2:]:
            net, _, _ = build(name)
            print(name, count(net))
        return
    if cmd not in ("train", "infer") or len(sys.argv) != 7:
        sys.exit(__doc__)
    name = sys.argv[2]
    threads, batch, steps, warmup = (int(a) for a in sys.argv[3:7])
    import torch
    # both before any parallel work: one inter-op thread, N intra-op threads
    torch.set_num_interop_threads(1)
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    net, shape, classes = build(name)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, classes, (batch,))
    if cmd == "train":
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=0)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()

        for _ in range(warmup):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - start
    else:
        net.eval()
        with torch.inference_mode():
            for _ in range(warmup):
                net(x)
            start = time.perf_counter()
            for _ in range(steps):
                net(x)
            seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"images_per_s {batch * steps / seconds:.1f} peak_mib {peak:.1f} params {count(net)}")


def count(net):
    return sum(p.numel() for p in net.parameters())


def build(name):
    """The network, its input shape (C, H, W) and its number of classes."""
    import torch.nn as nn

    if name == "lenet5":  # configs/lenet5-fashion.yaml
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, 10)), (1, 28, 28), 10

    if name == "resnet20":  # configs/resnet20.yaml
        class Basic(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                self.relu = nn.ReLU(inplace=True)
                self.proj = None  # option B: 1x1 convolution + batch norm
                if stride != 1 or cin != cout:
                    self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                              nn.BatchNorm2d(cout))

            def forward(self, x):
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                return self.relu(out + (x if self.proj is None else self.proj(x)))

        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
        cin = 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(Basic(cin, cout, stride if i == 0 else 1))
                cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
        return nn.Sequential(*layers), (3, 32, 32), 10

    if name == "vgg-small":  # configs/vgg-small.yaml
        layers, cin = [], 3
        for cout in (32, 64, 128):
            for _ in range(2):
                layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                           nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Flatten(), nn.Linear(128 * 4 * 4, 10)]
        return nn.Sequential(*layers), (3, 32, 32), 10

    if name == "resnet18-64":  # configs/resnet18.yaml with a 64x64 input
        import torchvision
        return torchvision.models.resnet18(num_classes=1000), (3, 64, 64), 1000

    sys.exit(f"compare_torch.py: unknown model '{name}'")


if __name__ == "__main__":
    main()
