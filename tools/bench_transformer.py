#!/usr/bin/env python3
"""PyTorch counterpart of `stylize bench transformer`: the same transform network written the idiomatic
way (pytorch/examples fast_neural_style's TransformerNet, with width/blocks as parameters), timed with the
same thread count. Prints JSON {case: median seconds}. Called by `stylize bench transformer`."""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import bench_optimize as losses  # the same VGG19 loss, idiomatic PyTorch


class ConvLayer(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        return self.conv(self.pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.in1 = ConvLayer(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)
        self.conv2, self.in2 = ConvLayer(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x):
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class UpsampleConvLayer(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = ConvLayer(cin, cout, k, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    def __init__(self, w=32, blocks=5):
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, w, 9, 1), nn.InstanceNorm2d(w, affine=True)
        self.conv2, self.in2 = ConvLayer(w, 2 * w, 3, 2), nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3, self.in3 = ConvLayer(2 * w, 4 * w, 3, 2), nn.InstanceNorm2d(4 * w, affine=True)
        self.res = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(blocks)])
        self.deconv1, self.in4 = UpsampleConvLayer(4 * w, 2 * w, 3), nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2, self.in5 = UpsampleConvLayer(2 * w, w, 3), nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = ConvLayer(w, 3, 9, 1)

    def forward(self, x):
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return (torch.tanh(self.deconv3(y)) + 1) / 2


class CompactNet(nn.Module):
    """Stylize's compact network (nets/compact_net.h), written the idiomatic way."""

    def __init__(self, w=8, blocks=3):
        super().__init__()
        self.stem, self.in1 = ConvLayer(3, w, 3, 2), nn.InstanceNorm2d(w, affine=True)
        self.down, self.in2 = ConvLayer(w, 4 * w, 3, 2), nn.InstanceNorm2d(4 * w, affine=True)
        self.res = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(blocks)])
        self.up, self.in3 = UpsampleConvLayer(4 * w, w, 3), nn.InstanceNorm2d(w, affine=True)
        self.to_rgb = UpsampleConvLayer(w, 3, 3)

    def forward(self, x):
        y = F.relu(self.in1(self.stem(x)))
        y = F.relu(self.in2(self.down(y)))
        y = self.res(y)
        y = F.relu(self.in3(self.up(y)))
        return (torch.tanh(self.to_rgb(y)) + 1) / 2


def make_net(case):
    kind = CompactNet if case.get("type") == "compact" else TransformerNet
    return kind(case["width"], case["blocks"])


def median_time(fn, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    results = {}
    for case in spec["inference"]:
        net = make_net(case).eval()
        x = torch.rand(1, 3, case["height"], case["width_px"])

        def infer():
            with torch.no_grad():
                net(x).clamp(0, 1)

        results[case["name"]] = median_time(infer, spec["repeats"])
    content_layers, style_layers, levels = spec["content_layers"], spec["style_layers"], spec["pyramid"]
    vgg = losses.Vgg(losses.read_safetensors(spec["weights"]), content_layers + style_layers, spec["pooling"])
    for case in spec["train"]:
        net = make_net(case).train()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x = torch.rand(case["batch"], 3, case["size"], case["size"])
        targets = losses.style_targets(vgg, torch.rand(1, 3, case["size"], case["size"]), style_layers, levels)

        def step():  # a whole training step: network, content targets, VGG loss, backward, Adam
            opt.zero_grad()
            y = net(x)
            with torch.no_grad():
                content_targets = vgg(x, content_layers)
            losses.perceptual_loss(vgg, y, content_targets, targets, content_layers, style_layers).backward()
            opt.step()

        results[case["name"]] = median_time(step, spec["repeats"])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
