"""The built-in algorithm cards (the seeds' "AI Gallery"): what each algorithm is, which
engines run it, and its hyper-parameters as a table. The seeds' tables are the source;
profiles change defaults, never names."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from labkit import profiles
from labkit.algorithms.configs import LAYOUTS, PRECISIONS, TRAIN_LAYERS
from labkit.algorithms.pretrained import CHOICES as PRETRAINED, WEIGHTS
from labkit.errors import LabkitError
from labkit.tasks import CLASSIFICATION, COUNTING

ALGORITHMS_DIR = Path(__file__).resolve().parent.parent / "algorithms"
TYPES = {"int": int, "float": float, "str": str, "bool": None}


@dataclass(frozen=True)
class HyperParameter:
    name: str
    type: str  # int | float | str | bool
    default: object
    description: str
    required: bool = False
    range: tuple | None = None  # inclusive (min, max) for numbers
    choices: tuple | None = None

    def coerce(self, value):
        """``value`` (often a string from the command line) as this parameter's type, checked."""
        try:
            if self.type == "bool":
                if isinstance(value, bool):
                    out = value
                elif str(value).lower() in ("true", "1", "yes"):
                    out = True
                elif str(value).lower() in ("false", "0", "no"):
                    out = False
                else:
                    raise ValueError
            else:
                out = TYPES[self.type](value)
        except (TypeError, ValueError):
            raise LabkitError(f"hyper-parameter {self.name} must be {self.type}, got {value!r}",
                              f"{self.name}: {self.description}") from None
        if self.range and not self.range[0] <= out <= self.range[1]:
            raise LabkitError(f"hyper-parameter {self.name}={out} is out of range [{self.range[0]}, {self.range[1]}]",
                              f"{self.name}: {self.description}")
        if self.choices and out not in self.choices:
            raise LabkitError(f"hyper-parameter {self.name}={out!r} is not one of {', '.join(map(str, self.choices))}",
                              f"{self.name}: {self.description}")
        return out


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    task: str
    engines: tuple[str, ...]
    arch: str
    input_size: int
    description: str
    seed: str
    hyper: tuple[HyperParameter, ...]
    profile_defaults: dict = field(default_factory=dict)
    transfer: dict = field(default_factory=dict)  # step ("features", "fine_tune") -> profile -> values
    version: str = "1.0.0"
    custom: bool = False
    code_dir: str | None = None
    boot_file: str | None = None

    def boot(self, engine: str) -> Path:
        """The script a job runs: ``python BOOT --data_url ... --train_url ... --k=v``."""
        if self.custom:
            return Path(self.code_dir) / self.boot_file
        return ALGORITHMS_DIR / engine / "train.py"

    def fixed_args(self, device: str) -> dict:
        """Arguments the built-in boot files need besides the hyper-parameters (a custom
        algorithm gets only the convention's --data_url, --train_url and its hyper-parameters)."""
        return {} if self.custom else {"algorithm": self.name, "device": device}

    @property
    def weights(self) -> dict:
        """The published weights a job can start from (``--hp pretrained=imagenet``): what, from
        where, under which terms."""
        w = WEIGHTS.get(self.arch) if not self.custom else None
        if w is None:
            return {}
        return {"imagenet": {"title": w.title, "top1": w.top1, "url": w.remote.url, "sha256": w.remote.sha256,
                             "file": w.remote.filename, "licence": w.remote.licence, "source": w.remote.source}}

    def defaults(self, profile: str) -> dict:
        base = {h.name: h.default for h in self.hyper}
        from_env = {k: v for k, v in profiles.env_hyper().items() if k in base}
        return {**base, **self.profile_defaults.get(profile, {}), **from_env}

    def resolve(self, given: dict, profile: str) -> dict:
        """The full hyper-parameter set of a job: the profile's defaults, then ``given``,
        every value checked against the table. Unknown names are an error."""
        known = {h.name: h for h in self.hyper}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise LabkitError(f"{self.name} has no hyper-parameter {', '.join(unknown)}",
                              f"known: {', '.join(known)} (labkit algo show {self.name})")
        values = self.defaults(profile)
        if given.get("pretrained", values.get("pretrained")) == "imagenet":
            values.update(self.transfer_step("features", profile))
        values.update(given)
        resolved = {}
        for name, h in known.items():
            if values.get(name) is None:
                if h.required:
                    raise LabkitError(f"hyper-parameter {name} is required", f"pass --hp {name}=VALUE: {h.description}")
                continue
            resolved[name] = h.coerce(values[name])
        return resolved

    def transfer_step(self, step: str, profile: str) -> dict:
        """The recipe of one step of the transfer lesson from published weights: ``features``
        (the head alone on the frozen backbone; what ``pretrained=imagenet`` defaults to) or
        ``fine_tune`` (the last stage too, from the first step's job, at a lower rate)."""
        values = self.transfer.get(step, {})
        return {**values.get("all", {}), **values.get(profile, {})}

    def table(self, profile: str) -> list[dict]:
        defaults = self.defaults(profile)
        return [{"name": h.name, "type": h.type, "default": defaults.get(h.name), "required": h.required,
                 "range": f"[{h.range[0]}, {h.range[1]}]" if h.range else ("|".join(map(str, h.choices)) if h.choices else ""),
                 "description": h.description} for h in self.hyper]


