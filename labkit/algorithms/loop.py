"""The one training loop of the built-in algorithms, whatever the engine (as d2l's
``Trainer.fit``): arguments, card, splits, shard, model, pretrained weights, optimizer,
schedule, resume, epochs, best checkpoint, final report. The loop owns every decision and
all the data handling (NumPy); an ``Engine`` supplies the few things only a framework can
do. The engines' training scripts are entry points that hand their engine to ``main``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from labkit.algorithms import arguments, checkpoint, configs, inputs, reports, schedules, summaries
from labkit.tasks import COUNTING

EVAL_BATCH = 64


def engine(name: str) -> "Engine":
    """The engine called ``name`` (``catalog.ENGINES``), imported now: engines import their framework."""
    import importlib

    module = importlib.import_module(f"labkit.algorithms.{name}.engine")
    return next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Engine)
                and getattr(v, "name", None) == name)()


class Engine:
    """The hooks a framework supplies. Arrays cross this boundary as NumPy: images NCHW
    float32, class labels int64, density maps N1HW float32."""

    name: str
    drop_last = False  # a graph engine that compiles per input shape drops the ragged last batch
    threads: int | None = None  # the CPU threads each process computes with, once set up (None: the device's)

    def setup(self, device: str, seed: int) -> tuple[int, int, int]:
        """Select the device, seed the framework, join the data-parallel group: (rank, world,
        rank on this machine); size the CPU thread pool by this process's share of ``cores()``."""
        raise NotImplementedError

    def build(self, arch: str, num_classes: int, hp: dict) -> None:
        """The network, computing in ``hp``'s layout and precision (``configs.ENGINE_LAYOUTS`` and
        ``ENGINE_PRECISIONS`` say which an engine offers; "auto" or none: NCHW, FP32)."""
        raise NotImplementedError

    def load_pretrained(self, path: str) -> tuple[list[str], list[str]]:
        """Load the tensors whose names and shapes match: (loaded, skipped) names."""
        raise NotImplementedError

    def freeze(self, trainable: tuple[str, ...]) -> None:
        """Train only the parameters whose names start with one of ``trainable``; the frozen
        layers' BatchNorm keeps its statistics (evaluation mode, also while training)."""
        raise NotImplementedError

    def configure(self, hp: dict, counting: bool) -> None:
        """The optimizer (Adam for MCNN's default, else SGD with momentum) and the train step."""
        raise NotImplementedError

    def set_train(self, training: bool) -> None:
        raise NotImplementedError

    def set_lr(self, lr: float) -> None:
        raise NotImplementedError

    def train_step(self, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimisation step: (mean loss, the network's outputs for the batch)."""
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, path: Path, epoch: int, best: float | None) -> None:
        """Model, optimizer, the epoch completed and the best metric so far."""
        raise NotImplementedError

    def resume(self, path: str) -> tuple[int, float | None]:
        """Load model and optimizer from a checkpoint: (epochs completed, best metric)."""
        raise NotImplementedError

    def load_best(self, path: Path) -> int:
        """Load a checkpoint's model weights; the epoch it was saved after."""
        raise NotImplementedError

    def sync_statistics(self) -> None:
        """Data parallel: average BatchNorm's running statistics over the ranks. Each rank updates
        them from its own shard; averaged before every evaluation, every rank (and every machine)
        evaluates and saves the same model."""
        raise NotImplementedError

    def weights(self) -> list[np.ndarray]:
        """The weights and running statistics, to show that every data-parallel rank ends the same."""
        raise NotImplementedError

    def close(self) -> None:
        """Leave the data-parallel group."""


class Data:
    """A run's splits (train and validation images and targets, and the class names), with the
    task's batch preparation: ``inputs`` normalises images, ``train_batch`` also augments them
    for classification. ``load`` reads a dataset version (``--data_url``)."""

    def __init__(self, task: str, x_train, t_train, x_val, t_val, names: list[str]):
        self.counting = task == COUNTING
        self.x_train, self.t_train, self.x_val, self.t_val, self.names = x_train, t_train, x_val, t_val, names

    @classmethod
    def load(cls, data_url: str, task: str, size: int) -> "Data":
        return cls(task, *inputs.load_splits(data_url, task, size))

    def inputs(self, x: np.ndarray) -> np.ndarray:
        return inputs.normalize_gray(x) if self.counting else inputs.normalize(x)

    def train_batch(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Counting: images and density maps as they are; classification: augmented images."""
        if self.counting:
            return self.inputs(self.x_train[idx]), self.t_train[idx][:, None]
        return self.inputs(inputs.augment(self.x_train[idx], rng)), self.t_train[idx]


def evaluate(engine: Engine, data: Data, num_classes: int) -> np.ndarray:
    """The network's outputs for the whole validation split, in batches of ``EVAL_BATCH``, in
    evaluation mode (no dropout, BatchNorm's running statistics)."""
    engine.set_train(False)
    outs = [engine.predict(data.inputs(data.x_val[idx])) for idx in inputs.batches(len(data.x_val), EVAL_BATCH, None)]
    return np.concatenate(outs) if outs else np.zeros((0, num_classes))


def fit_epoch(engine: Engine, data: Data, mine: np.ndarray, epoch: int, first: bool, hp: dict,
              schedule: schedules.Schedule, rng: np.random.Generator) -> tuple[float, float, int, int]:
    """One pass over this rank's shard (``mine``: indices into the training split) in training
    mode, the learning rate following ``schedule`` step by step; ``first`` marks the run's first
    epoch (its first step is reported for the start-up cost). Returns (last learning rate,
    summed loss, correct, seen)."""
    engine.set_train(True)
    steps = max(1, -(-len(mine) // hp["batch_size"]))
    total, correct, seen, lr = 0.0, 0, 0, schedule(epoch)
    for i, idx in enumerate(inputs.batches(len(mine), hp["batch_size"], rng, drop_last=engine.drop_last)):
        idx = mine[idx]
        lr = schedule(epoch + i / steps)
        engine.set_lr(lr)
        x, target = data.train_batch(idx, rng)
        loss, out = engine.train_step(x, target)
        if not data.counting:
            correct += int((out.argmax(1) == target).sum())
        if first and i == 0:
            reports.emit("first_step", t=time.time())  # bench/: start-up cost of a job
        total += loss * len(idx)
        seen += len(idx)
    return lr, total, correct, seen


def freeze(engine: Engine, arch: str, hp: dict) -> None:
    """Freeze what ``train_layers`` leaves out (``configs.trainable``), before the optimizer exists."""
    trainable = configs.trainable(arch, hp.get("train_layers", "all"))
    if trainable:
        engine.freeze(trainable)


def main(engine: Engine, argv=None) -> int:
    """Train one algorithm on one dataset version, in the ``--data_url/--train_url`` convention."""
    from labkit.catalog import card

    args, raw = arguments.parse_args(argv)
    hp = arguments.hyper_parameters(args.algorithm, raw)
    spec = card(args.algorithm)
    rank, world, local_rank = engine.setup(args.device, hp["seed"])
    # The first process of each machine writes checkpoints, metrics and the report into that
    # machine's train_url: a job over several machines leaves the same weights on each.
    writes = local_rank == 0
    rng = np.random.default_rng([hp["seed"], rank])
    out = Path(args.train_url)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    data = Data.load(args.data_url, spec.task, hp["image_size"])
    mine = inputs.shard(len(data.x_train), rank, world)
    num_classes = hp.get("num_classes") or len(data.names)
    problem = configs.not_offered(engine.name, hp)
    if problem:
        raise SystemExit(f"error: {problem}")
    engine.build(spec.arch, num_classes, hp)
    if hp.get("pretrained_weight"):
        loaded, skipped = engine.load_pretrained(hp["pretrained_weight"])
        reports.report_pretrained(hp["pretrained_weight"], loaded, skipped)
        if hp.get("pretrained", "none") != "none" and not all(k.startswith(configs.HEADS[spec.arch]) for k in skipped):
            raise SystemExit(f"error: the published weights left more than the head out ({', '.join(skipped)}): "
                             f"delete {hp['pretrained_weight']} (labkit makes it again from the download) and run again")
    freeze(engine, spec.arch, hp)
    engine.configure(hp, data.counting)
    schedule = schedules.Schedule(hp)
    start, best = 0, None
    if args.resume:
        start, best = engine.resume(args.resume)
        print(f"resumed from {args.resume} after epoch {start}", flush=True)

    log = reports.RunLog(out, reports.metric_fields(spec.task))
    board = summaries.Board(out) if writes else None
    reports.emit("start", epochs=schedule.stop, start_epoch=start, rank=rank, world=world, threads=engine.threads,
                train=len(data.x_train), val=len(data.x_val))
    best_outputs, best_epoch = None, None  # the best epoch's validation outputs, for the final report
    for epoch in range(start, schedule.stop):
        started = time.perf_counter()
        lr, total, correct, seen = fit_epoch(engine, data, mine, epoch, epoch == start, hp, schedule, rng)
        pace = seen * world / (time.perf_counter() - started)  # training images per second, all ranks
        if world > 1:
            engine.sync_statistics()
        outputs = evaluate(engine, data, num_classes)
        metric, metrics = reports.epoch_metrics(spec.task, outputs, data.t_val, total, correct, seen)
        is_best = reports.better(spec.task, metric, best)
        if is_best:
            best, best_outputs, best_epoch = metric, outputs, epoch + 1
        if writes:
            saved = checkpoint(out, engine.name, f"epoch_{epoch + 1:03d}")
            engine.save(saved, epoch + 1, best)
            if is_best:
                reports.mark_best(saved)
            board.epoch(log.epoch(epoch + 1, schedule.stop, lr, pace, **metrics))

    if world > 1:  # the final weights of every rank, before the writers reload the best epoch
        reports.write_rank_digest(out, rank, world, engine.weights())
    engine.close()
    if writes:
        if best_outputs is None:  # resumed after its best epoch: evaluate that epoch's checkpoint again
            best_epoch = engine.load_best(checkpoint(out, engine.name))
            best_outputs = evaluate(engine, data, num_classes)
        report = reports.final_report(spec.task, best_outputs, data.t_val, data.t_train, data.names, best_epoch)
        board.finish(hp, report, data.x_val, data.t_val, best_outputs)
        board.close()
        reports.finish(out, report, reports.model_info(hp, spec.task, spec.arch, engine.name, data.names))
    return 0
