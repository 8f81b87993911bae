"""The workshop bars: in the workshop profile on this CPU, does each engine reach them in time?

- ResNet-50 on 5-class flowers: at least 80% validation accuracy (chance: 20%);
- MCNN on crowd scenes: at most half the MAE of predicting the training set's mean count;
- each within 10 minutes, measured from `labkit train create` to the job's end.

Each job runs alone (2 cores). Prints the figures and the ratio to each baseline, for each
training seed, with the time labkit estimated before the job (``labkit.train.timing``), then
the spread over seeds (min / median / max): a bar must hold in every seed. A job's minutes run
from `labkit train create` to its end; the calibration behind its estimate runs before.
The CPU is printed first; set ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 to measure
PyTorch as on a laptop without AVX-512. ``--precisions fp32 bf16`` trains each seed in each
precision, one after the other (bf16 needs a CPU that computes it natively): the figures of
``labkit.train.speedups.BF16_KEEPS_ACCURACY``. ``--hp KEY=VALUE`` changes the recipe of every
job (e.g. a shorter ``learning_rate_strategy``); such a run's results go to
``bench/results/workshop-recipe/``, beside the default recipe's.

    .venv/bin/python bench/bench_workshop.py [--engine pytorch|mindspore|both] [--task resnet|mcnn|both]
                                             [--seeds 0 1 2] [--mcnn-devices 2] [--precisions fp32 bf16]
                                             [--hp KEY=VALUE ...]
"""
import argparse
import os
import shutil
import statistics
import tempfile
import time

from results import figure, save

from labkit.algorithms.configs import AUTO, PRECISIONS
from labkit.errors import LabkitError

LIMIT_S = 600


def run(algorithm: str, engine: str, dataset: str, seed: int, device_num: int = 1,
        precision: str = "auto", recipe: dict | None = None) -> dict | None:
    """One workshop job's figure: its accuracy, or its MAE over the mean-baseline MAE, with its minutes."""
    from labkit import train

    name = f"{algorithm.lower()}-{engine}-n{device_num}-{precision}-s{seed}"
    hyper = {**(recipe or {}), "seed": str(seed), "precision": precision}
    try:  # the calibration runs here, before the job's clock starts
        guess = train.estimate(algorithm, engine, dataset, hyper, "workshop", device_num, log=lambda *_: None)
    except LabkitError as exc:  # e.g. bf16 asked of MindSpore, or of a CPU without native BF16
        print(f"{name:<26} not run: {exc.message}", flush=True)
        return None
    t0 = time.perf_counter()
    rec = train.create(algorithm, engine, dataset, name, hyper, device_num=device_num,
                       profile="workshop", wait=True, log=lambda *_: None)
    wall = time.perf_counter() - t0
    if rec["state"] != "COMPLETED":
        print(f"{name:<26} {rec['state']}: {rec.get('reason')}")
        return None
    m, epochs = rec["metrics"], len(train.metrics(name))
    how = {"epochs": epochs, "layout": rec["hyper"]["layout"], "precision": rec["hyper"]["precision"],
           "recipe": recipe or {}}
    if algorithm == "MCNN":
        ratio = m["mae"] / m["mean_baseline_mae"]
        ok = ratio <= 0.5 and wall <= LIMIT_S
        print(f"{name:<26} MAE {m['mae']:6.1f} = {ratio:.2f}x the predict-the-mean MAE ({m['mean_baseline_mae']:.1f}), "
              f"{epochs} epochs in {wall / 60:4.1f} min (estimated {guess / 60:4.1f})  -> {'meets' if ok else 'misses'} "
              f"the bar (<= 0.5x, <= 10 min)",
              flush=True)
        return figure(f"{name}", f"MCNN's MAE over the predict-the-mean MAE, {engine}, seed {seed}", ratio, "x",
                      minutes=wall / 60, estimated_minutes=guess / 60, bar=ok, **how)
    ok = m["accuracy"] >= 0.8 and wall <= LIMIT_S
    print(f"{name:<26} val accuracy {m['accuracy']:.1%} = {m['accuracy'] / 0.2:.1f}x chance, best epoch "
          f"{m['best_epoch']} of {epochs}, {wall / 60:4.1f} min (estimated {guess / 60:4.1f})  "
          f"-> {'meets' if ok else 'misses'} the bar "
          f"(>= 80%, <= 10 min)", flush=True)
    return figure(f"{name}", f"ResNet-50's validation accuracy, {engine}, seed {seed}", m["accuracy"], "fraction",
                  minutes=wall / 60, estimated_minutes=guess / 60, best_epoch=m["best_epoch"], bar=ok, **how)


