"""Accuracy on the real flower photos: from scratch against the two-step lesson from ImageNet
weights, per seed, with the minutes each took. The machines labkit is built on cannot reach the
photos or the weights, so this is the measurement the docs call for and do not quote; run it
where the internet (or a room's mirror, LABKIT_MIRROR) is reachable:

    .venv/bin/python bench/bench_real.py [--engines pytorch mindspore] [--seeds 0 1 2] [--profile workshop]
    .venv/bin/python bench/bench_real.py --mirror FOLDER    # a folder holding flower_photos.tgz, fetched by other means

Each run works in a fresh workspace of its own; the downloads stay in labkit's cache.
"""
import argparse
import os
import tempfile
import time

from results import figure, save


def train_seconds(record: dict) -> float:
    from datetime import datetime

    t = record["timestamps"]
    return (datetime.fromisoformat(t[record["state"]]) - datetime.fromisoformat(t["CREATING"])).total_seconds()


def one(algorithm: str, engine: str, dataset: str, seed: int, profile: str) -> list[dict]:
    """The job from scratch, then the two steps from ImageNet weights: their accuracy and minutes."""
    from labkit import train

    quiet = lambda *_: None  # noqa: E731
    tag = f"{engine}-{seed}"
    scratch = train.create(algorithm, engine, dataset, f"scratch-{tag}", {"seed": seed}, profile=profile, wait=True,
                           log=quiet)
    features = train.create(algorithm, engine, dataset, f"imagenet-{tag}", {"seed": seed, "pretrained": "imagenet"},
                            profile=profile, wait=True, log=quiet)
    tuned = train.fine_tune(f"imagenet-{tag}", log=quiet)
    out = []
    for what, jobs in (("scratch", [scratch]), ("features", [features]), ("fine_tune", [features, tuned])):
        last = jobs[-1]
        accuracy = last.get("metrics", {}).get("accuracy")
        minutes = sum(train_seconds(j) for j in jobs) / 60
        print(f"{engine:<9} seed {seed}  {what:<9} {last['state']:<9} accuracy "
              f"{'-' if accuracy is None else f'{100 * accuracy:.1f}%'}  {minutes:.1f} min", flush=True)
        out.append(figure(f"{engine}.{seed}.{what}", f"{algorithm} on the real photos, {what}, {engine}, seed {seed}",
                          100 * (accuracy or 0), "%", minutes=round(minutes, 2), state=last["state"], seed=seed,
                          engine=engine))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", nargs="+", default=["pytorch"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--profile", default="workshop")
    p.add_argument("--algorithm", default="ResNet50")
    p.add_argument("--mirror", help="a room's server or a folder holding the files (checked as any download)")
    args = p.parse_args()
    os.environ["LABKIT_HOME"] = tempfile.mkdtemp(prefix="labkit-bench-real-")

    from labkit import cpu, data

    started = time.perf_counter()
    data.download("flowers-photos", mirror=args.mirror)
    print(f"{cpu.summary()}; the photos in {time.perf_counter() - started:.0f} s", flush=True)
    figures = []
    for seed in args.seeds:
        dataset = f"flowers-photos@{data.publish('flowers-photos', seed=seed)['version']}"
        for engine in args.engines:
            figures += one(args.algorithm, engine, dataset, seed, args.profile)
    save("real", figures, profile=args.profile, seeds=args.seeds, arguments=vars(args))


if __name__ == "__main__":
    main()
