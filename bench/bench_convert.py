"""Stage 3 benchmark: how much faster the converted models are, at batch 1, on this CPU.

Trains (or reuses, with --home) one job per model on workshop data, converts each with the
onnx-ort-fp32 and onnx-ort-int8 templates, then times in this process, interleaved round by
round (these machines are noisy), with the same thread count for all:

    source engine (eager PyTorch) | plain ONNX export | ORT FP32 template | ORT INT8 template

and prints batch-1 latency, the ratios, and INT8's top-1 agreement with FP32 on the validation
split. The bars (ResNet-50): ORT FP32 >= 1.5x faster than PyTorch eager; INT8 >= 2x faster
than ORT FP32 with >= 99% top-1 agreement.

    .venv/bin/python bench/bench_convert.py [--home DIR] [--models resnet,ghostnet,mcnn] [--rounds 7]
"""
import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from results import figure, save

MODELS = {  # name -> (algorithm, dataset kind, hyper-parameters: enough training for confident outputs)
    "resnet": ("ResNet_v1_50", "flowers", {}),  # the workshop recipe: 83% validation accuracy
    "ghostnet": ("GhostNet", "flowers", {"epochs": "10"}),
    "mcnn": ("MCNN", "crowd", {"epoch_size": "4"}),
}


def trained_job(key: str) -> str:
    from labkit import data, train

    algorithm, kind, hyper = MODELS[key]
    name = f"bench-{key}"
    if any(r["job"] == name and r["state"] == "COMPLETED" for r in train.list_jobs()):
        return name
    dataset = data.ensure_version(kind, profile="workshop", log=print)
    t0 = time.perf_counter()
    rec = train.create(algorithm, "pytorch", dataset, name, hyper, profile="workshop", wait=True, log=print)
    assert rec["state"] == "COMPLETED", rec.get("reason")
    print(f"trained {name} in {time.perf_counter() - t0:.0f} s: {rec['metrics']}")
    return name


def timed_rounds(fns: dict, x: np.ndarray, rounds: int, per_round: int) -> dict:
    """Median batch-1 latency (ms) of each function, the rounds interleaved: A B C, A B C, ..."""
    for fn in fns.values():  # warm-up
        for _ in range(3):
            fn(x)
    medians = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times = []
            for _ in range(per_round):
                t = time.perf_counter()
                fn(x)
                times.append(time.perf_counter() - t)
            medians[name].append(statistics.median(times))
    return {name: 1000 * statistics.median(v) for name, v in medians.items()}


def bench(key: str, rounds: int, threads: int) -> dict:
    import torch

    from labkit import convert, train
    from labkit.algorithms import inputs
    from labkit.convert import pytorch as engine
    from labkit.cpu import onnx_session
    from labkit.tasks import COUNTING

    job = trained_job(key)
    tasks = {}
    for template in ("onnx-ort-fp32", "onnx-ort-int8"):
        rec = convert.create(job, template, f"{job}-{template[-4:]}", profile="workshop", threads=threads,
                             log=lambda *_: None)
        assert rec["state"] == "COMPLETED", rec.get("reason")
        tasks[template] = convert.model_path(f"{rec['task']}@{rec['version']}")
    run = Path(train.output_dir(job)).parent
    info = json.loads((run / "output" / "model.json").read_text())
    torch.set_num_threads(threads)
    net = engine.load(info, run / "output" / "checkpoints" / engine.CHECKPOINT)

    sessions = {"plain ONNX": onnx_session(run / "onnx" / "model.onnx", threads),
                "ORT FP32": onnx_session(tasks["onnx-ort-fp32"], threads),
                "ORT INT8": onnx_session(tasks["onnx-ort-int8"], threads)}
    fns = {"PyTorch eager": lambda x: engine.predict(net, x)}
    fns.update({k: (lambda s: lambda x: s.run(None, {"images": x})[0])(s) for k, s in sessions.items()})
    counting = info["task"] == COUNTING
    load = inputs.load_counting if counting else inputs.load_classification
    images, _ = load(Path(train.show(job)["data_url"]), "val", info["image_size"])
    x_val = inputs.normalize_gray(images) if counting else inputs.normalize(images)
    latency = timed_rounds(fns, x_val[:1], rounds, per_round=20)
    fp32 = np.concatenate([fns["ORT FP32"](x_val[i:i + 1]) for i in range(len(x_val))])
    int8 = np.concatenate([fns["ORT INT8"](x_val[i:i + 1]) for i in range(len(x_val))])
    if counting:
        c32, c8 = fp32.reshape(len(fp32), -1).sum(1), int8.reshape(len(int8), -1).sum(1)
        drift = np.abs(c8 - c32).mean() / np.abs(c32).mean()
        agreement, value = f"count drift {drift:.2%}", figure(f"{key}.int8.count_drift", "INT8's mean count drift from FP32",
                                                             drift, "fraction", images=len(x_val))
    else:
        agree = (fp32.argmax(1) == int8.argmax(1)).mean()
        agreement, value = f"top-1 agreement {agree:.1%}", figure(f"{key}.int8.agreement", "INT8's top-1 agreement with FP32",
                                                                 agree, "fraction", images=len(x_val))
    figures = [figure(f"{key}.latency.{form}", f"{key} at batch 1 in {form}", ms / 1000, "s", image_size=info["image_size"])
               for form, ms in latency.items()]
    return {"model": key, "size": info["image_size"], "latency": latency, "agreement": agreement,
            "val": len(x_val), "figures": [*figures, value]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", help="a workspace to keep the trained jobs in (default: a new temporary one)")
    p.add_argument("--models", default="resnet,ghostnet,mcnn")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    os.environ["LABKIT_HOME"] = args.home or tempfile.mkdtemp(prefix="labkit-bench-convert-")
    results = [bench(key, args.rounds, args.threads) for key in args.models.split(",")]
    print(f"\nbatch-1 latency, median of {args.rounds} interleaved rounds, {args.threads} threads:")
    print(f"{'model':<10} {'px':>4} {'PyTorch':>9} {'plain ONNX':>11} {'ORT FP32':>9} {'ORT INT8':>9} "
          f"{'FP32 vs PyTorch':>16} {'INT8 vs FP32':>13}  INT8 vs FP32 on the validation split")
    for r in results:
        lat = r["latency"]
        print(f"{r['model']:<10} {r['size']:>4} {lat['PyTorch eager']:>7.2f}ms {lat['plain ONNX']:>9.2f}ms "
              f"{lat['ORT FP32']:>7.2f}ms {lat['ORT INT8']:>7.2f}ms {lat['PyTorch eager'] / lat['ORT FP32']:>15.2f}x "
              f"{lat['ORT FP32'] / lat['ORT INT8']:>12.2f}x  {r['agreement']} ({r['val']} images)")
    save("convert", [f for r in results for f in r["figures"]], profile="workshop",
         arguments={k: v for k, v in vars(args).items() if k != "home"})


if __name__ == "__main__":
    main()
