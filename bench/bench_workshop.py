"""The workshop bars: in the workshop profile on this CPU, does each engine reach them in time?

- ResNet-50 on 5-class flowers: at least 80% validation accuracy (chance: 20%);
- MCNN on crowd scenes: at most half the MAE of predicting the training set's mean count;
- each within 10 minutes, measured from `labkit train create` to the job's end.

Each job runs alone (2 cores). Prints the figures and the ratio to each baseline.

    .venv/bin/python bench/bench_workshop.py [--engine pytorch|mindspore|both] [--task resnet|mcnn|both]
"""
import argparse
import os
import tempfile
import time

LIMIT_S = 600


def run(algorithm: str, engine: str, dataset: str) -> None:
    from labkit import train

    name = f"{algorithm.lower()}-{engine}"
    t0 = time.perf_counter()
    rec = train.create(algorithm, engine, dataset, name, profile="workshop", wait=True, log=lambda *_: None)
    wall = time.perf_counter() - t0
    if rec["state"] != "COMPLETED":
        print(f"{name:<18} {rec['state']}: {rec.get('reason')}")
        return
    m, epochs = rec["metrics"], len(train.metrics(name))
    if algorithm == "MCNN":
        ratio = m["mae"] / m["mean_baseline_mae"]
        ok = ratio <= 0.5 and wall <= LIMIT_S
        print(f"{name:<18} MAE {m['mae']:6.1f} = {ratio:.2f}x the predict-the-mean MAE ({m['mean_baseline_mae']:.1f}), "
              f"{epochs} epochs in {wall / 60:4.1f} min  -> {'meets' if ok else 'misses'} the bar (<= 0.5x, <= 10 min)")
    else:
        ok = m["accuracy"] >= 0.8 and wall <= LIMIT_S
        print(f"{name:<18} val accuracy {m['accuracy']:.1%} = {m['accuracy'] / 0.2:.1f}x chance, best epoch "
              f"{m['best_epoch']} of {epochs}, {wall / 60:4.1f} min  -> {'meets' if ok else 'misses'} the bar "
              f"(>= 80%, <= 10 min)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=("pytorch", "mindspore", "both"), default="both")
    ap.add_argument("--task", choices=("resnet", "mcnn", "both"), default="both")
    args = ap.parse_args()
    os.environ.setdefault("LABKIT_HOME", tempfile.mkdtemp(prefix="labkit-bench-workshop-"))
    from labkit import data

    engines = ("pytorch", "mindspore") if args.engine == "both" else (args.engine,)
    print(f"workshop profile, {os.cpu_count()} cores, workspace {os.environ['LABKIT_HOME']}")
    if args.task in ("resnet", "both"):
        flowers = data.ensure_version("flowers", profile="workshop", log=lambda *_: None)
        for engine in engines:
            run("ResNet50", engine, flowers)
    if args.task in ("mcnn", "both"):
        crowd = data.ensure_version("crowd", profile="workshop", log=lambda *_: None)
        for engine in engines:
            run("MCNN", engine, crowd)


if __name__ == "__main__":
    main()
