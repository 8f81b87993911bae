"""The published architectures as tables (docs/reference/architectures.md); the
engine modules build from these, so both engines build the same network."""
from __future__ import annotations

import math

# ResNet-50 (He et al. 2016), the "v1.5" variant: stride on the 3x3 conv of a block.
# (blocks, width) per stage; bottleneck expansion 4.
RESNET50_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
RESNET_EXPANSION = 4
RESNET_STEM = 64

# GhostNet (Han et al. CVPR 2020): per stage, rows of [kernel, expansion, out, SE ratio, stride].
GHOSTNET_STAGES = (
    ((3, 16, 16, 0, 1),),
    ((3, 48, 24, 0, 2), (3, 72, 24, 0, 1)),
    ((5, 72, 40, 0.25, 2), (5, 120, 40, 0.25, 1)),
    ((3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1),
     (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1),
     (5, 960, 160, 0.25, 1)),
)
GHOSTNET_STEM = 16
GHOSTNET_HEAD = (960, 1280)  # the 1x1 ConvBnAct after the stages, then the 1x1 conv with bias
GHOSTNET_DROPOUT = 0.2

# MCNN (Zhang et al. CVPR 2016): three columns of (kernel, out channels), a 2x2 max-pool after
# the first two convs of each; fused by a 1x1 conv to the density map.
MCNN_COLUMNS = (
    ((9, 16), (7, 32), (7, 16), (7, 8)),
    ((7, 20), (5, 40), (5, 20), (5, 10)),
    ((5, 24), (3, 48), (3, 24), (3, 12)),
)
MCNN_POOL_AFTER = 2


# What trains with ``train_layers`` (transfer learning from pre-trained weights): the head alone
# (feature extraction: the backbone frozen, its BatchNorm statistics too), or the last stage and
# the head (fine-tuning); ``all`` trains everything. Parameter-name prefixes, the same in both engines.
HEADS = {"resnet50": ("fc.",), "ghostnet": ("conv_head.", "classifier.")}
LAST_STAGES = {"resnet50": ("layer4.",), "ghostnet": (f"blocks.{len(GHOSTNET_STAGES) - 1}.", f"blocks.{len(GHOSTNET_STAGES)}.")}
TRAIN_LAYERS = ("all", "last", "head")

# How a job computes (the same network and weights either way): the activations' memory layout
# and the arithmetic's precision; "auto" is decided per machine (labkit.train.speedups).
AUTO = "auto"
NCHW, CHANNELS_LAST = "nchw", "channels_last"
FP32, BF16 = "fp32", "bf16"
LAYOUTS = (AUTO, NCHW, CHANNELS_LAST)
PRECISIONS = (AUTO, FP32, BF16)
# What each engine computes in on a CPU, its default first. MindSpore 2.7's CPU kernels take NCHW
# only (its Conv2d and BatchNorm2d accept NHWC on GPU alone); labkit trains MindSpore in FP32.
ENGINE_LAYOUTS = {"pytorch": (NCHW, CHANNELS_LAST), "mindspore": (NCHW,)}
ENGINE_PRECISIONS = {"pytorch": (FP32, BF16), "mindspore": (FP32,)}


def not_offered(engine: str, hp: dict) -> str | None:
    """Why ``engine`` cannot compute in ``hp``'s layout or precision, or None when it can."""
    for name, offered in (("layout", ENGINE_LAYOUTS[engine]), ("precision", ENGINE_PRECISIONS[engine])):
        if hp.get(name, AUTO) not in (AUTO, *offered):
            return f"labkit's {engine} engine computes in {name} {' or '.join(offered)}, not {hp[name]}"
    return None


def trainable(arch: str, train_layers: str) -> tuple[str, ...] | None:
    """The name prefixes of the parameters that train, or None: all of them."""
    if train_layers == "all" or arch not in HEADS:
        return None
    return HEADS[arch] + (LAST_STAGES[arch] if train_layers == "last" else ())


def make_divisible(v: float, divisor: int = 4, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%
    (the helper of the GhostNet and MobileNet reference code)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def ghost_channels(out: int) -> tuple[int, int]:
    """A ghost module's (primary, cheap) channels at ratio 2: ceil(out/2) each, sliced to out."""
    init = math.ceil(out / 2)
    return init, init


def builder_args(arch: str, num_classes: int, hp: dict) -> tuple:
    """The arguments of ``arch``'s builder (``BUILDERS`` in either engine's models module)
    from a job's hyper-parameters: ``width`` and ``drop`` are GhostNet's, MCNN has no head."""
    if arch == "mcnn":
        return ()
    if arch == "ghostnet":
        return num_classes, hp.get("width", 1.0), hp.get("drop", GHOSTNET_DROPOUT)
    return (num_classes,)
