"""Speed of light: how much of this CPU's arithmetic a training step uses.

The limit is the best FP32 matrix-multiply rate torch reaches here with the threads a job gets
(square GEMMs of 1024-3072; BF16 too where the CPU computes it natively). Against it, each catalog
model's training step and evaluation batch at the workshop profile's sizes, through labkit's own
engine hooks (``labkit.algorithms.loop.Engine``), in each engine, layout and precision it offers
here: milliseconds (median of ``--steps``), GFLOP (torch's FLOP counter on the PyTorch network;
MindSpore builds the same network) and GFLOP/s as a share of the FP32 GEMM rate. The batch's
data preparation (augmentation and normalisation, NumPy) is timed beside each step: its share
of an epoch. Each engine runs in a process of its own.

    .venv/bin/python bench/bench_sol.py [--steps 5] [--engines pytorch mindspore]

With ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` set, PyTorch computes as on an
AVX2-only laptop; the result file records the settings with the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import results

ARCHS = {"resnet50": "ResNet50", "ghostnet": "GhostNet", "mcnn": "MCNN"}  # an algorithm of each architecture
CLASSES = 5  # the flowers lab's
GEMM_SIZES = (1024, 2048, 3072)
CHILD = "LABKIT-SOL "


def median_seconds(run, steps: int) -> float:
    run(), run()  # warm-up: kernels chosen, graphs compiled
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def gemm_rates(threads: int, bf16: bool) -> dict:
    """GFLOP/s of the best square matrix product, FP32 (and BF16)."""
    import torch

    torch.set_num_threads(threads)
    rates = {}
    for name, dtype in [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if bf16 else []):
        best = 0.0
        for n in GEMM_SIZES:
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            best = max(best, 2 * n ** 3 / median_seconds(lambda: a @ b, 3) / 1e9)
        rates[name] = best
    return rates


def flops(arch: str, hp: dict) -> tuple[float, float]:
    """GFLOP of one training step and one evaluation batch of ``EVAL_BATCH``. A training step is
    counted as three forward passes (the backward pass computes the gradients of the inputs and
    of the weights, each as costly as the forward): torch's counter counts a grouped convolution's
    backward as if it were dense, 30x too much for GhostNet's depthwise convolutions."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from labkit.algorithms.loop import EVAL_BATCH
    from labkit.algorithms.pytorch.models import build

    counting = arch == "mcnn"
    model = build(arch, 0 if counting else CLASSES, hp)
    size, batch = hp["image_size"], hp["batch_size"]

    def images(n):
        return torch.randn(n, 1 if counting else 3, size, size)

    with FlopCounterMode(display=False) as forward, torch.no_grad():
        model(images(batch))
    with FlopCounterMode(display=False) as evaluation, torch.no_grad():
        model.eval()(images(EVAL_BATCH))
    return 3 * forward.get_total_flops() / 1e9, evaluation.get_total_flops() / 1e9


