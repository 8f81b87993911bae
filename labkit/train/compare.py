"""Training jobs side by side (``labkit train compare``), the seeds' comparison of training-job
versions: the hyper-parameters that differ, and for each job its data, engine, epochs, time,
pace and best and final metrics. ``plots.compare_curves`` overlays their learning curves.

    from labkit import plots, train
    table = train.compare(["lr-*", "baseline"])     # names may be shell globs; NAME@V a version
    table["differ"]                                  # {"learning_rate_strategy": ["...", "..."]}
    plots.compare_curves(table)
"""
from __future__ import annotations

from labkit import catalog
from labkit.algorithms.reports import BEST_BY, better
from labkit.errors import LabkitError
from labkit.train import jobs

RESULTS = ("state", "epochs", "best", "best_epoch", "final", "minutes", "images_per_second")  # a table's columns


def summary(ref: str) -> dict:
    """One job's row: its record's facts and what its ``metrics.csv`` says."""
    record = jobs.show(ref)
    rows = jobs.metrics(ref)
    task = catalog.card(record["algorithm"]).task
    column = BEST_BY[task]
    best = None
    for row in rows:
        if row.get(column) is not None and (best is None or better(task, row[column], best[column])):
            best = row
    paces = [r["images_per_second"] for r in rows if r.get("images_per_second")]
    return {"job": f"{record['job']}@{record['version']}", "state": record["state"], "algorithm": record["algorithm"],
            "engine": record["engine"], "dataset": record["dataset"], "task": task, "metric": column,
            "epochs": len(rows), "best_epoch": best["epoch"] if best else None, "best": best[column] if best else None,
            "final": rows[-1].get(column) if rows else None,
            "minutes": round(sum(r.get("seconds") or 0 for r in rows) / 60, 2),
            "images_per_second": round(sum(paces) / len(paces), 1) if paces else None,
            "evaluation": record.get("metrics") or {}, "hyper": record["hyper"], "curves": rows}


def compare(patterns: list[str]) -> dict:
    """Jobs ``patterns`` (``JOB[@V]``, shell globs allowed) side by side: ``jobs`` (a summary
    each), ``differ`` (each hyper-parameter, algorithm, engine or dataset whose value is not the
    same in all: the values in the jobs' order) and ``same`` (the rest, with its one value)."""
    refs = jobs.JOBS.refs(patterns)
    if len(refs) < 2:
        raise LabkitError(f"{' '.join(patterns)} names one job ({refs[0]}): a comparison needs two or more",
                          "name another job, a version (JOB@V001) or a glob (lr-*)")
    found = [summary(ref) for ref in refs]
    tasks = {s["task"] for s in found}
    if len(tasks) > 1:
        raise LabkitError(f"these jobs do different tasks ({', '.join(sorted(tasks))}), judged by different metrics",
                          "compare jobs of one task")
    keys = dict.fromkeys(k for s in found for k in s["hyper"])
    values = {k: [s["hyper"].get(k) for s in found] for k in keys}
    values.update({k: [s[k] for s in found] for k in ("algorithm", "engine", "dataset")})
    differ = {k: v for k, v in values.items() if len({repr(x) for x in v}) > 1}
    return {"jobs": found, "differ": differ, "same": {k: v[0] for k, v in values.items() if k not in differ}}


def rows(comparison: dict) -> list[dict]:
    """A row per job, for a table: the job, what differs, then its results (the metric named)."""
    shown = []
    for i, job in enumerate(comparison["jobs"]):
        row = {"job": job["job"], **{k: v[i] for k, v in comparison["differ"].items()}}
        for key in RESULTS:
            row[f"{key} {job['metric']}" if key in ("best", "final") else key] = job[key]
        shown.append(row)
    return shown
