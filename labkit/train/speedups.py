"""How a training job computes on this machine: the activations' memory layout and the
arithmetic's precision, checked when asked for and decided for ``auto``. Neither changes the
network, its checkpoints or its exports; both change its speed (docs/BENCHMARKS.md measures how
much, per CPU).

Layout: the PyTorch engine trains in NCHW or channels-last (NHWC); which is faster depends on
the CPU and the network. The machine's time calibration (``labkit.train.timing``) times each,
and ``auto`` takes the faster one it found, or NCHW while the job's shape has not been timed here
(notebook 02 and ``labkit run`` time it before they create a job). MindSpore's CPU kernels take
NCHW only.

Precision: bf16 (mixed precision) only where the CPU computes BF16 natively; emulated, it is
slower than FP32. ``auto`` chooses it only for the models in ``BF16_KEEPS_ACCURACY``: those
whose accuracy bars were measured to hold in bf16.
"""
from __future__ import annotations

from labkit import cpu
from labkit.algorithms.configs import AUTO, BF16, ENGINE_LAYOUTS, ENGINE_PRECISIONS, FP32, NCHW, not_offered
from labkit.errors import LabkitError

# Architectures measured to meet their accuracy bars in bf16 in 3 of 3 seeds, with where
# (bench/bench_workshop.py --precisions fp32 bf16, one process a job; docs/BENCHMARKS.md, "BF16 and
# the bars"); auto takes bf16 for their data-parallel jobs too. GhostNet is not here: it trained
# slower in bf16 than in FP32 on that CPU (bench/bench_sol.py).
BF16_KEEPS_ACCURACY: dict[str, str] = {
    "resnet50": "flowers >= 80%: 81.0 / 82.0 / 82.5% over seeds (FP32 82.5 / 84.0 / 84.0%), AMD EPYC Zen 4, 2026-12-07",
    "mcnn": "crowd MAE <= 0.5x the mean-count MAE: 0.27-0.34x (FP32 0.27-0.33x), AMD EPYC Zen 4, 2026-12-07",
}


def precision(card, engine: str, hp: dict, device: str = "cpu", features: list[str] | None = None) -> dict:
    """``hp`` with its precision decided: bf16 asked for on a CPU without native BF16 is an
    error; ``auto`` is bf16 on such a CPU for a model that keeps its accuracy in it, else FP32."""
    if card.custom:  # a custom algorithm computes as its code says
        return hp
    problem = not_offered(engine, hp)
    if problem:
        raise LabkitError(problem, "leave layout and precision at auto: labkit chooses what this engine offers")
    if device != "cpu":
        return {**hp, "precision": FP32} if hp["precision"] == AUTO else hp
    features = cpu.describe()["features"] if features is None else features
    native = cpu.native_bf16(features)
    if hp["precision"] == BF16 and not native:
        which = ("labkit cannot read this system's CPU features" if features is None else
                 "this one would emulate it, slower than FP32")
        raise LabkitError(f"bf16 needs a CPU that computes BF16 natively (AVX-512 BF16 or AMX-BF16): {which}",
                          "use precision=fp32, or auto (labkit doctor names this CPU's native precisions)")
    if hp["precision"] == AUTO:
        keeps = card.arch in BF16_KEEPS_ACCURACY and BF16 in ENGINE_PRECISIONS[engine]
        hp = {**hp, "precision": BF16 if native and keeps else FP32}
    return hp


def settle(card, engine: str, hp: dict, device: str = "cpu", device_num: int = 1, log=print,
           nnodes: int = 1) -> dict:
    """``hp`` with layout and precision decided for this machine (what a job records and runs).
    A job over several machines computes alike on each, whatever each one's CPU: NCHW and FP32
    unless asked otherwise (data parallelism needs every rank's parameters in the same layout)."""
    from labkit.train import timing

    if card.custom:
        return hp
    if nnodes > 1:
        hp = {**hp, **{k: v for k, v in (("layout", NCHW), ("precision", FP32)) if hp.get(k) == AUTO}}
    asked = hp.get("precision")
    hp = precision(card, engine, hp, device)
    if asked == AUTO and hp["precision"] == BF16:  # a learner comparing accuracies with FP32 laptops should know
        log(f"precision {BF16}: this CPU computes BF16 natively, and {card.arch} keeps its accuracy in it "
            f"(measured: {BF16_KEEPS_ACCURACY[card.arch]}); precision={FP32} trains in FP32")
    if hp.get("layout") != AUTO:
        return hp
    if device != "cpu" or len(ENGINE_LAYOUTS[engine]) == 1:
        return {**hp, "layout": NCHW}
    measured = timing.timed(engine, card.arch, card.task, hp["image_size"], hp["batch_size"], device_num,
                            hp.get("train_layers", "all"), hp.get("precision", FP32))
    if measured is None:
        log(f"layout {NCHW}: this job's shape has not been timed on this machine yet (an estimate times it: "
            "notebook 02, labkit run, train.expected_time; then layout=auto takes the faster layout)")
        return {**hp, "layout": NCHW}
    if measured.layout != NCHW:
        gain = sum(measured.layouts[NCHW]) / sum(measured.layouts[measured.layout])
        log(f"layout {measured.layout}: {gain:.2f}x as fast as {NCHW} on this machine, an image trained and one "
            "evaluated (its time calibration)")
    return {**hp, "layout": measured.layout}