def spread(label: str, results: list) -> list[dict]:
    done = [r for r in results if r]
    if not done:
        return []

    def mmm(values):
        return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"

    print(f"{label:<26} over {len(done)} seeds (min / median / max): figure {mmm([r['value'] for r in done])}, "
          f"minutes {mmm([r['minutes'] for r in done])}", flush=True)
    return done


def side_by_side(label: str, args, job) -> list[dict]:
    """Each seed's job in each precision, one after the other (so a slow spell of the machine
    falls on both alike), then the spread of each precision over the seeds."""
    done = {precision: [] for precision in args.precisions}
    for seed in args.seeds:
        for precision in args.precisions:
            done[precision].append(job(seed, precision))
    return [f for precision, results in done.items() for f in spread(f"{label}-{precision}", results)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=("pytorch", "mindspore", "both"), default="both")
    ap.add_argument("--task", choices=("resnet", "mcnn", "both"), default="both")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (the data stays the same)")
    ap.add_argument("--mcnn-devices", type=int, default=1,
                    help="data-parallel processes for MCNN (the crowd lab trains MindSpore's with 2)")
    ap.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=[AUTO],
                    help="train each seed in each of these precisions")
    ap.add_argument("--hp", nargs="+", default=[], metavar="KEY=VALUE", help="hyper-parameters of every job")
    args = ap.parse_args()
    if any("=" not in pair for pair in args.hp):
        ap.error("--hp takes KEY=VALUE pairs, e.g. learning_rate_strategy=1:0.004,11:0.02,15:0.002")
    args.recipe = dict(pair.split("=", 1) for pair in args.hp)
    if args.recipe.keys() & {"seed", "precision"}:
        ap.error("--hp cannot set seed or precision: --seeds and --precisions do")
    mine = "LABKIT_HOME" not in os.environ  # a workspace of our own is removed at the end (gigabytes)
    os.environ.setdefault("LABKIT_HOME", tempfile.mkdtemp(prefix="labkit-bench-workshop-"))
    try:
        measure(args)
    finally:
        if mine:
            shutil.rmtree(os.environ["LABKIT_HOME"], ignore_errors=True)


def measure(args) -> None:
    from labkit import cpu, data

    engines = ("pytorch", "mindspore") if args.engine == "both" else (args.engine,)
    recipe = args.recipe
    print(f"workshop profile on {cpu.summary()}, workspace {os.environ['LABKIT_HOME']}", flush=True)
    figures = []
    if args.task in ("resnet", "both"):
        flowers = data.ensure_version("flowers", profile="workshop", log=lambda *_: None)
        for engine in engines:
            figures += side_by_side(f"resnet50-{engine}", args, lambda seed, precision: run(
                "ResNet50", engine, flowers, seed, precision=precision, recipe=recipe))
    if args.task in ("mcnn", "both"):
        crowd = data.ensure_version("crowd", profile="workshop", log=lambda *_: None)
        for engine in engines:
            figures += side_by_side(f"mcnn-{engine}-n{args.mcnn_devices}", args, lambda seed, precision: run(
                "MCNN", engine, crowd, seed, args.mcnn_devices, precision, recipe))
    save("workshop-recipe" if recipe else "workshop", figures, profile="workshop", seeds=args.seeds, arguments=vars(args))


if __name__ == "__main__":
    main()