def H(name, type_, default, description, **kw) -> HyperParameter:
    return HyperParameter(name, type_, default, description, **kw)


# Ends every kind of schedule early (its rates unchanged): to time an epoch at the full profile's
# sizes, or to try a long recipe. LABKIT_MAX_EPOCHS sets its default (profiles.env_hyper).
MAX_EPOCHS = H("max_epochs", "int", None, "stop after this many epochs; the learning rates stay those of the "
               "whole schedule (to time an epoch or try a recipe)", range=(1, 100000))

# How the job computes, not what it learns: each engine's choices on this machine
# (labkit.train.speedups decides "auto" from the CPU and the machine's calibration).
LAYOUT = H("layout", "str", "auto", "memory layout of the activations: nchw, or channels_last (PyTorch; "
           "MindSpore's CPU kernels take NCHW only); auto: the faster one on this machine, as its time "
           "calibration measured", choices=LAYOUTS)
PRECISION = H("precision", "str", "auto", "fp32; bf16: mixed precision (bfloat16 arithmetic, FP32 weights), only on "
              "a CPU that computes BF16 natively (AVX-512 BF16, AMX-BF16); auto: bf16 where it is native and measured "
              "to keep this model's accuracy, else fp32", choices=PRECISIONS)

COMMON = (
    H("batch_size", "int", 32, "images per step (per device)", range=(1, 4096)),
    H("image_size", "int", 224, "input height and width in pixels", range=(32, 2048)),
    H("num_classes", "int", None, "classes of the head; default: the dataset's. A different count "
      "re-initialises the head (transfer learning)", range=(1, 100000)),
    H("pretrained", "str", "none", "imagenet: start from the published ImageNet weights (downloaded once, "
      "checked; see the card's weights); none: from scratch", choices=PRETRAINED),
    H("pretrained_weight", "str", None, "a job name (its best checkpoint) or a checkpoint file to start from"),
    H("train_layers", "str", "all", "what trains: all; last (the last stage and the head: fine-tuning); head "
      "(the head alone on a frozen backbone: feature extraction)", choices=TRAIN_LAYERS),
    H("seed", "int", 0, "random seed of initialisation, shuffling and augmentation", range=(0, 2**31 - 1)),
    MAX_EPOCHS, LAYOUT, PRECISION,
)

RESNET_HYPER = (
    H("learning_rate_strategy", "str", "20:0.001", "epochs:lr pairs: '20:0.001' = 20 epochs at 0.001; "
      "'10:0.01,20:0.001' = epochs 1-10 at 0.01, 11-20 at 0.001"),
    H("momentum", "float", 0.9, "SGD momentum", range=(0.0, 1.0)),
    H("weight_decay", "float", 1e-4, "L2 weight decay", range=(0.0, 1.0)),
) + COMMON

GHOSTNET_HYPER = (
    H("epochs", "int", 40, "training epochs", range=(1, 10000)),
    H("lr", "float", 0.4, "peak learning rate (seed 003: 0.4 for 8 devices x batch 128)", range=(0.0, 10.0)),
    H("sched", "str", "cosine", "learning-rate schedule after warm-up", choices=("cosine", "step", "constant")),
    H("warmup_epochs", "int", 4, "epochs of linear warm-up from warmup_lr", range=(0, 1000)),
    H("warmup_lr", "float", 1e-6, "learning rate at the start of warm-up", range=(0.0, 10.0)),
    H("momentum", "float", 0.9, "SGD momentum", range=(0.0, 1.0)),
    H("weight_decay", "float", 4e-5, "L2 weight decay", range=(0.0, 1.0)),
    H("drop", "float", 0.2, "dropout before the classifier", range=(0.0, 0.99)),
    H("clip_grad", "float", 2.0, "clip the gradient norm to this (0: no clipping)", range=(0.0, 1000.0)),
    H("width", "float", 1.0, "width multiplier (1.0x: 5.2M parameters; 1.3x: the seed's 75.7% model)", range=(0.1, 4.0)),
) + COMMON

MCNN_HYPER = (
    H("epoch_size", "int", 800, "training epochs", range=(1, 100000)),
    H("lr", "float", 0.000028, "learning rate (the model zoo's, for 8 devices; 1e-5 on one), x0.1 at 50% "
      "and x0.01 at 75% of the steps", range=(0.0, 1.0)),
    H("optimizer", "str", "adam", "adam (the model-zoo script) or sgd", choices=("adam", "sgd")),
    H("momentum", "float", 0.0, "SGD momentum (the seed sheet's 0.0); used with optimizer=sgd", range=(0.0, 1.0)),
    H("batch_size", "int", 1, "images per step (per device)", range=(1, 1024)),
    H("image_size", "int", 256, "training images are resized to this square size (seed: 256 train, 1024 test)",
      range=(32, 2048)),
    H("pretrained_weight", "str", None, "a job name (its best checkpoint) or a checkpoint file to start from"),
    H("seed", "int", 0, "random seed", range=(0, 2**31 - 1)),
    MAX_EPOCHS, LAYOUT, PRECISION,
)

