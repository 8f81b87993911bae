"""The built-in MindSpore training script (a boot file in the ModelArts convention):

    python train.py --data_url VERSION_DIR --train_url OUT_DIR --algorithm ResNet50 --batch_size=32 ...

Graph mode: the train step is compiled once (a few seconds), then runs as a graph. Under
``msrun`` (``--device-num N``) each worker trains on its own shard and gradients are
averaged by a DistributedGradReducer, so every worker ends with the same weights.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from labkit.algorithms import common
from labkit.algorithms.mindspore.models import BUILDERS

EXT = ".ckpt"
DEVICE_TARGET = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}


def build(arch: str, num_classes: int, hp: dict) -> nn.Cell:
    if arch == "mcnn":
        return BUILDERS[arch]()
    if arch == "ghostnet":
        from labkit.algorithms.mindspore.models import GhostNet

        return GhostNet(num_classes, hp.get("width", 1.0), hp.get("drop", 0.2))
    return BUILDERS[arch](num_classes)


def load_pretrained(net: nn.Cell, path: str) -> tuple[list[str], list[str]]:
    """Load every parameter whose name and shape match; the rest (a head with another
    number of classes) keeps its fresh initialisation."""
    state = ms.load_checkpoint(path)
    own = net.parameters_dict()
    loaded = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    ms.load_param_into_net(net, loaded)
    return sorted(loaded), sorted(set(own) - set(loaded))


def save(path: Path, params: list, **extra) -> None:
    seen, items = set(), []
    for p in params:
        if p.name not in seen:
            seen.add(p.name)
            items.append({"name": p.name, "data": p})
    ms.save_checkpoint(items, str(path), append_dict={k: v for k, v in extra.items() if v is not None})


class TrainStep(nn.Cell):
    """One optimisation step, compiled as a graph. A Cell, not an ``ms.jit`` function: with
    the network and optimizer as attributes MindSpore's CPU backward kernels run about 1.5-2x
    faster (measured, see docs/BENCHMARKS.md)."""

    def __init__(self, grad_fn, opt, reducer, clip):
        super().__init__()
        self.grad_fn, self.opt, self.reducer, self.clip = grad_fn, opt, reducer, clip

    def construct(self, x, y):
        (loss, pred), grads = self.grad_fn(x, y)
        if self.reducer is not None:
            grads = self.reducer(grads)
        if self.clip > 0:
            grads = ops.clip_by_global_norm(grads, self.clip)
        self.opt(grads)
        return loss, pred


def main(argv=None) -> int:
    args, raw = common.parse_args(argv)
    hp = common.hyper_parameters(args.algorithm, raw)
    from labkit.catalog import card

    spec = card(args.algorithm)
    counting = spec.task == "crowd_counting"
    ms.set_context(mode=ms.GRAPH_MODE)
    if ms.get_context("device_target") != DEVICE_TARGET[args.device]:  # set_device twice in a process fails
        ms.set_device(DEVICE_TARGET[args.device])
    ms.set_seed(hp["seed"])
    world, rank = 1, 0
    if int(os.environ.get("MS_WORKER_NUM", "1")) > 1:  # started by msrun
        from mindspore.communication import get_group_size, get_rank, init

        init()
        world, rank = get_group_size(), get_rank()
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    if args.device == "cpu":
        # MindSpore starts 25 kernel threads per process whatever the machine: with two msrun
        # workers on 2 cores, half the CPU time was system time (docs/BENCHMARKS.md).
        ms.device_context.cpu.op_tuning.threads_num(max(1, (os.cpu_count() or 1) // world))
    rng = np.random.default_rng([hp["seed"], rank])
    out = Path(args.train_url)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    x_train, t_train, x_val, t_val, names = common.load_splits(args.data_url, spec.task, hp["image_size"])
    mine = common.shard(len(x_train), rank, world)
    num_classes = hp.get("num_classes") or len(names)
    net = build(spec.arch, num_classes, hp)
    if hp.get("pretrained_weight"):
        common.report_pretrained(hp["pretrained_weight"], *load_pretrained(net, hp["pretrained_weight"]))

    if counting and hp.get("optimizer", "adam") == "adam":
        opt = nn.Adam(net.trainable_params(), learning_rate=hp["lr"])
    else:
        opt = nn.Momentum(net.trainable_params(), learning_rate=0.0, momentum=hp.get("momentum", 0.0),
                          weight_decay=hp.get("weight_decay", 0.0))
    schedule = common.Schedule(hp)
    start, best = 0, None
    if args.resume:
        state = ms.load_checkpoint(args.resume)
        ms.load_param_into_net(net, state)
        ms.load_param_into_net(opt, state)
        start, best = int(state["epoch"].asnumpy()), float(state["best"].asnumpy()) if "best" in state else None
        print(f"resumed from {args.resume} after epoch {start}", flush=True)

    if counting:
        def forward(x, y):
            pred = net(x)
            return ((pred - y) ** 2).sum() / x.shape[0], pred
    else:
        loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")

        def forward(x, y):
            logits = net(x)
            return loss_fn(logits, y), logits

    grad_fn = ms.value_and_grad(forward, None, opt.parameters, has_aux=True)
    reducer = nn.DistributedGradReducer(opt.parameters) if world > 1 else None
    train_step = TrainStep(grad_fn, opt, reducer, float(hp.get("clip_grad") or 0.0))

    log = common.RunLog(out, ["loss", "val_mae", "val_rmse"] if counting else ["loss", "train_acc", "val_acc"])
    common.emit("start", epochs=schedule.epochs, start_epoch=start, rank=rank, world=world,
                train=len(x_train), val=len(x_val))

    def evaluate():
        net.set_train(False)
        outs = [net(ms.Tensor(common.normalize_gray(x_val[idx]) if counting else common.normalize(x_val[idx]))).asnumpy()
                for idx in common.batches(len(x_val), 64, None)]
        return np.concatenate(outs) if outs else np.zeros((0, num_classes))

    for epoch in range(start, schedule.epochs):
        net.set_train(True)
        steps = max(1, -(-len(mine) // hp["batch_size"]))
        total, correct, seen = 0.0, 0, 0
        # Graph mode compiles per input shape: drop a ragged last batch rather than compile twice.
        for i, idx in enumerate(common.batches(len(mine), hp["batch_size"], rng, drop_last=True)):
            idx = mine[idx]
            lr = schedule(epoch + i / steps)
            opt.learning_rate.set_data(ms.Tensor(lr, ms.float32))
            if counting:
                xb, yb = common.normalize_gray(x_train[idx]), t_train[idx][:, None].astype(np.float32)
            else:
                xb, yb = common.normalize(common.augment(x_train[idx], rng)), t_train[idx].astype(np.int32)
            loss, pred = train_step(ms.Tensor(xb), ms.Tensor(yb))
            if not counting:
                correct += int((pred.asnumpy().argmax(1) == yb).sum())
            if epoch == start and i == 0:
                common.emit("first_step", t=time.time())  # bench/: start-up cost of a job
            total += float(loss.asnumpy()) * len(idx)
            seen += len(idx)
        metric, metrics = common.epoch_metrics(spec.task, evaluate(), t_val, total, correct, seen)
        is_best = common.better(spec.task, metric, best)
        best = metric if is_best else best
        if rank == 0:
            checkpoint = out / "checkpoints" / f"epoch_{epoch + 1:03d}{EXT}"
            save(checkpoint, [*net.get_parameters(), *opt.get_parameters()], epoch=epoch + 1, best=best)
            if is_best:
                common.mark_best(checkpoint)
            log.epoch(epoch + 1, schedule.epochs, lr, **metrics)

    if world > 1:  # the final weights of every rank, before rank 0 reloads the best epoch
        common.write_rank_digest(out, rank, world, [p.asnumpy() for p in net.trainable_params()])
    if rank == 0:
        state = ms.load_checkpoint(str(out / "checkpoints" / f"best{EXT}"))
        ms.load_param_into_net(net, state)
        common.finish(out, common.final_report(spec.task, evaluate(), t_val, t_train, names,
                                               int(state["epoch"].asnumpy())), common.model_info(hp, spec.task, spec.arch, "mindspore", names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