def steps(engine_name: str, arch: str, hp: dict, count: int) -> dict:
    """Milliseconds of a training step, an evaluation batch and a batch's data preparation, through
    the engine's hooks, in each layout and precision given in ``hp``."""
    from labkit.algorithms import loop
    from labkit.tasks import CLASSIFICATION, COUNTING

    counting = arch == "mcnn"
    size, batch = hp["image_size"], hp["batch_size"]
    rng = np.random.default_rng(0)
    shape = (size, size) if counting else (size, size, 3)
    pixels = rng.integers(0, 256, (max(batch, loop.EVAL_BATCH), *shape), dtype=np.uint8)
    targets = (np.zeros((len(pixels), size // 4, size // 4), np.float32) if counting
               else rng.integers(0, CLASSES, len(pixels)))
    data = loop.Data(COUNTING if counting else CLASSIFICATION, pixels, targets, pixels, targets,
                     [str(i) for i in range(CLASSES)])
    engine = loop.engine(engine_name)
    engine.setup("cpu", 0)
    engine.build(arch, 0 if counting else CLASSES, hp)
    engine.configure({**hp, "lr": 0.001, "momentum": 0.9}, counting)
    idx = np.arange(batch)
    x, t = data.train_batch(idx, rng)
    x_eval = data.inputs(pixels[:loop.EVAL_BATCH])
    engine.set_train(True)
    train = median_seconds(lambda: engine.train_step(x, t), count)
    engine.set_train(False)
    evaluation = median_seconds(lambda: engine.predict(x_eval), count)
    prepare = median_seconds(lambda: data.train_batch(idx, rng), count)
    engine.close()
    return {"train_ms": 1000 * train, "eval_ms": 1000 * evaluation, "prepare_ms": 1000 * prepare,
            "threads": engine.threads}


def child(engine_name: str, count: int) -> None:
    """Every architecture in every layout and precision ``engine_name`` offers here (one process)."""
    from labkit import catalog, cpu
    from labkit.algorithms.configs import BF16, ENGINE_LAYOUTS, ENGINE_PRECISIONS
    native = cpu.native_bf16(cpu.describe()["features"])
    precisions = [p for p in ENGINE_PRECISIONS[engine_name] if p != BF16 or native]
    out = {}
    if engine_name == "pytorch":
        out["gemm"] = gemm_rates(cpu.cores(), native)
    for arch, algorithm in ARCHS.items():
        hp = catalog.card(algorithm).resolve({}, "workshop")
        if engine_name == "pytorch":
            out[f"{arch}.flops"] = dict(zip(("train", "eval"), flops(arch, hp)))
        for layout in ENGINE_LAYOUTS[engine_name]:
            for precision in precisions:
                key = f"{arch}.{layout}.{precision}"
                out[key] = {**steps(engine_name, arch, {**hp, "layout": layout, "precision": precision}, count),
                            "batch": hp["batch_size"], "image_size": hp["image_size"]}
                print(f"  {engine_name} {key}: {out[key]['train_ms']:.0f} ms a step", file=sys.stderr, flush=True)
    print(CHILD + json.dumps(out), flush=True)


def run_engine(engine_name: str, count: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", engine_name, "--steps", str(count)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    found = [line[len(CHILD):] for line in proc.stdout.splitlines() if line.startswith(CHILD)]
    if proc.returncode or not found:
        sys.exit(f"{engine_name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(found[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per figure (the median is kept)")
    parser.add_argument("--engines", nargs="+", default=["pytorch", "mindspore"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "pytorch" not in args.engines:
        parser.error("--engines needs pytorch: its process measures the GEMM rates and counts the FLOPs")
    if args.child:
        child(args.child, args.steps)
        return 0
    from labkit.algorithms.loop import EVAL_BATCH

    measured = {name: run_engine(name, args.steps) for name in args.engines}
    gemm = measured["pytorch"]["gemm"]
    figures = [results.figure(f"gemm.{p}", f"best {p.upper()} matrix-multiply rate", rate, "GFLOP/s")
               for p, rate in gemm.items()]
    for engine_name, found in measured.items():
        for key, m in found.items():
            if key == "gemm" or key.endswith(".flops"):
                continue
            arch, layout, precision = key.split(".")
            work = measured["pytorch"][f"{arch}.flops"]
            for part in ("train", "eval"):
                rate = work[part] / (m[f"{part}_ms"] / 1000)
                figures.append(results.figure(
                    f"{engine_name}.{key}.{part}", f"{arch} {part} step, {engine_name}, {layout}, {precision}",
                    m[f"{part}_ms"], "ms", gflop=round(work[part], 2), gflops=round(rate, 1),
                    share=round(rate / gemm["fp32"], 3), batch=m["batch"] if part == "train" else EVAL_BATCH,
                    image_size=m["image_size"], threads=m["threads"]))
            figures.append(results.figure(f"{engine_name}.{key}.prepare", f"{arch} batch preparation (NumPy)",
                                          m["prepare_ms"], "ms", batch=m["batch"]))
    for f in figures:
        extra = f" ({f['gflops']} GFLOP/s, {f['share']:.0%} of FP32 GEMM)" if "gflops" in f else ""
        print(f"{f['key']:42} {f['value']:9.1f} {f['unit']}{extra}")
    results.save("sol", figures, profile="workshop", arguments={"steps": args.steps, "engines": args.engines})
    return 0


if __name__ == "__main__":
    sys.exit(main())
