"""How long a training job should take on this machine, said before it starts.

A short calibration runs the training loop's own epoch and evaluation functions
(``labkit.algorithms.loop``) on a few random batches of the job's shape, in the job's engine,
in a process of its own, and times them: the start-up (interpreter, imports, building the
network, MindSpore's graph compilation), a train step, an evaluation batch and a checkpoint.
Where the engine offers more than one memory layout (PyTorch: NCHW and channels-last), each is
timed, and the faster is the one a job's ``layout=auto`` computes in (``labkit.train.speedups``).
It takes seconds and is cached per machine (CPU, cores, kernel settings, engine versions) in
``speed.json`` of labkit's cache folder (``$LABKIT_CACHE``, else ``~/.cache/labkit``). A job's
estimate is then arithmetic over its epochs and image counts. A data-parallel job on one machine
is calibrated as it runs: under its launcher (torchrun, msrun), its processes exchanging
gradients. A calibration during which other work took much of the CPU is used once, not kept.
How close estimates come to measured runs: docs/BENCHMARKS.md (``bench/bench_estimate.py``).
An estimate is advice: when there can be none, the job or lab runs all the same.

    python -m labkit.train.timing ENGINE ARCH TASK SIZE BATCH LAYERS PRECISION DEVICE_NUM T0   # the calibration child
                                                                            # (rank 0 prints SPEED {json})
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from labkit import cpu, workspace
from labkit.algorithms.configs import AUTO, ENGINE_LAYOUTS, FP32, NCHW
from labkit.errors import LabkitError
from labkit.tasks import COUNTING

TIMED_STEPS = 4      # train steps timed after a warm-up pass (oneDNN primitives, MindSpore's compile)
EVAL_BATCHES = 2     # evaluation batches timed after a warm-up pass
CALIBRATION_TIMEOUT_S = 600
SPEED = "LABKIT-SPEED "  # the line of the child's output that carries the measurement
BUSY_SHARE = 0.10  # a calibration during which other work took more of the CPU is not kept
CLASSES = 10  # the head's size hardly matters to the time: one calibration serves every class count
LAYOUT_GAIN = 1.05  # another layout than NCHW is chosen when at least this much faster: a tie keeps the default
# A lab's stages other than training (data, conversion, import, service: kernel start-up, figures,
# conversions, calls), seconds per stage by profile, measured over the five labs (docs/BENCHMARKS.md):
# quick 6-11 s (Intel Xeon, 2026-12-02), workshop 14-25 s (Intel Xeon, 2026-11-22), full 27-109 s
# (Intel Xeon, 2026-12-02: converting ResNet-50 at 224 px to FP32 and INT8 takes 5 minutes).
# On an AVX2-only AMD EPYC Zen 3 (2026-12-06, bench/results/estimate-*) they took 13-27 s a stage in
# quick (the conversions: 32-79 s without VNNI) and 25 s in workshop: these allowances are short there.
OTHER_STAGE_SECONDS = {"quick": 9, "workshop": 20, "full": 50}


@dataclass(frozen=True)
class Speed:
    """Seconds, measured on this machine for one job shape."""

    startup: float     # process start to the first step done: imports, network, compilation
    train_image: float  # one training image (augmentation, forward, backward, update)
    eval_image: float   # one validation image
    checkpoint: float   # saving a checkpoint (model and optimizer), once per epoch
    layout: str = NCHW  # the faster memory layout, whose figures train_image and eval_image are
    layouts: dict = field(default_factory=dict)  # every layout timed: [train_image, eval_image]

    def at(self, layout: str) -> "Speed":
        """The figures of a job computing in ``layout`` ("auto": the faster)."""
        if layout in (AUTO, self.layout) or layout not in self.layouts:
            return self
        return replace(self, layout=layout, train_image=self.layouts[layout][0], eval_image=self.layouts[layout][1])


def cache_path() -> Path:
    return workspace.cache_dir() / "speed.json"


def _machine() -> str:
    """What a calibration holds for: the CPU and the cores this process may use, the kernel
    settings, and the engines' versions (a new release may be faster)."""
    from labkit.doctor import package_versions

    versions = package_versions()
    return json.dumps({"cpu": cpu.summary(), "cores": cpu.cores(),
                       "engines": {k: versions.get(k) for k in ("torch", "mindspore")}}, sort_keys=True)


def _shape(engine: str, arch: str, task: str, image_size: int, batch_size: int, device_num: int,
           train_layers: str, precision: str) -> list:
    """What a calibration holds for besides the machine: ``train_layers`` (a frozen backbone
    trains faster) and the precision are part of the shape; every layout is timed in one."""
    return [engine, arch, task, image_size, batch_size, train_layers, precision, device_num]


def _key(shape: list) -> str:
    return json.dumps([_machine(), shape])


