"""The numbers that prove a conversion: outputs of the source engine, the plain ONNX export
and the converted model on the validation split, compared; and the speed of each, measured
the same way with the same thread count.

The gate (``judge``) gives one of three verdicts, with the evidence it rests on:

- An **FP32** model must match the source engine on every image: outputs within 1e-4 of the
  output scale (the largest absolute output). Rounding is the only difference allowed, so one
  image is enough to fail it.
- A **reduced precision** model (FP16, INT8) only has to agree with the source on the top class
  of most images: 98% of them (``MIN_AGREEMENT``). The validation split is a sample, so the
  gate reads the share it measured with a 95% confidence interval (exact binomial,
  Clopper-Pearson) and says **passed** only when at least 98% agree *and* the interval shows at
  least 95% (``AGREEMENT_FLOOR``) agree; **failed** only when the whole interval is below 98%;
  otherwise **not judged**: too few images to tell, and the model is kept but not vouched for.
  A pass needs at least 59 images (all agreeing); one disagreeing image in ten fails nothing.
- **Counting**: the same with the counts' drift (how far the counts move, on average, as a
  share of the mean count): at most 5%, with a 95% upper bound of at most 10% over at least
  20 images to pass; failed when the 95% lower bound is over 5%.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import numpy as np

from labkit.tasks import COUNTING

FP32_TOLERANCE = 1e-4
CONFIDENCE = 0.95           # one-sided, for each bound of the intervals below
MIN_AGREEMENT = 0.98        # the bar a reduced-precision classifier must reach on the images measured
AGREEMENT_FLOOR = 0.95      # ... and what its interval must show at the least, to pass
MAX_COUNT_DRIFT = 0.05      # the bar for counting: mean count drift
COUNT_DRIFT_CEILING = 0.10  # ... and the most its interval may allow, to pass
MIN_COUNT_IMAGES = 20       # fewer counts say too little about their spread to pass
PASSED, FAILED, NOT_JUDGED = "passed", "failed", "not judged"
VERDICT_LABELS = {PASSED: "", NOT_JUDGED: " (not judged)", FAILED: " (FAILED, not kept)"}  # after a model's name
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
    row = {"images": len(out), "max_abs_diff": diff, "relative_diff": diff / scale}
    if task == COUNTING:
        counts, ref_counts = out.reshape(len(out), -1).sum(1), reference.reshape(len(reference), -1).sum(1)
        row["count_diff"] = float(np.abs(counts - ref_counts).mean())
        drift = np.abs(counts - ref_counts) / max(float(np.abs(ref_counts).mean()), 1e-9)  # per image
        row["count_drift"] = float(drift.mean())
        row["count_drift_std"] = float(drift.std(ddof=1)) if len(drift) > 1 else 0.0
        if truth is not None:
            row["mae"] = float(np.abs(counts - truth).mean())
    else:
        agree = out.argmax(1) == reference.argmax(1)
        row["top1_agreement"] = float(agree.mean())
        row["disagreements"] = int((~agree).sum())
        if truth is not None:
            row["accuracy"] = float((out.argmax(1) == truth).mean())
    return row


def judge(task: str, precision: str, row: dict) -> dict:
    """The gate's ``{"verdict", "reason", "evidence"}`` for a converted model's row of the
    report (see the module's docstring). ``reason`` is what a learner reads."""
    if precision == "fp32":
        evidence = {"images": row["images"], "relative_diff": row["relative_diff"], "allowed": FP32_TOLERANCE}
        if row["relative_diff"] > FP32_TOLERANCE:
            return _verdict(FAILED, f"FP32 outputs differ from the source engine by {row['relative_diff']:.2e} of the "
                            f"output scale (allowed {FP32_TOLERANCE:.0e}); this is more than rounding: report it",
                            evidence)
        return _verdict(PASSED, f"FP32 outputs match the source engine on all {row['images']} images "
                        f"(within {row['relative_diff']:.1e} of the output scale)", evidence)
    if task == COUNTING:
        return _judge_counts(precision.upper(), row)
    return _judge_agreement(precision.upper(), row)


def agreement_interval(agreeing: int, images: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of the true agreement, each bound at CONFIDENCE."""
    from scipy.stats import binomtest

    ci = binomtest(agreeing, images).proportion_ci(confidence_level=2 * CONFIDENCE - 1, method="exact")
    return float(ci.low), float(ci.high)


def images_to_pass() -> int:
    """The fewest images on which a classifier can pass: all n agreeing, the exact interval's
    low end is (1 - CONFIDENCE) ** (1 / n), which must reach AGREEMENT_FLOOR."""
    return math.ceil(math.log(1 - CONFIDENCE) / math.log(AGREEMENT_FLOOR))


def _judge_agreement(name: str, row: dict) -> dict:
    n, differ = row["images"], row["disagreements"]
    low, high = agreement_interval(n - differ, n)
    evidence = {"images": n, "disagreements": differ, "agreement": row["top1_agreement"], "confidence": CONFIDENCE,
                "interval": [low, high], "required": MIN_AGREEMENT, "floor": AGREEMENT_FLOOR}
    measured = (f"{name} top-1 agrees with the source engine on {n - differ} of {n} validation images "
                f"({row['top1_agreement']:.1%}; {CONFIDENCE:.0%} confidence interval {low:.1%} to {high:.1%})")
    if high < MIN_AGREEMENT:
        return _verdict(FAILED, f"{measured}: surely under the {MIN_AGREEMENT:.0%} required; "
                        "train longer, or serve the FP32 conversion", evidence)
    if row["top1_agreement"] >= MIN_AGREEMENT and low >= AGREEMENT_FLOOR:
        return _verdict(PASSED, measured, evidence)
    return _verdict(NOT_JUDGED, f"{measured}: too few images to tell whether it reaches {MIN_AGREEMENT:.0%} "
                    f"(a pass needs the interval above {AGREEMENT_FLOOR:.0%}: at least {images_to_pass()} images); "
                    "kept, not vouched for: judge it on a larger validation split", evidence)


def _judge_counts(name: str, row: dict) -> dict:
    from scipy.stats import t

    n, drift = row["images"], row["count_drift"]
    half = float(t.ppf(CONFIDENCE, n - 1)) * row["count_drift_std"] / np.sqrt(n) if n > 1 else float("inf")
    low, high = max(0.0, drift - half), drift + half
    evidence = {"images": n, "count_drift": drift, "confidence": CONFIDENCE, "interval": [low, high],
                "allowed": MAX_COUNT_DRIFT, "ceiling": COUNT_DRIFT_CEILING, "min_images": MIN_COUNT_IMAGES}
    measured = (f"{name} counts drift from the source engine's by {drift:.1%} of the mean count on {n} validation "
                f"images ({CONFIDENCE:.0%} confidence interval {low:.1%} to {high:.1%})")
    if low > MAX_COUNT_DRIFT:
        return _verdict(FAILED, f"{measured}: surely over the {MAX_COUNT_DRIFT:.0%} allowed; "
                        "train longer, or serve the FP32 conversion", evidence)
    if drift <= MAX_COUNT_DRIFT and high <= COUNT_DRIFT_CEILING and n >= MIN_COUNT_IMAGES:
        return _verdict(PASSED, measured, evidence)
    return _verdict(NOT_JUDGED, f"{measured}: too few images to tell whether it stays within {MAX_COUNT_DRIFT:.0%} "
                    f"(a pass needs at least {MIN_COUNT_IMAGES} images and the interval under "
                    f"{COUNT_DRIFT_CEILING:.0%}); kept, not vouched for: judge it on a larger validation split",
                    evidence)


def _verdict(verdict: str, reason: str, evidence: dict) -> dict:
    return {"verdict": verdict, "reason": reason, "evidence": evidence}


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
