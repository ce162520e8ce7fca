#!/usr/bin/env python3
"""A ResNet-18-sized classifier with seeded random weights, for the benches (not committed: 45 MB).

Run from the repository root:  /path/to/venv/bin/python scripts/make_resnet18.py
Writes benches/models/resnet18.onnx: input "input" [batch,3,224,224] float32 (dynamic batch),
output "logits" [batch,1000], opset 17, and benches/models/resnet18.pt (the same weights, for
scripts/bench_peers.py). The architecture is torchvision's resnet18 (He et al. 2016: 7x7 stem,
max-pool, four stages of two basic blocks, 64-128-256-512 channels, global average pool, linear),
written out here in plain torch so torchvision is not needed; BatchNorm layers are in eval mode
with seeded random statistics, so the exporter folds them into the convolutions.
Needs torch 2.15.0, onnx 1.23.2, onnxscript 0.7.2 (scripts/requirements.txt).
"""
import os

import torch
from torch import nn

SEED = 18
OUT = os.path.join("benches", "models")


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build():
    torch.manual_seed(SEED)
    model = ResNet18()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def main():
    os.makedirs(OUT, exist_ok=True)
    model = build()
    torch.save(model.state_dict(), os.path.join(OUT, "resnet18.pt"))
    x = torch.rand(2, 3, 224, 224)
    torch.onnx.export(
        model,
        (x,),
        os.path.join(OUT, "resnet18.onnx"),
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
        opset_version=17,
        external_data=False,
    )
    print("wrote", OUT, sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main()
