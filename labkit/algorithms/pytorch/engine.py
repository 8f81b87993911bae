"""The PyTorch hooks of the training loop (``labkit.algorithms.loop``). Under ``torchrun``
(``--device-num N``: gloo on CPU, nccl on GPU) each rank trains on its own shard and
DistributedDataParallel averages the gradients, so every rank ends with the same weights."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from labkit.algorithms import loop
from labkit.algorithms.configs import BF16, CHANNELS_LAST
from labkit.algorithms.pytorch.models import build
from labkit.cpu import cores


def load_pretrained(model: torch.nn.Module, path: str) -> tuple[list[str], list[str]]:
    """Load every tensor of the checkpoint (or of published weights, ``.npz``:
    ``labkit.algorithms.pretrained``) whose name and shape match; the rest (a head with another
    number of classes) keeps its fresh initialisation. Never runs pickled code."""
    if str(path).endswith(".npz"):
        with np.load(path, allow_pickle=False) as arrays:
            state = {k: torch.from_numpy(arrays[k]) for k in arrays.files}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state)
    own = model.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded), sorted(set(own) - set(loaded))


def contiguous(state):
    """A state dict (or an optimizer's, nested) with every tensor in the default layout: a
    checkpoint is the same whichever layout the job trained in."""
    if isinstance(state, torch.Tensor):
        return state.contiguous()
    if isinstance(state, dict):
        return {k: contiguous(v) for k, v in state.items()}
    return state


class TorchEngine(loop.Engine):
    name = "pytorch"

    def setup(self, device: str, seed: int) -> tuple[int, int, int]:
        self.world, self.frozen_norms = int(os.environ.get("WORLD_SIZE", "1")), []
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        if device == "gpu" and not torch.cuda.is_available():
            sys.exit("error: --device gpu but PyTorch sees no CUDA device")
        if device == "ascend":
            sys.exit("error: the PyTorch engine has no Ascend support here; use --engine mindspore")
        self.device = torch.device("cuda", local_rank) if device == "gpu" else torch.device("cpu")
        if self.world > 1:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(seed)
        # never more threads than this process's share of the cores (a container's quota, or
        # torchrun's processes on this machine splitting them); torch's own default counts the whole machine
        here = int(os.environ.get("LOCAL_WORLD_SIZE", self.world))
        torch.set_num_threads(min(torch.get_num_threads(), max(1, cores() // here)))
        self.threads = torch.get_num_threads()
        # The same run twice gives the same numbers (a test checks it): an op without a deterministic
        # kernel fails loudly instead of varying. On CPU with a fixed thread count this costs nothing.
        torch.use_deterministic_algorithms(True)
        self.compute_in({})
        return rank, self.world, local_rank

    def compute_in(self, hp: dict) -> None:
        """The layout and precision of ``hp`` (NCHW and FP32 unless it says otherwise)."""
        self.layout = torch.channels_last if hp.get("layout") == CHANNELS_LAST else torch.contiguous_format
        # bf16: autocast runs convolutions and matrix products in bfloat16; weights, optimizer and
        # the loss stay FP32 (torch's CPU autocast policy)
        self.autocast = torch.autocast(self.device.type, torch.bfloat16, enabled=hp.get("precision") == BF16)

    def build(self, arch: str, num_classes: int, hp: dict) -> None:
        self.compute_in(hp)
        self.model = build(arch, num_classes, hp).to(self.device, memory_format=self.layout)

    def load_pretrained(self, path: str) -> tuple[list[str], list[str]]:
        return load_pretrained(self.model, path)

    def freeze(self, trainable: tuple[str, ...]) -> None:
        for name, p in self.model.named_parameters():
            p.requires_grad = name.startswith(trainable)
        self.frozen_norms = [m for name, m in self.model.named_modules()
                             if isinstance(m, torch.nn.BatchNorm2d) and not f"{name}.".startswith(trainable)]

    def configure(self, hp: dict, counting: bool) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if counting and hp.get("optimizer", "adam") == "adam":
            self.opt = torch.optim.Adam(params, lr=hp["lr"])
        else:
            self.opt = torch.optim.SGD(params, lr=0.0, momentum=hp.get("momentum", 0.0),
                                       weight_decay=hp.get("weight_decay", 0.0))
        self.counting, self.clip = counting, hp.get("clip_grad")
        self.net = torch.nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model

    def set_train(self, training: bool) -> None:
        self.model.train(training)
        for norm in self.frozen_norms:
            norm.eval()

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def _input(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(self.device).contiguous(memory_format=self.layout)

    def train_step(self, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        x, target = self._input(x), torch.from_numpy(target).to(self.device)
        with self.autocast:
            pred = self.net(x)
            if self.counting:
                loss = F.mse_loss(pred, target, reduction="sum") / len(x)
            else:
                loss = F.cross_entropy(pred, target)
        self.opt.zero_grad()
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        return loss.item(), pred.detach().float().cpu().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad(), self.autocast:
            return self.model(self._input(x)).float().cpu().numpy()

    def save(self, path: Path, epoch: int, best: float | None) -> None:
        torch.save({"model": contiguous(self.model.state_dict()), "optimizer": contiguous(self.opt.state_dict()),
                    "epoch": epoch, "best": best}, path)

    def resume(self, path: str) -> tuple[int, float | None]:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        for buffers in self.opt.state.values():  # momentum and Adam's moments in their parameters' layout
            for name, value in buffers.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    buffers[name] = value.contiguous(memory_format=self.layout)
        return state["epoch"], state["best"]

    def load_best(self, path: Path) -> int:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        return state["epoch"]

    def sync_statistics(self) -> None:
        frozen = {id(b) for norm in self.frozen_norms for b in norm.buffers()}  # the same on every rank already
        for buf in self.model.buffers():
            if buf.is_floating_point() and id(buf) not in frozen:  # not num_batches_tracked, the same count everywhere
                dist.all_reduce(buf)
                buf /= self.world

    def weights(self) -> list[np.ndarray]:
        return [t.detach().cpu().numpy() for t in self.model.state_dict().values() if t.is_floating_point()]

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()
