"""ResNet-50, GhostNet and MCNN in MindSpore, built from ``labkit.algorithms.configs``.

The same networks as ``labkit.algorithms.pytorch.models`` with the same parameter names
(BatchNorm's gamma/beta/moving_mean/moving_variance stand for PyTorch's
weight/bias/running_mean/running_var). Padding is symmetric (``pad_mode='pad'``) and BN eps
1e-5 like torchvision, not the model zoo's TF-style 'same' padding and eps 1e-4, so that the
two engines give the same outputs for the same weights. ``construct`` methods take ``self``
first: graph mode parses them from source.
"""
from __future__ import annotations

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import HeNormal, Normal, Zero

from labkit.algorithms import configs as C


def conv(cin, cout, kernel, stride=1, group=1, bias=False, **kw):
    return nn.Conv2d(cin, cout, kernel, stride, pad_mode="pad", padding=kernel // 2, group=group, has_bias=bias, **kw)


def bn(channels, gamma_init="ones"):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.9, gamma_init=gamma_init)  # momentum 0.9 = PyTorch's 0.1


def he_conv(cin, cout, kernel, stride=1):
    """ResNet's convs: He init (fan_out), as in the PyTorch definition."""
    return conv(cin, cout, kernel, stride, weight_init=HeNormal(mode="fan_out", nonlinearity="relu"))


# --- ResNet-50 ---------------------------------------------------------------------------

class Bottleneck(nn.Cell):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * C.RESNET_EXPANSION
        self.conv1 = he_conv(cin, width, 1)
        self.bn1 = bn(width)
        self.conv2 = he_conv(width, width, 3, stride)
        self.bn2 = bn(width)
        self.conv3 = he_conv(width, cout, 1)
        self.bn3 = bn(cout, gamma_init="zeros")  # each block starts as the identity (Goyal et al. 2017)
        self.relu = nn.ReLU()
        self.project = stride != 1 or cin != cout
        if self.project:
            self.downsample = nn.SequentialCell([he_conv(cin, cout, 1, stride), bn(cout)])

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.project:
            return self.relu(out + self.downsample(x))
        return self.relu(out + x)


