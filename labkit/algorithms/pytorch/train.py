"""The built-in PyTorch training script (a boot file in the ModelArts convention):

    python train.py --data_url VERSION_DIR --train_url OUT_DIR --algorithm ResNet50 --batch_size=32 ...

Run by ``labkit train create`` as a subprocess, under ``torchrun`` for ``--device-num N``
(gloo on CPU, nccl on GPU): each rank trains on its own shard, gradients are averaged, so
every rank ends with the same weights; rank 0 writes the outputs.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from labkit.algorithms import common
from labkit.algorithms.pytorch.models import BUILDERS

EXT = ".pth"


def build(arch: str, num_classes: int, hp: dict) -> torch.nn.Module:
    if arch == "mcnn":
        return BUILDERS[arch]()
    if arch == "ghostnet":
        model = BUILDERS[arch](num_classes, hp.get("width", 1.0))
        model.dropout = hp.get("drop", model.dropout)
        return model
    return BUILDERS[arch](num_classes)


def load_pretrained(model: torch.nn.Module, path: str) -> tuple[list[str], list[str]]:
    """Load every tensor of the checkpoint whose name and shape match; the rest (a head
    with another number of classes) keeps its fresh initialisation. Never runs pickled code."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    own = model.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded), sorted(set(own) - set(loaded))


def main(argv=None) -> int:
    args, raw = common.parse_args(argv)
    hp = common.hyper_parameters(args.algorithm, raw)
    from labkit.catalog import card

    spec = card(args.algorithm)
    counting = spec.task == "crowd_counting"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if args.device == "gpu" and not torch.cuda.is_available():
        sys.exit("error: --device gpu but PyTorch sees no CUDA device")
    if args.device == "ascend":
        sys.exit("error: the PyTorch engine has no Ascend support here; use --engine mindspore")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if args.device == "gpu" else torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(hp["seed"])
    # The same run twice gives the same numbers (a test checks it): an op without a deterministic
    # kernel fails loudly instead of varying. On CPU with a fixed thread count this costs nothing.
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng([hp["seed"], rank])
    out = Path(args.train_url)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    x_train, t_train, x_val, t_val, names = common.load_splits(args.data_url, spec.task, hp["image_size"])
    mine = common.shard(len(x_train), rank, world)
    num_classes = hp.get("num_classes") or len(names)
    model = build(spec.arch, num_classes, hp).to(device)
    if hp.get("pretrained_weight"):
        common.report_pretrained(hp["pretrained_weight"], *load_pretrained(model, hp["pretrained_weight"]))

    decay = hp.get("weight_decay", 0.0)
    if counting and hp.get("optimizer", "adam") == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=hp.get("momentum", 0.0), weight_decay=decay)
    schedule = common.Schedule(hp)
    start, best = 0, None
    if args.resume:
        ckpt = torch.load(args.resume, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start, best = ckpt["epoch"], ckpt["best"]
        print(f"resumed from {args.resume} after epoch {start}", flush=True)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    log = common.RunLog(out, ["loss", "val_mae", "val_rmse"] if counting else ["loss", "train_acc", "val_acc"])
    common.emit("start", epochs=schedule.epochs, start_epoch=start, rank=rank, world=world,
                train=len(x_train), val=len(x_val))

    def evaluate():
        model.eval()
        outs = []
        with torch.no_grad():
            for idx in common.batches(len(x_val), 64, None):
                xb = common.normalize_gray(x_val[idx]) if counting else common.normalize(x_val[idx])
                outs.append(model(torch.from_numpy(xb).to(device)).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, num_classes))

    for epoch in range(start, schedule.epochs):
        model.train()
        steps = max(1, -(-len(mine) // hp["batch_size"]))
        total, correct, seen = 0.0, 0, 0
        for i, idx in enumerate(common.batches(len(mine), hp["batch_size"], rng)):
            idx = mine[idx]
            lr = schedule(epoch + i / steps)
            for group in opt.param_groups:
                group["lr"] = lr
            if counting:
                xb = torch.from_numpy(common.normalize_gray(x_train[idx])).to(device)
                target = torch.from_numpy(t_train[idx][:, None]).to(device)
                pred = net(xb)
                loss = F.mse_loss(pred, target, reduction="sum") / len(idx)
            else:
                xb = torch.from_numpy(common.normalize(common.augment(x_train[idx], rng))).to(device)
                target = torch.from_numpy(t_train[idx]).to(device)
                pred = net(xb)
                loss = F.cross_entropy(pred, target)
                correct += int((pred.argmax(1) == target).sum())
            opt.zero_grad()
            loss.backward()
            if hp.get("clip_grad"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), hp["clip_grad"])
            opt.step()
            if epoch == start and i == 0:
                common.emit("first_step", t=time.time())  # bench/: start-up cost of a job
            total += loss.item() * len(idx)
            seen += len(idx)
        metric, metrics = common.epoch_metrics(spec.task, evaluate(), t_val, total, correct, seen)
        is_best = common.better(spec.task, metric, best)
        best = metric if is_best else best
        if rank == 0:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "best": best}
            checkpoint = out / "checkpoints" / f"epoch_{epoch + 1:03d}{EXT}"
            torch.save(state, checkpoint)
            if is_best:
                common.mark_best(checkpoint)
            log.epoch(epoch + 1, schedule.epochs, lr, **metrics)

    if world > 1:  # the final weights of every rank, before rank 0 reloads the best epoch
        common.write_rank_digest(out, rank, world, [p.detach().cpu().numpy() for p in model.parameters()])
        dist.destroy_process_group()
    if rank == 0:
        best_state = torch.load(out / "checkpoints" / f"best{EXT}", map_location="cpu", weights_only=True)
        model.load_state_dict(best_state["model"])
        common.finish(out, common.final_report(spec.task, evaluate(), t_val, t_train, names, best_state["epoch"]),
                      common.model_info(hp, spec.task, spec.arch, "pytorch", names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
