"""ResNet-50, GhostNet and MCNN in PyTorch, built from ``labkit.algorithms.configs``.

Padding is symmetric (torchvision's), BN eps 1e-5. The MindSpore module of the same name
builds the same networks with the same parameter names, so weights move between them.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from labkit.algorithms import configs as C


# --- ResNet-50 ---------------------------------------------------------------------------

class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * C.RESNET_EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, stages=C.RESNET50_STAGES, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, C.RESNET_STEM, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(C.RESNET_STEM)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = C.RESNET_STEM
        for i, (blocks, width) in enumerate(stages):
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(cin, width, 2 if b == 0 and i > 0 else 1))
                cin = width * C.RESNET_EXPANSION
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.fc = nn.Linear(cin, num_classes)
        # He init for convs; the last BN of each block starts at zero, so every residual block
        # starts as the identity (Goyal et al. 2017): stable from scratch with small batches.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet50(num_classes: int = 1000) -> ResNet:
    return ResNet(C.RESNET50_STAGES, num_classes)


# --- GhostNet ----------------------------------------------------------------------------

class HardSigmoid(nn.Module):
    """relu6(x + 3) / 6, the reference code's gate."""

    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, ratio: float):
        super().__init__()
        reduced = C.make_divisible(channels * ratio, 4)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = nn.ReLU()
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = HardSigmoid()

    def forward(self, x):
        s = self.conv_expand(self.act1(self.conv_reduce(F.adaptive_avg_pool2d(x, 1))))
        return x * self.gate(s)


class ConvBnAct(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.ReLU() if act else nn.Identity()

    def forward(self, x):
        return self.act1(self.bn1(self.conv(x)))


class GhostModule(nn.Module):
    """A primary 1x1 conv to half the channels, a cheap 3x3 depthwise conv for the other
    half, concatenated (and sliced to an odd ``out``)."""

    def __init__(self, cin: int, out: int, relu: bool = True):
        super().__init__()
        self.out = out
        init, new = C.ghost_channels(out)
        self.sliced = init + new > out  # as the MindSpore network: no Slice node in an export that keeps all
        act = [nn.ReLU()] if relu else []
        self.primary_conv = nn.Sequential(nn.Conv2d(cin, init, 1, bias=False), nn.BatchNorm2d(init), *act)
        self.cheap_operation = nn.Sequential(nn.Conv2d(init, new, 3, 1, 1, groups=init, bias=False),
                                             nn.BatchNorm2d(new), *act)

    def forward(self, x):
        x1 = self.primary_conv(x)
        y = torch.cat([x1, self.cheap_operation(x1)], 1)
        return y[:, : self.out] if self.sliced else y


class GhostBottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, out: int, kernel: int, stride: int, se_ratio: float):
        super().__init__()
        self.ghost1 = GhostModule(cin, mid, relu=True)
        self.stride = stride
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, se_ratio) if se_ratio else None
        self.ghost2 = GhostModule(mid, out, relu=False)
        if cin == out and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.ghost1(x)
        if self.stride > 1:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


class GhostNet(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, dropout: float = C.GHOSTNET_DROPOUT):
        super().__init__()
        self.dropout = dropout
        cin = C.make_divisible(C.GHOSTNET_STEM * width, 4)
        self.conv_stem = nn.Conv2d(3, cin, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = nn.ReLU()
        stages = []
        for rows in C.GHOSTNET_STAGES:
            blocks = []
            for k, exp, c, se, s in rows:
                out = C.make_divisible(c * width, 4)
                blocks.append(GhostBottleneck(cin, C.make_divisible(exp * width, 4), out, k, s, se))
                cin = out
            stages.append(nn.Sequential(*blocks))
        head, feat = C.GHOSTNET_HEAD
        head = C.make_divisible(head * width, 4)
        stages.append(nn.Sequential(ConvBnAct(cin, head, 1)))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(head, feat, 1, bias=True)
        self.act2 = nn.ReLU()
        self.classifier = nn.Linear(feat, num_classes)

    def forward(self, x):
        x = self.blocks(self.act1(self.bn1(self.conv_stem(x))))
        x = self.act2(self.conv_head(F.adaptive_avg_pool2d(x, 1)))
        x = F.dropout(torch.flatten(x, 1), self.dropout, self.training)
        return self.classifier(x)


def ghostnet(num_classes: int = 1000, width: float = 1.0, dropout: float = C.GHOSTNET_DROPOUT) -> GhostNet:
    return GhostNet(num_classes, width, dropout)


# --- MCNN --------------------------------------------------------------------------------

class MCNN(nn.Module):
    """Three columns of different receptive fields on a grayscale image, fused by a 1x1 conv
    into a density map a quarter of the input's size; the count is its sum."""

    def __init__(self):
        super().__init__()
        for i, column in enumerate(C.MCNN_COLUMNS):
            layers, cin = [], 1
            for j, (k, cout) in enumerate(column):
                layers += [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU()]
                if j < C.MCNN_POOL_AFTER:
                    layers.append(nn.MaxPool2d(2))
                cin = cout
            setattr(self, f"branch{i + 1}", nn.Sequential(*layers))
        self.fuse = nn.Sequential(nn.Conv2d(sum(col[-1][1] for col in C.MCNN_COLUMNS), 1, 1), nn.ReLU())
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.fuse(torch.cat([self.branch1(x), self.branch2(x), self.branch3(x)], 1))


def mcnn() -> MCNN:
    return MCNN()


BUILDERS = {"resnet50": resnet50, "ghostnet": ghostnet, "mcnn": mcnn}


def build(arch: str, num_classes: int, hp: dict | None = None):
    """The network of a card's ``arch``, configured by a job's hyper-parameters."""
    return BUILDERS[arch](*C.builder_args(arch, num_classes, hp or {}))