def _speed(entry: dict | None) -> Speed | None:
    """A cache entry as a Speed; None for one of another labkit version's form (measured again)."""
    try:
        return Speed(**entry) if entry else None
    except TypeError:
        return None


def _cached(path: Path) -> dict:
    try:
        return workspace.read_json(path) if path.exists() else {}
    except LabkitError:  # a damaged cache is measured again
        return {}


def timed(engine: str, arch: str, task: str, image_size: int, batch_size: int, device_num: int = 1,
          train_layers: str = "all", precision: str = FP32) -> Speed | None:
    """The speed this machine's calibration measured for the shape, or None when it has not."""
    return _speed(_cached(cache_path()).get(_key(_shape(engine, arch, task, image_size, batch_size, device_num,
                                                        train_layers, precision))))


def speed(engine: str, arch: str, task: str, image_size: int, batch_size: int, device_num: int = 1,
          log=print, train_layers: str = "all", precision: str = FP32) -> Speed:
    """The calibrated speed of one job shape on this machine: from the cache, or measured now."""
    shape = _shape(engine, arch, task, image_size, batch_size, device_num, train_layers, precision)
    key = _key(shape)
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with workspace.locked(path.parent):  # two notebooks asking at once measure once
        cached = _cached(path)
        if _speed(cached.get(key)):
            return _speed(cached[key])
        frozen = "" if train_layers == "all" else f", training {train_layers}"
        log(f"timing {arch} ({engine}, {image_size} px, batch {batch_size}{frozen}) on this machine, once: "
            "seconds, up to a minute")
        measured, others = _calibrate(shape)
        if others <= BUSY_SHARE:
            workspace.write_json(path, {**cached, key: asdict(measured)})
        else:  # threads that share their cores slow down many times over: a figure to use once, not to keep
            log(f"other work took {others:.0%} of the CPU while timing: this estimate is rough; "
                "the next one measures again")
    return measured


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def _children_seconds() -> float:
    """CPU seconds of this process's ended children (the calibration and the processes it started)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _calibrate(shape: list) -> tuple[Speed, float]:
    """(the speed measured, the share of the machine's CPU that other work took meanwhile)."""
    import tempfile

    import psutil

    from labkit.train.jobs import launcher_command
    from labkit.train.supervisor import child_env

    engine, device_num = shape[0], shape[-1]
    with tempfile.TemporaryDirectory(prefix="labkit-timing-") as logs:
        t0 = time.time()
        argv = [*map(str, shape), repr(t0)]
        # data parallel: the job's own launcher, so that starting N processes and exchanging
        # gradients are timed too
        cmd = ([sys.executable, "-m", "labkit.train.timing", *argv] if device_num == 1 else
               launcher_command(Path(__file__), engine, device_num, Path(logs), argv, "timing", None))
        busy, ours, start = _busy_seconds(), _children_seconds(), time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CALIBRATION_TIMEOUT_S, env=child_env())
        capacity = (time.monotonic() - start) * (psutil.cpu_count() or 1)
        others = max(0.0, (_busy_seconds() - busy) - (_children_seconds() - ours)) / capacity
    found = [line[len(SPEED):] for line in proc.stdout.splitlines() if line.startswith(SPEED)]
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise LabkitError(f"timing {shape[1]} in {engine} failed (exit {proc.returncode}):\n{tail}",
                          "`labkit doctor` checks the engines; training may still work, without an estimate")
    return Speed(**json.loads(found[-1])), others


def epochs_seconds(s: Speed, epochs: int, n_train: int, n_val: int, device_num: int = 1) -> float:
    """A job's seconds: start-up, then per epoch this process's share of the training images,
    every validation image (each process evaluates them all) and a checkpoint."""
    per_epoch = math.ceil(n_train / device_num) * s.train_image + n_val * s.eval_image + s.checkpoint
    return s.startup + epochs * per_epoch


def job_seconds(algorithm: str, engine: str, n_train: int, n_val: int, hyper: dict | None = None,
                profile: str | None = None, device_num: int = 1, log=print) -> float:
    """The estimated seconds of a training job with these hyper-parameters and image counts."""
    from labkit import catalog, profiles
    from labkit.algorithms.schedules import Schedule

    card = catalog.card(algorithm)
    if card.custom:
        raise LabkitError(f"{algorithm} is a custom algorithm: labkit cannot time its code", "time one epoch instead")
    from labkit.train import speedups

    hp = speedups.precision(card, engine, card.resolve(dict(hyper or {}), profiles.profile(profile)))
    s = speed(engine, card.arch, card.task, hp["image_size"], hp["batch_size"], device_num, log,
              hp.get("train_layers", "all"), hp.get("precision", FP32))
    return epochs_seconds(s.at(hp.get("layout", AUTO)), Schedule(hp).stop, n_train, n_val, device_num)


