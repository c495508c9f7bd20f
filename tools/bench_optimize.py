#!/usr/bin/env python3
"""PyTorch counterpart of `stylize bench optimize`: the same VGG19 losses, written the idiomatic PyTorch
way (as in pytorch/examples), timed on the same machine with the same thread count. Prints JSON
{size: median seconds per loss forward+backward}. Called by `stylize bench optimize`."""
import json
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
NAMES = ["1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "3_4", "4_1", "4_2", "4_3", "4_4", "5_1", "5_2", "5_3", "5_4"]
CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
POOL_AFTER = {"1_2", "2_2", "3_4", "4_4"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        array = np.frombuffer(data[8 + n + b:8 + n + e], dtype=np.float32).reshape(info["shape"])
        out[name] = torch.from_numpy(array.copy())
    return out


class Vgg(nn.Module):
    def __init__(self, weights, taps, pooling):
        super().__init__()
        deepest = max(NAMES.index(t[4:]) for t in taps)
        layers, self.names = [], []
        in_ch = 3
        for i in range(deepest + 1):
            conv = nn.Conv2d(in_ch, CHANNELS[i], 3, padding=1)
            conv.weight.data = weights[f"features.{CONV_INDICES[i]}.weight"]
            conv.bias.data = weights[f"features.{CONV_INDICES[i]}.bias"]
            layers += [conv, nn.ReLU(inplace=True)]
            self.names += [None, "relu" + NAMES[i]]
            if NAMES[i] in POOL_AFTER and i < deepest:
                layers.append(nn.MaxPool2d(2) if pooling == "max" else nn.AvgPool2d(2))
                self.names.append(None)
            in_ch = CHANNELS[i]
        self.layers = nn.ModuleList(layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x, taps):
        out = {}
        h = (x - self.mean) / self.std
        for layer, name in zip(self.layers, self.names):
            h = layer(h)
            if name in taps:
                out[name] = h
        return out


def gram(f):
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def style_targets(vgg, style, style_layers, levels):
    with torch.no_grad():
        return [{k: gram(v) for k, v in vgg(F.avg_pool2d(style, 2 ** l) if l else style, style_layers).items()}
                for l in range(levels)]


def perceptual_loss(vgg, x, content_targets, targets, content_layers, style_layers):
    """Content MSE + mean-normalised Gram style loss averaged over pyramid levels + TV, as Stylize defines it."""
    feats = vgg(x, content_layers + style_layers)
    loss = sum(F.mse_loss(feats[l], content_targets[l]) for l in content_layers)
    style_loss = 0
    for level, level_targets in enumerate(targets):
        if level:
            feats = vgg(F.avg_pool2d(x, 2 ** level), style_layers)
        style_loss = style_loss + sum(F.mse_loss(gram(feats[l]), level_targets[l].expand(x.shape[0], -1, -1))
                                      for l in style_layers)
    tv = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    return loss + style_loss / len(targets) + tv


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    content_layers, style_layers = spec["content_layers"], spec["style_layers"]
    vgg = Vgg(read_safetensors(spec["weights"]), content_layers + style_layers, spec["pooling"])
    levels = spec["pyramid"]
    results = {}
    for size in spec["sizes"]:
        gen = torch.Generator().manual_seed(0)
        content = torch.rand(1, 3, size, size, generator=gen)
        style = torch.rand(1, 3, size, size, generator=gen)
        with torch.no_grad():
            content_targets = vgg(content, content_layers)
        targets = style_targets(vgg, style, style_layers, levels)
        x = content.clone().requires_grad_(True)

        def step():
            x.grad = None
            perceptual_loss(vgg, x, content_targets, targets, content_layers, style_layers).backward()

        for _ in range(2):
            step()
        times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        results[str(size)] = statistics.median(times)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
