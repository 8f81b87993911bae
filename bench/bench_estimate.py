"""Time estimates against measured runs: for each lab, in each profile, labkit's estimate before
the run (calibrated on this machine, as `labkit run` prints it) against the run's measured
time; the same for each training job the lab started, with its result (the lab's bars); and the
other stages' seconds per stage (what `timing.OTHER_STAGE_SECONDS` stands for). An estimate is
good within +-25%.

Each lab runs alone in a workspace of its own (2 cores: nothing else should run). Each job
also shows its peak memory (the largest process) and the seconds of each epoch it trained;
``--max-epochs 1`` tries a profile's sizes for one epoch (the full profile on a laptop).

    .venv/bin/python bench/bench_estimate.py [--profiles quick workshop] [--labs LAB ...] [--max-epochs N]
"""
import argparse
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from bench_sizes import size
from results import figure, save

GOOD = 0.25
SHOWN = ("accuracy", "mae", "mean_baseline_mae")  # each job's result, next to its time: the lab's bars


def _seconds(record: dict, start: str, end: str) -> float:
    t = record["timestamps"]
    return (datetime.fromisoformat(t[end]) - datetime.fromisoformat(t[start])).total_seconds()


def verdict(estimated: float, measured: float) -> str:
    ratio = measured / estimated
    return f"measured/estimated {ratio:4.2f} {'within' if abs(ratio - 1) <= GOOD else 'OUTSIDE'} +-25%"


def measure(lab: str, profile: str, out: str, max_epochs: int | None) -> list[dict]:
    """Run the lab, print its estimate against its time and each job's, and return them as figures."""
    from labkit import labs, train
    from labkit.train import timing

    rec = labs.run(lab, profile=profile, out=out, max_epochs=max_epochs, log=lambda *_: None)
    print(f"{lab:<28} {profile:<9} estimated {rec['estimate_seconds']:6.0f} s, measured {rec['seconds']:6.0f} s: "
          f"{verdict(rec['estimate_seconds'], rec['seconds'])}", flush=True)
    figures = [figure(f"{lab}.lab", f"the {lab} lab, {profile}", rec["seconds"], "s",
                      estimated=rec["estimate_seconds"], lab=lab)]
    trained = 0.0
    for job in sorted(train.list_jobs(), key=lambda r: r["timestamps"]["CREATING"]):
        took = _seconds(job, "CREATING", job["state"])
        guess = timing.for_dataset(job["algorithm"], job["engine"], job["dataset"], job["hyper"], job["profile"],
                                     job["device_num"], log=lambda *_: None)
        trained += took
        shown = ", ".join(f"{k} {v:.4g}" for k, v in job.get("metrics", {}).items() if k in SHOWN)
        print(f"  job {job['job']:<34} estimated {guess:6.0f} s, measured {took:6.0f} s: {verdict(guess, took)}; "
              f"{job['state']} {shown}", flush=True)
        figures.append(figure(f"{lab}.job.{job['job']}", f"the {job['algorithm']} job of the {lab} lab, {job['engine']}",
                              took, "s", estimated=guess, lab=lab, job=job["job"],
                              metrics={k: v for k, v in job.get("metrics", {}).items() if k in SHOWN}))
        epochs = ", ".join(f"{row['seconds']:.0f}" for row in train.metrics(f"{job['job']}@{job['version']}"))
        print(f"    peak memory {job.get('peak_memory_mb', '?')} MB; seconds per epoch: {epochs or 'none'}", flush=True)
    others = len(rec["stages"]) - 1
    print(f"  other stages: {(rec['seconds'] - trained) / others:.0f} s each on average "
          f"(timing.OTHER_STAGE_SECONDS[{profile!r}] = {timing.OTHER_STAGE_SECONDS[profile]}); each stage: "
          + ", ".join(f"{st['notebook'][:2]} {st['seconds']:.0f} s" for st in rec["stages"]), flush=True)
    return figures


def main() -> None:
    from labkit import cpu, labs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["quick"], choices=("quick", "workshop", "full"))
    ap.add_argument("--labs", nargs="+", default=sorted(labs.recipes()))
    ap.add_argument("--max-epochs", type=int, help="cut every training job to N epochs (labkit run --max-epochs)")
    args = ap.parse_args()
    print(f"on {cpu.summary()}", flush=True)
    for profile in args.profiles:
        figures = []
        for lab in args.labs:
            # each lab in a fresh workspace (as a learner starts), removed after: gigabytes
            os.environ["LABKIT_HOME"] = home = tempfile.mkdtemp(prefix="labkit-bench-estimate-")
            try:
                figures += measure(lab, profile, os.path.join(home, "runs"), args.max_epochs)
                figures.append(figure(f"{lab}.disk", f"the workspace the {lab} lab leaves, {profile}", size(Path(home)),
                                      "bytes", lab=lab))
            finally:
                shutil.rmtree(home, ignore_errors=True)
        cut = f"-{args.max_epochs}-epochs" if args.max_epochs else ""
        save(f"estimate-{profile}{cut}", figures, profile=profile, arguments=vars(args))


if __name__ == "__main__":
    main()
