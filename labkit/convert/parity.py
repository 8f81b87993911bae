"""The numbers that prove a conversion: outputs of the source engine, the plain ONNX export
and the converted model on the validation split, compared; and the speed of each, measured
the same way with the same thread count.

What fails a conversion (``verdict``): an FP32 model whose outputs differ from the source
engine's by more than 1e-4 of the output scale (the largest absolute output); a reduced
precision model (FP16, INT8) whose top-1 agrees with the source on under 98% of the images,
or, for counting, whose counts are off by more than 5% of the mean count on average.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

FP32_TOLERANCE = 1e-4
MIN_AGREEMENT = 0.98
MAX_COUNT_DRIFT = 0.05
BATCHES = (1, 8, 32)


def run_batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int | None, size: int = 32):
    """``fn`` over ``x`` in batches; a model with a fixed ``batch`` gets zero-padded batches."""
    step = batch or size
    outs = []
    for i in range(0, len(x), step):
        chunk = x[i:i + step]
        if batch and len(chunk) < batch:
            pad = np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
            outs.append(fn(np.concatenate([chunk, pad]))[:len(chunk)])
        else:
            outs.append(fn(chunk))
    return np.concatenate(outs).astype(np.float32)


def compare(task: str, out: np.ndarray, reference: np.ndarray, truth: np.ndarray | None) -> dict:
    """How far ``out`` is from ``reference`` (the source engine's outputs), and its own score."""
    scale = float(np.abs(reference).max()) or 1.0
    diff = float(np.abs(out - reference).max())
    row = {"max_abs_diff": diff, "relative_diff": diff / scale}
    if task == "crowd_counting":
        counts, ref_counts = out.reshape(len(out), -1).sum(1), reference.reshape(len(reference), -1).sum(1)
        row["count_diff"] = float(np.abs(counts - ref_counts).mean())
        row["count_drift"] = row["count_diff"] / max(float(np.abs(ref_counts).mean()), 1e-9)
        if truth is not None:
            row["mae"] = float(np.abs(counts - truth).mean())
    else:
        row["top1_agreement"] = float((out.argmax(1) == reference.argmax(1)).mean())
        if truth is not None:
            row["accuracy"] = float((out.argmax(1) == truth).mean())
    return row


def verdict(task: str, precision: str, row: dict) -> str | None:
    """Why this converted model must not be used, or None when it passes."""
    if precision == "fp32":
        if row["relative_diff"] > FP32_TOLERANCE:
            return (f"FP32 outputs differ from the source engine by {row['relative_diff']:.2e} of the output "
                    f"scale (allowed {FP32_TOLERANCE:.0e})")
        return None
    if task == "crowd_counting":
        if row["count_drift"] > MAX_COUNT_DRIFT:
            return (f"{precision.upper()} counts are off by {row['count_drift']:.1%} of the mean count on average "
                    f"(allowed {MAX_COUNT_DRIFT:.0%}); calibrate on more images or keep FP32")
        return None
    if row["top1_agreement"] < MIN_AGREEMENT:
        return (f"{precision.upper()} top-1 agrees with the source engine on {row['top1_agreement']:.1%} of the "
                f"validation images (at least {MIN_AGREEMENT:.0%} required); calibrate on more images or keep FP32")
    return None


def speed(fn: Callable[[np.ndarray], np.ndarray], sample: np.ndarray, batch: int | None, budget_s: float) -> dict:
    """Batch-1 latency (median, ms) and the best throughput (images/s) over batch sizes;
    a model with a fixed batch is timed at that batch only."""
    def timed(x: np.ndarray, runs: int) -> list[float]:
        fn(x)  # warm-up: first runs allocate and may compile
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
        return times

    sizes = (batch,) if batch else BATCHES
    runs = max(3, int(budget_s / max(timed(_tile(sample, sizes[0]), 1)[0], 1e-4) / (len(sizes) + 1)))
    result = {}
    if sizes[0] == 1:
        result["latency_ms"] = 1000 * statistics.median(timed(_tile(sample, 1), min(runs, 200)))
    best = 0.0
    for b in sizes:
        t = min(timed(_tile(sample, b), max(2, min(runs // b, 50))))
        best_b = b / t
        if best_b > best:
            best, result["best_batch"] = best_b, b
    result["throughput"] = best
    return result


def _tile(sample: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(sample, (n, *sample.shape[1:])))
