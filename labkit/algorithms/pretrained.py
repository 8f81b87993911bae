"""Published ImageNet weights for the catalog's models (``--hp pretrained=imagenet``).

Each is downloaded once per machine (``labkit.downloads``: checked, cached, a room's mirror),
then renamed to labkit's parameter names and kept beside it as NumPy arrays (``.npz``), the
form both engines load (``load_pretrained``): nothing in it can run code. The renaming is
exact or refused: every published tensor must land on a labkit tensor of the same shape and
every labkit tensor must be covered, or the weights are not the network they claim to be.
The 1000-class head loads only into a 1000-class network; a lab's head starts fresh.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labkit.algorithms import configs as C
from labkit.downloads import Remote, fetch as download
from labkit.errors import LabkitError

CHOICES = ("none", "imagenet")
MAPPING_VERSION = 1  # in the converted file's name: a change to the renaming (or the networks) converts again


def same_names(name: str) -> str:
    return name


def ghostnet_reference_names(name: str) -> str:
    """The reference code (Huawei's, and timm's after it) splits each of the paper's stages in two
    ``blocks`` entries, its first (down-sampling) block and the rest; labkit keeps the paper's
    five stages (``configs.GHOSTNET_STAGES``), then the head's ConvBnAct."""
    match = re.match(r"blocks\.(\d+)\.(\d+)\.(.*)", name)
    if not match:
        return name
    group, index, rest = int(match[1]), int(match[2]), match[3]
    return f"blocks.{_GHOSTNET_GROUPS[group][0]}.{_GHOSTNET_GROUPS[group][1] + index}.{rest}"


# reference group -> (labkit stage, index of its first block there)
_GHOSTNET_GROUPS = [pair for stage, rows in enumerate(C.GHOSTNET_STAGES)
                    for pair in ([(stage, 0)] if len(rows) == 1 else [(stage, 0), (stage, 1)])]
_GHOSTNET_GROUPS.append((len(C.GHOSTNET_STAGES), 0))  # the ConvBnAct after the stages


@dataclass(frozen=True)
class Published:
    """ImageNet weights of one architecture, as their publisher distributes them."""
    title: str
    remote: Remote
    top1: float                    # ImageNet top-1 (%), as published
    rename: Callable[[str], str]   # a published tensor name -> labkit's
    needs: dict                    # hyper-parameters the weights fix (GhostNet's width)


WEIGHTS = {
    # torchvision's IMAGENET1K_V2 (its default). torchvision checks the sha256 prefix in the file
    # name; the full digest and size were measured by others and agree with that prefix.
    "resnet50": Published(
        "torchvision ResNet-50 IMAGENET1K_V2",
        Remote("https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
               "11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca", 102540417,
               "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms limit use to research and teaching",
               "PyTorch (torchvision.models.ResNet50_Weights)"),
        80.858, same_names, {}),
    # timm's ghostnet_100.in1k: Huawei's own GhostNet 1.0x weights, with the reference code's names.
    "ghostnet": Published(
        "timm ghostnet_100.in1k (Huawei's GhostNet 1.0x)",
        Remote("https://huggingface.co/timm/ghostnet_100.in1k/resolve/main/pytorch_model.bin",
               "1dfc1e5e737afceb3bc984112bb8ff3498dd2483df33e8975ad852bca7e1dce3", None,
               "Apache-2.0 (Huawei Noah's Ark Lab, via timm); trained on ImageNet-1k",
               "Hugging Face timm/ghostnet_100.in1k", name="ghostnet_100.in1k-1dfc1e5e.bin"),
        73.958, ghostnet_reference_names, {"width": 1.0}),
}


def published(arch: str) -> Published:
    if arch not in WEIGHTS:
        raise LabkitError(f"no published ImageNet weights for {arch} in labkit",
                          f"pretrained=imagenet is for {', '.join(WEIGHTS)}; use pretrained=none")
    return WEIGHTS[arch]


def check_hyper(arch: str, hp: dict) -> None:
    """The weights fit only the network they were trained as (GhostNet at width 1.0)."""
    for key, value in published(arch).needs.items():
        if hp.get(key, value) != value:
            raise LabkitError(f"the ImageNet weights of {arch} are for {key}={value}, this job has {key}={hp[key]}",
                              f"leave {key} at {value}, or train from scratch (pretrained=none)")


def labkit_state(arch: str, state: dict) -> dict:
    """A published state dict (NumPy values) under labkit's names; an error naming every tensor
    that has no place, or no value, or the wrong shape."""
    from labkit.algorithms.pytorch.models import build

    rename = published(arch).rename
    ours = {k: tuple(v.shape) for k, v in build(arch, 1000, {}).state_dict().items()}
    renamed = {rename(k): v for k, v in state.items()}
    problems = ([f"{k}: no such tensor in labkit's {arch}" for k in sorted(set(renamed) - set(ours))]
                + [f"{k}: missing" for k in sorted(set(ours) - set(renamed))]
                + [f"{k}: shape {tuple(renamed[k].shape)}, labkit's {ours[k]}" for k in sorted(set(ours) & set(renamed))
                   if tuple(renamed[k].shape) != ours[k]])
    if problems:
        raise LabkitError(f"the published {arch} weights do not match labkit's network ({len(problems)} tensors): "
                          + "; ".join(problems[:8]), "report this: the mapping in labkit.algorithms.pretrained is wrong")
    return renamed


def converted_path(arch: str) -> Path:
    """Where the renamed weights of ``arch`` are kept: beside the download, named by its checksum."""
    from labkit.downloads import cached_path

    remote = published(arch).remote
    return cached_path(remote).with_name(f"{arch}-imagenet-{remote.sha256[:8]}-v{MAPPING_VERSION}.labkit.npz")


def fetch(arch: str, mirror: str | None = None, log=print) -> Path:
    """The ImageNet weights of ``arch`` under labkit's names (``.npz``): downloaded, checked and
    renamed the first time on this machine, read from the cache afterwards."""
    import os
    import uuid

    import numpy as np

    weights, out = published(arch), converted_path(arch)
    if out.exists():
        return out
    source = download(weights.remote, mirror, log)
    import torch

    state = torch.load(source, map_location="cpu", weights_only=True)  # tensors only: never runs pickled code
    state = state.get("state_dict", state)
    arrays = labkit_state(arch, {k: v.numpy() for k, v in state.items()})
    partial = out.with_name(f"{out.name}.{uuid.uuid4().hex}.part")  # two jobs starting at once write their own
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, out)
    log(f"{weights.title}: {len(arrays)} tensors renamed to labkit's {arch}")
    return out
