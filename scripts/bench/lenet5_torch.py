"""PyTorch side of scripts/bench/lenet5.sh: train LeNet-5 exactly as
configs/lenet5-fashion.yaml describes it (ReLU, 2x2 max pooling, Adam 1e-3,
batch 64) on Fashion-MNIST held in memory, and print images per second of
the timed steps. Run with /usr/bin/python3 (Debian's python3-torch).

usage: lenet5_torch.py THREADS IMAGES
"""
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn as nn

FASHION = "/usr/share/datasets/fashion-mnist/"


def load(n):
    with gzip.open(FASHION + "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
    with gzip.open(FASHION + "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    x = (x.astype(np.float32) / 255 - 0.286) / 0.353
    return torch.from_numpy(x.reshape(n, 1, 28, 28)), torch.from_numpy(y.astype(np.int64))


def main():
    threads, n = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    x, y = load(n)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batch = 64

    def epoch():
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()

    epoch()  # warm-up
    start = time.perf_counter()
    epoch()
    print(f"{n / (time.perf_counter() - start):.0f}")


if __name__ == "__main__":
    main()
