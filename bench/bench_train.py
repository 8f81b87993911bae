"""Stage 2 benchmark: what labkit's training costs over a bare loop, and a job's start-up.

1. Overhead: labkit's training script (schedule, augmentation, per-epoch evaluation,
   metrics.csv, a checkpoint per epoch, the final report) against a bare hand-written loop of
   the same engine, model, data, augmentation and evaluation, run alternately in this process
   (A B A B, best of each): the ratio is the overhead.
2. Start-up: from `train.create` (a subprocess) to the job's first training step, against the
   time a bare `python -c "import <engine>"` takes to start.

    .venv/bin/python bench/bench_train.py [--engine pytorch|mindspore|both] [--epochs 2]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from labkit.algorithms import inputs
from results import figure, save

HP = {"learning_rate_strategy": "2:0.01", "batch_size": 16, "image_size": 64, "momentum": 0.9, "weight_decay": 1e-4}


def bare_pytorch(data_url: str, epochs: int) -> None:
    import torch
    import torch.nn.functional as F

    from labkit.algorithms.pytorch.models import resnet50

    x, y = inputs.load_classification(data_url, "train", HP["image_size"])
    xv, yv = inputs.load_classification(data_url, "val", HP["image_size"])
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = resnet50(5)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    for _ in range(epochs):
        model.train()
        for idx in inputs.batches(len(x), HP["batch_size"], rng):
            loss = F.cross_entropy(model(torch.from_numpy(inputs.normalize(inputs.augment(x[idx], rng)))),
                                   torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for idx in inputs.batches(len(xv), 64, None):
                model(torch.from_numpy(inputs.normalize(xv[idx]))).argmax(1)


def bare_mindspore(data_url: str, epochs: int) -> None:
    import mindspore as ms
    from mindspore import nn

    from labkit.algorithms.mindspore.models import resnet50

    ms.set_context(mode=ms.GRAPH_MODE)
    x, y = inputs.load_classification(data_url, "train", HP["image_size"])
    xv, yv = inputs.load_classification(data_url, "val", HP["image_size"])
    rng = np.random.default_rng(0)
    net = resnet50(5)
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    # MindSpore's own idiom for a plain loop, a Cell like labkit's step (an ms.jit function runs
    # the CPU backward kernels 1.5-2x slower: docs/BENCHMARKS.md)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)

    for _ in range(epochs):
        net.set_train(True)
        for idx in inputs.batches(len(x), HP["batch_size"], rng, drop_last=True):
            step(ms.Tensor(inputs.normalize(inputs.augment(x[idx], rng))), ms.Tensor(y[idx].astype(np.int32)))
        net.set_train(False)
        for idx in inputs.batches(len(xv), 64, None):
            net(ms.Tensor(inputs.normalize(xv[idx]))).asnumpy().argmax(1)


def labkit_loop(engine: str, data_url: str, out: str) -> None:
    if engine == "pytorch":
        from labkit.algorithms.pytorch.train import main
    else:
        from labkit.algorithms.mindspore.train import main
    main([f"--data_url={data_url}", f"--train_url={out}", "--algorithm=ResNet50",
          *(f"--{k}={v}" for k, v in HP.items())])


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def overhead(engine: str, data_url: str, epochs: int, tmp: Path) -> dict:
    bare = bare_pytorch if engine == "pytorch" else bare_mindspore
    HP["learning_rate_strategy"] = f"{epochs}:0.01"
    times = {"bare": [], "labkit": []}
    for i in range(2):
        times["bare"].append(timed(bare, data_url, epochs))
        times["labkit"].append(timed(labkit_loop, engine, data_url, str(tmp / f"{engine}-{i}")))
    bare_s, labkit_s = min(times["bare"]), min(times["labkit"])
    print(f"{engine:<10} bare loop {bare_s:6.1f} s   labkit {labkit_s:6.1f} s   overhead {100 * (labkit_s / bare_s - 1):+5.1f}%  "
          f"(runs: bare {', '.join(f'{t:.1f}' for t in times['bare'])}; labkit {', '.join(f'{t:.1f}' for t in times['labkit'])})")
    return figure(f"loop.{engine}", f"labkit's loop, {epochs} epochs, {engine}", labkit_s, "s", baseline=bare_s,
                  runs=times)


def startup(engine: str, dataset: str) -> dict:
    from labkit import train

    module = "torch" if engine == "pytorch" else "mindspore"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
    imported = time.perf_counter() - t0
    t0 = time.time()
    name = f"startup-{engine}-{int(t0)}"
    train.create("ResNet50", engine, dataset, name, {**HP, "learning_rate_strategy": "1:0.01"}, log=lambda *_: None)
    first, offset = None, 0
    while first is None:
        events, offset = train.progress(name, offset)
        first = next((e["t"] for e in events if e["event"] == "first_step"), None)
        time.sleep(0.05)
    train.wait(name)
    print(f"{engine:<10} job start-up (create -> first step) {first - t0:5.1f} s = "
          f"{(first - t0) / imported:4.1f}x a bare `python -c 'import {module}'` ({imported:.1f} s)")
    return figure(f"startup.{engine}", f"a {engine} job's start-up, create to first step", first - t0, "s",
                  baseline=imported)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=("pytorch", "mindspore", "both"), default="both")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--images", type=int, default=1000, help="dataset size (the workshop profile's)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-train-"))
    os.environ["LABKIT_HOME"] = str(tmp / "ws")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a checkpoint per epoch per run: gigabytes


def run(args, tmp: Path) -> None:
    from labkit import data

    data.make("flowers", name="bench", count=args.images, size=64, seed=0)
    ref = "bench@" + data.publish("bench")["version"]
    data_url = str(data.version_dir(ref))
    engines = ("pytorch", "mindspore") if args.engine == "both" else (args.engine,)
    print(f"ResNet-50, {args.images} flower images (80% train) at 64 px, batch 16, {args.epochs} epochs, "
          f"{os.cpu_count()} cores")
    figures = [startup(engine, ref) for engine in engines]
    figures += [overhead(engine, data_url, args.epochs, tmp) for engine in engines]
    print("overhead = labkit / bare - 1; best of two runs each")
    save("train", figures, arguments=vars(args))


if __name__ == "__main__":
    main()
