#!/usr/bin/python3
"""Makes the PyTorch test asset of tests/onnx_import (docs/onnx_import.md, "The PyTorch asset").

A small CNN (conv-bn-relu-maxpool x2, flatten via x.view(n, -1), linear; 9.6 k parameters) is
trained deterministically (seed 17, one thread) on the first 8,000 images of the MNIST test set
(../shared/data/mnist; the only MNIST split the project ships) and exported with
torch.onnx.export(opset_version=13) with a dynamic batch dimension. Written to assets/:
  mnist_cnn.onnx          the model
  mnist_cnn_input.bin     float32 [16, 1, 28, 28] (NCHW): images 8000-8015, scaled to [0, 1]
  mnist_cnn_output.bin    float32 [16, 10]: PyTorch's logits for them
  mnist_cnn.txt           how it was made and PyTorch's accuracy on images 8000-9999
Also (untrained, seeded weights and batch-norm statistics) a block of the MobileNet kind, for the
operators the MNIST model lacks: conv-bn-ReLU6, a residual block f(x) + x with a depthwise conv,
batch norm, SiLU (Mul(x, Sigmoid(x))) and a 1x1 conv, max pool, average pool, adaptive average
pool (GlobalAveragePool), flatten, linear, softmax:
  block_cnn.onnx, block_cnn_input.bin (float32 [4, 3, 12, 12]), block_cnn_output.bin ([4, 5])
Run with Debian's python3-torch: /usr/bin/python3 tests/onnx_import/make_torch_model.py [mnist dir]
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

here = os.path.dirname(os.path.abspath(__file__))
mnist = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "..", "shared", "data", "mnist")
out = os.path.join(here, "assets")


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


images = idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
labels = idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
x_all = torch.from_numpy(images).unsqueeze(1)  # [10000, 1, 28, 28]
y_all = torch.from_numpy(labels)
train_x, train_y = x_all[:8000], y_all[:8000]
test_x, test_y = x_all[8000:], y_all[8000:]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


torch.manual_seed(17)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
loss_fn = nn.CrossEntropyLoss()
g = torch.Generator().manual_seed(17)
epochs, batch = 3, 64
for epoch in range(epochs):
    net.train()
    order = torch.randperm(len(train_x), generator=g)
    for i in range(0, len(order), batch):
        b = order[i:i + batch]
        opt.zero_grad()
        loss = loss_fn(net(train_x[b]), train_y[b])
        loss.backward()
        opt.step()
net.eval()
with torch.no_grad():
    accuracy = (net(test_x).argmax(1) == test_y).float().mean().item()
    sample = test_x[:16].contiguous()
    logits = net(sample)
params = sum(p.numel() for p in net.parameters())
print(f"parameters {params}, accuracy on images 8000-9999: {accuracy:.4f}")

os.makedirs(out, exist_ok=True)
torch.onnx.export(net, sample, os.path.join(out, "mnist_cnn.onnx"), opset_version=13, input_names=["input"],
                  output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                  do_constant_folding=True,
                  training=torch.onnx.TrainingMode.PRESERVE)  # keeps BatchNormalization (EVAL folds it into Conv)
sample.numpy().astype("<f4").tofile(os.path.join(out, "mnist_cnn_input.bin"))
logits.numpy().astype("<f4").tofile(os.path.join(out, "mnist_cnn_output.bin"))
with open(os.path.join(out, "mnist_cnn.txt"), "w") as f:
    f.write(f"made by tests/onnx_import/make_torch_model.py with torch {torch.__version__}, opset 13, "
            f"training=PRESERVE (eval mode, batch norms kept)\n"
            f"trained {epochs} epochs (Adam 2e-3, batch {batch}, seed 17) on MNIST test images 0-7999\n"
            f"parameters {params}\n"
            f"pytorch_accuracy_8000_9999 {accuracy:.6f}\n")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.SiLU(),
                                  nn.Conv2d(8, 8, 1))
        self.head = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 6, 3), nn.ReLU(), nn.AvgPool2d(2),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5), nn.Softmax(dim=1))

    def forward(self, x):
        x = self.stem(x)
        x = self.body(x) + x
        return self.head(x)


torch.manual_seed(18)
block = Block()
with torch.no_grad():
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
block.eval()
x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(18)) * 2 - 1
with torch.no_grad():
    y = block(x)
torch.onnx.export(block, x, os.path.join(out, "block_cnn.onnx"), opset_version=13, input_names=["input"],
                  output_names=["probabilities"], dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
                  do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE)
x.numpy().astype("<f4").tofile(os.path.join(out, "block_cnn_input.bin"))
y.numpy().astype("<f4").tofile(os.path.join(out, "block_cnn_output.bin"))