# Profiles: quick (CI, about a minute), workshop (minutes on a laptop CPU, clearly above chance),
# full (the seeds' values, which the tables above already hold).
RESNET_PROFILES = {
    "quick": {"learning_rate_strategy": "2:0.01", "batch_size": 16, "image_size": 64},
    # One warm-up epoch, then a high rate and a tenfold drop; weight decay 5e-4 rather than 1e-4
    # (on 800 images: PyTorch 81-85% over 3 seeds with and without AVX-512, against 77-80.5%;
    # measured: docs/BENCHMARKS.md).
    "workshop": {"learning_rate_strategy": "1:0.004,14:0.02,18:0.002", "weight_decay": 5e-4, "batch_size": 16,
                 "image_size": 64},
}
GHOSTNET_PROFILES = {
    "quick": {"epochs": 2, "lr": 0.05, "warmup_epochs": 0, "batch_size": 16, "image_size": 64},
    # 10 epochs: the transfer lab trains three GhostNet jobs in its 10-minute slot
    "workshop": {"epochs": 10, "lr": 0.1, "warmup_epochs": 2, "batch_size": 32, "image_size": 64},
    "full": {"image_size": 240},
}
MCNN_PROFILES = {
    "quick": {"epoch_size": 2, "lr": 1e-4, "batch_size": 4, "image_size": 128},
    "workshop": {"epoch_size": 16, "lr": 3e-4, "batch_size": 4, "image_size": 256},
}

# The two-step transfer lesson from ImageNet weights: a frozen backbone trains its head fast and
# well at a high rate; then the last stage joins, at a tenth of it, for a few epochs.
# In the workshop profile, 3 + 2 epochs at the profile's 64 px: the size at which both steps on the
# real photos leave a 2-core AVX2 laptop time for the lab's other stages (bench/bench_transfer.py:
# the README's table).
RESNET_TRANSFER = {
    "features": {"all": {"train_layers": "head", "learning_rate_strategy": "5:0.01"},
                 "workshop": {"learning_rate_strategy": "3:0.01"}, "quick": {"learning_rate_strategy": "1:0.01"}},
    "fine_tune": {"all": {"train_layers": "last", "learning_rate_strategy": "3:0.001"},
                  "workshop": {"learning_rate_strategy": "2:0.001"}, "quick": {"learning_rate_strategy": "1:0.001"}},
}
GHOSTNET_TRANSFER = {
    "features": {"all": {"train_layers": "head", "epochs": 5, "lr": 0.05, "warmup_epochs": 0},
                 "workshop": {"epochs": 3}, "quick": {"epochs": 1}},
    "fine_tune": {"all": {"train_layers": "last", "epochs": 3, "lr": 0.005, "warmup_epochs": 0},
                  "workshop": {"epochs": 2}, "quick": {"epochs": 1}},
}

BUILTIN = (
    Card("ResNet50", "ResNet-50 image classification", CLASSIFICATION, ("mindspore", "pytorch"), "resnet50", 224,
         "ResNet-50 v1.5 (He et al. 2016): bottleneck blocks [3, 4, 6, 3], 25.6M parameters. Seeds 000 "
         "(MindSpore, flowers) and 004 (food, learning_rate_strategy=20:0.001).",
         "000_65292d8babe77ad1.txt", RESNET_HYPER, RESNET_PROFILES, transfer=RESNET_TRANSFER),
    Card("ResNet_v1_50", "ResNet_v1_50 image classification (CPU/GPU)", CLASSIFICATION, ("pytorch", "mindspore"),
         "resnet50", 224, "The TF-slim name of the same ResNet-50 family, trained on CPU or GPU (seed 001).",
         "001_c1195e4bdec6546c.txt", RESNET_HYPER, RESNET_PROFILES, transfer=RESNET_TRANSFER),
    Card("GhostNet", "GhostNet image classification", CLASSIFICATION, ("pytorch", "mindspore"), "ghostnet", 240,
         "GhostNet (Han et al. CVPR 2020): ghost modules make half the features with cheap depthwise convs; "
         "5.2M parameters at 1.0x. Seed 003: 240x240 inputs, cosine schedule, transfer learning.",
         "003_58db6964bdd76708.txt", GHOSTNET_HYPER, GHOSTNET_PROFILES, transfer=GHOSTNET_TRANSFER),
    Card("MCNN", "MCNN crowd counting", COUNTING, ("mindspore", "pytorch"), "mcnn", 256,
         "Multi-column CNN (Zhang et al. CVPR 2016): three columns of 9/7/5-px receptive fields predict a "
         "density map a quarter of the input's size; the count is its sum. 128K parameters. Seed 002.",
         "002_e165dd5d1c4161cb.txt", MCNN_HYPER, MCNN_PROFILES),
)