class ResNet(nn.Cell):
    def __init__(self, stages=C.RESNET50_STAGES, num_classes=1000):
        super().__init__()
        self.conv1 = he_conv(3, C.RESNET_STEM, 7, 2)
        self.bn1 = bn(C.RESNET_STEM)
        self.relu = nn.ReLU()
        # Zero padding equals -inf padding after a ReLU; unlike a padded MaxPool2d (which
        # MindSpore runs as MaxPool3DWithArgmax) it exports to ONNX.
        self.pool_pad = nn.Pad(((0, 0), (0, 0), (1, 1), (1, 1)))
        self.maxpool = nn.MaxPool2d(3, 2, pad_mode="valid")
        cin = C.RESNET_STEM
        layers = []
        for i, (blocks, width) in enumerate(stages):
            cells = []
            for b in range(blocks):
                cells.append(Bottleneck(cin, width, 2 if b == 0 and i > 0 else 1))
                cin = width * C.RESNET_EXPANSION
            layers.append(nn.SequentialCell(cells))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Dense(cin, num_classes)
        self.mean = ops.ReduceMean(keep_dims=False)

    def construct(self, x):
        x = self.maxpool(self.pool_pad(self.relu(self.bn1(self.conv1(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.mean(x, (2, 3)))


def resnet50(num_classes=1000):
    return ResNet(C.RESNET50_STAGES, num_classes)


# --- GhostNet ----------------------------------------------------------------------------

class SqueezeExcite(nn.Cell):
    def __init__(self, channels, ratio):
        super().__init__()
        reduced = C.make_divisible(channels * ratio, 4)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, has_bias=True)
        self.act1 = nn.ReLU()
        self.conv_expand = nn.Conv2d(reduced, channels, 1, has_bias=True)
        self.mean = ops.ReduceMean(keep_dims=True)

    def construct(self, x):
        s = self.conv_expand(self.act1(self.conv_reduce(self.mean(x, (2, 3)))))
        return x * (ops.relu6(s + 3.0) / 6.0)  # hard sigmoid


class ConvBnAct(nn.Cell):
    def __init__(self, cin, cout, kernel):
        super().__init__()
        self.conv = conv(cin, cout, kernel)
        self.bn1 = bn(cout)
        self.act1 = nn.ReLU()

    def construct(self, x):
        return self.act1(self.bn1(self.conv(x)))


class GhostModule(nn.Cell):
    def __init__(self, cin, out, relu=True):
        super().__init__()
        self.out = out
        init, new = C.ghost_channels(out)
        # slice only an odd ``out``: MindSpore's CPU StridedSlice copies even when it keeps
        # everything, and took a third of a GhostNet training step
        self.sliced = init + new > out
        act = [nn.ReLU()] if relu else []
        self.primary_conv = nn.SequentialCell([conv(cin, init, 1), bn(init)] + act)
        self.cheap_operation = nn.SequentialCell([conv(init, new, 3, group=init), bn(new)] + act)

    def construct(self, x):
        x1 = self.primary_conv(x)
        y = ops.concat((x1, self.cheap_operation(x1)), 1)
        return y[:, : self.out] if self.sliced else y


class GhostBottleneck(nn.Cell):
    def __init__(self, cin, mid, out, kernel, stride, se_ratio):
        super().__init__()
        self.ghost1 = GhostModule(cin, mid, relu=True)
        self.down = stride > 1
        if self.down:
            self.conv_dw = conv(mid, mid, kernel, stride, group=mid)
            self.bn_dw = bn(mid)
        self.has_se = bool(se_ratio)
        if self.has_se:
            self.se = SqueezeExcite(mid, se_ratio)
        self.ghost2 = GhostModule(mid, out, relu=False)
        self.identity = cin == out and stride == 1
        if not self.identity:
            self.shortcut = nn.SequentialCell([conv(cin, cin, kernel, stride, group=cin), bn(cin),
                                               conv(cin, out, 1), bn(out)])

    def construct(self, x):
        y = self.ghost1(x)
        if self.down:
            y = self.bn_dw(self.conv_dw(y))
        if self.has_se:
            y = self.se(y)
        y = self.ghost2(y)
        if self.identity:
            return y + x
        return y + self.shortcut(x)


class GhostNet(nn.Cell):
    def __init__(self, num_classes=1000, width=1.0, dropout=C.GHOSTNET_DROPOUT):
        super().__init__()
        cin = C.make_divisible(C.GHOSTNET_STEM * width, 4)
        self.conv_stem = conv(3, cin, 3, 2)
        self.bn1 = bn(cin)
        self.act1 = nn.ReLU()
        stages = []
        for rows in C.GHOSTNET_STAGES:
            blocks = []
            for k, exp, c, se, s in rows:
                out = C.make_divisible(c * width, 4)
                blocks.append(GhostBottleneck(cin, C.make_divisible(exp * width, 4), out, k, s, se))
                cin = out
            stages.append(nn.SequentialCell(blocks))
        head, feat = C.GHOSTNET_HEAD
        head = C.make_divisible(head * width, 4)
        stages.append(nn.SequentialCell([ConvBnAct(cin, head, 1)]))
        self.blocks = nn.SequentialCell(stages)
        self.conv_head = nn.Conv2d(head, feat, 1, has_bias=True)
        self.act2 = nn.ReLU()
        self.dropout = nn.Dropout(p=dropout)
        self.classifier = nn.Dense(feat, num_classes)
        self.mean = ops.ReduceMean(keep_dims=True)

    def construct(self, x):
        x = self.blocks(self.act1(self.bn1(self.conv_stem(x))))
        x = self.act2(self.conv_head(self.mean(x, (2, 3))))
        return self.classifier(self.dropout(ops.squeeze(x, (2, 3))))  # no Reshape: the batch stays free in ONNX


def ghostnet(num_classes=1000, width=1.0, dropout=C.GHOSTNET_DROPOUT):
    return GhostNet(num_classes, width, dropout)


# --- MCNN --------------------------------------------------------------------------------

class MCNN(nn.Cell):
    def __init__(self):
        super().__init__()
        branches = []
        for column in C.MCNN_COLUMNS:
            layers, cin = [], 1
            for j, (k, cout) in enumerate(column):
                layers += [conv(cin, cout, k, bias=True, weight_init=Normal(0.01), bias_init=Zero()), nn.ReLU()]
                if j < C.MCNN_POOL_AFTER:
                    layers.append(nn.MaxPool2d(2, 2))
                cin = cout
            branches.append(nn.SequentialCell(layers))
        self.branch1, self.branch2, self.branch3 = branches
        fused = sum(col[-1][1] for col in C.MCNN_COLUMNS)
        self.fuse = nn.SequentialCell([nn.Conv2d(fused, 1, 1, has_bias=True, weight_init=Normal(0.01),
                                                 bias_init=Zero()), nn.ReLU()])

    def construct(self, x):
        return self.fuse(ops.concat((self.branch1(x), self.branch2(x), self.branch3(x)), 1))


def mcnn():
    return MCNN()


BUILDERS = {"resnet50": resnet50, "ghostnet": ghostnet, "mcnn": mcnn}


def build(arch: str, num_classes: int, hp: dict | None = None):
    """The network of a card's ``arch``, configured by a job's hyper-parameters."""
    return BUILDERS[arch](*C.builder_args(arch, num_classes, hp or {}))
