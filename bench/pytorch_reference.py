#!/usr/bin/env python3
"""The reference CNN of bench/bench_train_step.cpp in PyTorch: same layers, batch 64, Adam.

28x28x1 -> conv 3x3/2 16 -> relu -> conv 3x3/2 32 -> relu -> conv 3x3/2 64 -> relu -> flatten
-> dense 10. PyTorch pads stride-2 "same" convolutions symmetrically (padding=1) where qnas
follows TensorFlow (extra row/column at the bottom/right); shapes and FLOPs are identical.
Prints "pytorch <mode> <images/s median> <repeats>" per mode, like the C++ benchmark.
Threads: torch.set_num_threads(--threads); the caller also sets OMP/OPENBLAS_NUM_THREADS.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mode", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.inference_mode():
            net(x)

    for mode, fn in (("train_f32", train_step), ("infer_f32", infer_step)):
        if a.mode and a.mode != mode:
            continue
        for _ in range(20):
            fn()
        rates = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for _ in range(a.steps):
                fn()
            rates.append(a.batch * a.steps / (time.perf_counter() - t0))
        print(f"pytorch {mode} {statistics.median(rates):.1f} {a.repeats}", flush=True)


if __name__ == "__main__":
    main()
