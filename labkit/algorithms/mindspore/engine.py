"""The MindSpore hooks of the training loop (``labkit.algorithms.loop``), in graph mode: the
train step is compiled once (a few seconds), then runs as a graph. Under ``msrun``
(``--device-num N``) each worker trains on its own shard and a DistributedGradReducer averages
the gradients, so every worker ends with the same weights."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from labkit.algorithms import loop
from labkit.algorithms.mindspore.models import build
from labkit.algorithms.names import TORCH_TO_MS_BN, torch_to_mindspore
from labkit.cpu import cores

DEVICE_TARGET = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
# BatchNorm's statistics, which each data-parallel rank updates from its own shard
MOVING = (TORCH_TO_MS_BN["running_mean"], TORCH_TO_MS_BN["running_var"])


def load_pretrained(net: nn.Cell, path: str) -> tuple[list[str], list[str]]:
    """Load every parameter of the checkpoint (or of published weights, ``.npz`` under PyTorch's
    names: ``labkit.algorithms.pretrained``) whose name and shape match; the rest (a head with
    another number of classes) keeps its fresh initialisation."""
    if str(path).endswith(".npz"):
        with np.load(path, allow_pickle=False) as arrays:
            renamed = torch_to_mindspore({k: arrays[k] for k in arrays.files})
        state = {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in renamed.items()}
    else:  # checkpoints of earlier labkit versions name the trained parameters "opt.NAME"
        state = {k.removeprefix("opt."): v for k, v in ms.load_checkpoint(path).items()}
    own = net.parameters_dict()
    loaded = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    ms.load_param_into_net(net, loaded)
    return sorted(loaded), sorted(set(own) - set(loaded))



@functools.cache
def _kernel_threads(n: int) -> None:
    """MindSpore takes the CPU kernel thread count once per process (a second call raises):
    a process that trains twice (bench/) sets it the first time only."""
    ms.device_context.cpu.op_tuning.threads_num(n)


class TrainStep(nn.Cell):
    """One optimisation step, compiled as a graph. A Cell, not an ``ms.jit`` function: with
    the network and optimizer as attributes MindSpore's CPU backward kernels run about 1.5-2x
    faster (measured, see docs/BENCHMARKS.md)."""

    def __init__(self, grad_fn, opt, reducer, clip):
        # auto_prefix off: the network's parameters keep their own names (not "opt.conv1.weight"),
        # in checkpoints too, so another job or a conversion finds them by name
        super().__init__(auto_prefix=False)
        self.grad_fn, self.opt, self.reducer, self.clip = grad_fn, opt, reducer, clip

    def construct(self, x, y):
        (loss, pred), grads = self.grad_fn(x, y)
        if self.reducer is not None:
            grads = self.reducer(grads)
        if self.clip > 0:
            grads = ops.clip_by_global_norm(grads, self.clip)
        self.opt(grads)
        return loss, pred


class MeanOverRanks(nn.Cell):
    """Parameters replaced by their mean over the data-parallel ranks, as a graph: BatchNorm's
    moving statistics, which each rank updates from its own shard."""

    def __init__(self, params, world: int):
        super().__init__()
        self.params = ms.ParameterTuple(params)
        self.sum = ops.AllReduce()
        self.scale = 1.0 / world

    def construct(self):
        for p in self.params:
            ops.assign(p, self.sum(p) * self.scale)
        return self.scale


class MindSporeEngine(loop.Engine):
    name = "mindspore"
    drop_last = True  # graph mode compiles per input shape: a ragged last batch would compile twice

    def setup(self, device: str, seed: int) -> tuple[int, int, int]:
        ms.set_context(mode=ms.GRAPH_MODE)
        if ms.get_context("device_target") != DEVICE_TARGET[device]:  # set_device twice in a process fails
            ms.set_device(DEVICE_TARGET[device])
        ms.set_seed(seed)
        self.world, rank, local_rank, here = 1, 0, 0, 1
        self.frozen_norms, self.threads = [], None
        if int(os.environ.get("MS_WORKER_NUM", "1")) > 1:  # started by msrun
            from mindspore.communication import get_group_size, get_local_rank, get_local_rank_size, get_rank, init

            init()
            self.world, rank = get_group_size(), get_rank()
            local_rank, here = get_local_rank(), get_local_rank_size()
            ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
        if device == "cpu":
            # MindSpore starts 25 kernel threads per process whatever the machine: with two msrun
            # workers on 2 cores, half the CPU time was system time (docs/BENCHMARKS.md).
            self.threads = max(1, cores() // here)
            _kernel_threads(self.threads)
        return rank, self.world, local_rank

    def build(self, arch: str, num_classes: int, hp: dict) -> None:
        self.net = build(arch, num_classes, hp)

    def load_pretrained(self, path: str) -> tuple[list[str], list[str]]:
        return load_pretrained(self.net, path)

    def freeze(self, trainable: tuple[str, ...]) -> None:
        for p in self.net.get_parameters():
            if p.requires_grad and not p.name.startswith(trainable):
                p.requires_grad = False
        self.frozen_norms = [cell for name, cell in self.net.cells_and_names()
                             if isinstance(cell, nn.BatchNorm2d) and not f"{name}.".startswith(trainable)]

    def configure(self, hp: dict, counting: bool) -> None:
        net = self.net
        if counting and hp.get("optimizer", "adam") == "adam":
            self.opt = nn.Adam(net.trainable_params(), learning_rate=hp["lr"])
        else:
            # One parameter group, so that every parameter decays as in PyTorch's SGD: given a plain
            # weight_decay, MindSpore skips BatchNorm's gamma and beta, and the engines trained two
            # different recipes (docs/BENCHMARKS.md, "the same recipe in both engines").
            group = {"params": net.trainable_params(), "weight_decay": hp.get("weight_decay", 0.0)}
            self.opt = nn.Momentum([group], learning_rate=0.0, momentum=hp.get("momentum", 0.0))
        if counting:
            def forward(x, y):
                pred = net(x)
                return ((pred - y) ** 2).sum() / x.shape[0], pred
        else:
            loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")

            def forward(x, y):
                logits = net(x)
                return loss_fn(logits, y), logits

        grad_fn = ms.value_and_grad(forward, None, self.opt.parameters, has_aux=True)
        reducer = nn.DistributedGradReducer(self.opt.parameters) if self.world > 1 else None
        self.step = TrainStep(grad_fn, self.opt, reducer, float(hp.get("clip_grad") or 0.0))
        if self.world > 1:
            frozen = {id(p) for norm in self.frozen_norms for p in norm.get_parameters()}  # the same everywhere
            self.mean_statistics = MeanOverRanks([p for p in net.get_parameters() if p.name.endswith(MOVING)
                                                  and id(p) not in frozen], self.world)
        self.counting = counting

    def set_train(self, training: bool) -> None:
        self.net.set_train(training)
        for norm in self.frozen_norms:
            norm.set_train(False)

    def set_lr(self, lr: float) -> None:
        self.opt.learning_rate.set_data(ms.Tensor(lr, ms.float32))

    def train_step(self, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        loss, pred = self.step(ms.Tensor(x), ms.Tensor(target if self.counting else target.astype(np.int32)))
        return float(loss.asnumpy()), pred.asnumpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net(ms.Tensor(x)).asnumpy()

    def save(self, path: Path, epoch: int, best: float | None) -> None:
        seen, items = set(), []
        for p in [*self.net.get_parameters(), *self.opt.get_parameters()]:
            if p.name not in seen:
                seen.add(p.name)
                items.append({"name": p.name, "data": p})
        extra = {"epoch": epoch, "best": best}
        ms.save_checkpoint(items, str(path), append_dict={k: v for k, v in extra.items() if v is not None})

    def resume(self, path: str) -> tuple[int, float | None]:
        state = ms.load_checkpoint(path)
        ms.load_param_into_net(self.net, state)
        ms.load_param_into_net(self.opt, state)
        return int(state["epoch"].asnumpy()), float(state["best"].asnumpy()) if "best" in state else None

    def load_best(self, path: Path) -> int:
        state = ms.load_checkpoint(str(path))
        ms.load_param_into_net(self.net, state)
        return int(state["epoch"].asnumpy())

    def sync_statistics(self) -> None:
        self.mean_statistics()

    def weights(self) -> list[np.ndarray]:
        return [p.asnumpy() for p in self.net.get_parameters()]