def for_dataset(algorithm: str, engine: str, dataset: str, hyper: dict | None = None, profile: str | None = None,
                device_num: int = 1, log=print) -> float:
    """The estimated seconds of a job on dataset version ``dataset`` (what notebook 02 shows
    before it creates the job)."""
    from labkit import data

    counts = data.show(dataset)["counts"]
    return job_seconds(algorithm, engine, counts["train"]["images"], counts["val"]["images"], hyper, profile,
                       device_num, log)


def minutes_text(seconds: float) -> str:
    """How a person says it: 'about 40 s', 'about 7 min'."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def expected_time(algorithm: str, engine: str, dataset: str, hyper: dict | None = None, profile: str | None = None,
                  device_num: int = 1) -> str:
    """What notebook 02 says before it creates a job: how long it should take here, or why
    there is no estimate (the job starts all the same)."""
    try:
        seconds = for_dataset(algorithm, engine, dataset, hyper, profile, device_num)
    except LabkitError as exc:
        return f"no time estimate: {exc.message}"
    return f"this job: {minutes_text(seconds)} on this machine"


# --- the calibration child -----------------------------------------------------------------

def faster_layout(timed: dict[str, tuple[float, float]]) -> str:
    """The layout whose (training, evaluation) seconds sum least; another than NCHW only when
    ``LAYOUT_GAIN`` times faster."""
    return min(timed, key=lambda k: sum(timed[k]) * (1 if k == NCHW else LAYOUT_GAIN))


def _measure(engine_name: str, arch: str, task: str, image_size: int, batch_size: int, train_layers: str,
             precision: str, t0: float) -> tuple[Speed, int]:
    """(this machine's speed, measured by this process; its rank): every rank of a data-parallel
    calibration runs the same steps, and rank 0 reports. Each layout the engine offers is timed
    (NCHW first: start-up is its; the checkpoint is timed on the last built)."""
    import tempfile

    import numpy as np

    from labkit.algorithms import loop

    counting = task == COUNTING
    rng = np.random.default_rng(0)
    n = TIMED_STEPS * batch_size

    def images(count):
        shape = (count, image_size, image_size) if counting else (count, image_size, image_size, 3)
        return rng.integers(0, 256, shape, dtype=np.uint8)

    def targets(count):
        if counting:
            return np.zeros((count, image_size // 4, image_size // 4), np.float32)
        return rng.integers(0, CLASSES, count)

    n_val = EVAL_BATCHES * loop.EVAL_BATCH + 8  # a ragged last batch too: MindSpore compiles its shape
    data = loop.Data(task, images(n), targets(n), images(n_val), targets(n_val), [str(i) for i in range(CLASSES)])
    engine = loop.engine(engine_name)
    rank = engine.setup("cpu", 0)[0]
    mine, schedule = np.arange(n), (lambda epoch: 0.001)
    timed, ready, layouts = {}, None, ENGINE_LAYOUTS[engine_name]
    for layout in layouts:
        # each task's default optimizer
        hp = {"batch_size": batch_size, "lr": 0.001, "momentum": 0.9, "weight_decay": 1e-4, "layout": layout,
              "precision": precision}
        engine.build(arch, 0 if counting else CLASSES, hp)
        loop.freeze(engine, arch, {"train_layers": train_layers})
        engine.configure(hp, counting)

        def epoch():
            t = time.perf_counter()
            loop.fit_epoch(engine, data, mine, 0, False, hp, schedule, rng)
            return time.perf_counter() - t

        def evaluate():
            t = time.perf_counter()
            loop.evaluate(engine, data, CLASSES)
            return time.perf_counter() - t

        epoch(), evaluate()  # the warm-up pass: first calls build kernels and compile graphs
        ready = ready or time.time()
        # to choose between layouts, each one's training is timed twice and the faster pass kept: a
        # noisy neighbour slows one pass more often than both
        timed[layout] = (min(epoch() for _ in range(2 if len(layouts) > 1 else 1)), evaluate())
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        engine.save(Path(tmp) / "calibration", 1, 0.0)
        save = time.perf_counter() - t
    engine.close()
    faster = faster_layout(timed)
    train, val = timed[NCHW]  # start-up: everything before the steady state (the warm-up pass's steady share taken out)
    return Speed(startup=round(max(0.0, ready - t0 - train - val), 3), train_image=round(timed[faster][0] / n, 6),
                 eval_image=round(timed[faster][1] / n_val, 6), checkpoint=round(save, 3), layout=faster,
                 layouts={k: [round(tr / n, 6), round(ev / n_val, 6)] for k, (tr, ev) in timed.items()}), rank


if __name__ == "__main__":
    engine_name, arch, task, size, batch, train_layers, precision, _device_num, t0 = sys.argv[1:]
    measured, rank = _measure(engine_name, arch, task, int(size), int(batch), train_layers, precision, float(t0))
    if rank == 0:
        print(SPEED + json.dumps(asdict(measured)), flush=True)
