"""``labkit train``: stage 2, training jobs."""
from __future__ import annotations

import sys

from labkit.algorithms import DEVICES
from labkit.catalog import ENGINES
from labkit.cli.output import delete_verb, emit, progress, save_figure, table, verb, verbs
from labkit.errors import LabkitError


def _hp_pairs(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LabkitError(f"--hp {pair!r} is not KEY=VALUE", "e.g. --hp batch_size=16")
        out[key] = value
    return out


def _line(r: dict) -> str:
    metrics = r.get("metrics") or {}
    main = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in ("accuracy", "top5", "mae", "rmse"))
    return f"job {r['job']}@{r['version']}: {r['state']}" + (f" ({main})" if main else "") + \
        (f" -- {r['reason']}" if r.get("reason") and r["state"] == "FAILED" else "")


def _waited(rec: dict, wait: bool, since: int = 0) -> dict:
    """With --wait, the job's progress (from byte ``since`` of its log) on stderr until it
    ends, then its final record."""
    from labkit import train
    from labkit.train.follow import watch

    if not wait:
        return rec
    ref = f"{rec['job']}@{rec['version']}"
    watch(ref, since=since)
    return train.show(ref)


def create(args) -> int:
    from labkit import train

    rec = train.create(args.algorithm, args.engine, args.dataset, args.name, _hp_pairs(args.hp), args.device,
                       args.device_num, log=progress, nnodes=args.nnodes, node_rank=args.node_rank,
                       master_addr=args.master_addr, master_port=args.master_port)
    rec = _waited(rec, args.wait)
    emit(args, rec, _line(rec))
    return 0 if rec["state"] in ("CREATING", "RUNNING", "COMPLETED") else 1


def list_(args) -> int:
    from labkit import train

    found = train.list_jobs()
    rows = [{"job": f"{r['job']}@{r['version']}", "state": r["state"], "algorithm": r["algorithm"], "engine": r["engine"],
             "dataset": r["dataset"], "metrics": ", ".join(f"{k}={v:.3g}" for k, v in (r.get("metrics") or {}).items()
                                                          if k in ("accuracy", "mae"))} for r in found]
    emit(args, found, table(rows, ["job", "state", "algorithm", "engine", "dataset", "metrics"]))
    return 0


def show(args) -> int:
    from labkit import train

    r = train.show(args.job)
    lines = [_line(r), f"algorithm {r['algorithm']} ({r['engine']}, {r['device']} x{r['device_num']}), "
             f"dataset {r['dataset']}", "hyper     " + " ".join(f"{k}={v}" for k, v in r["hyper"].items()),
             "states    " + "  ".join(f"{s} {t}" for s, t in r["timestamps"].items()),
             f"output    {r.get('train_url', '')}"]
    world = r.get("world", {})
    if world.get("nnodes", 1) > 1:
        lines.append(f"machines  this is machine {world['node_rank']} of {world['nnodes']} ({world['size']} processes "
                     f"in all), master {world['master_addr']}:{world['master_port']}")
    if "peak_memory_mb" in r:
        lines.append(f"resources peak memory {r['peak_memory_mb']} MB, CPU time {r.get('cpu_seconds', '?')} s")
    for row in train.metrics(args.job)[-5:]:
        lines.append(f"  epoch {int(row['epoch']):>3}: " + "  ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                                   if k != "epoch" and v is not None))
    emit(args, r, "\n".join(lines))
    return 0


def logs(args) -> int:
    """The log with its progress events as readable lines; with --json, the events alone, raw."""
    import json

    from labkit import train
    from labkit.train.follow import readable, tail

    for text in tail(args.job, follow=args.follow):
        if args.json:
            sys.stdout.write("".join(json.dumps(e) + "\n" for e in train.parse_events(text)))
        else:
            sys.stdout.write(readable(text))
        sys.stdout.flush()
    return 0


def stop(args) -> int:
    from labkit import train

    rec = train.stop(args.job)
    emit(args, rec, _line(rec))
    return 0


def resume(args) -> int:
    from labkit import train

    since = len(train.logs(args.job).encode())  # what the earlier run wrote is not shown again
    rec = _waited(train.resume(args.job, log=progress), args.wait, since)
    emit(args, rec, _line(rec))
    return 0 if rec["state"] != "FAILED" else 1


def _cell(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def compare(args) -> int:
    from labkit import plots, train

    found = train.compare(args.jobs)
    shown = train.compare_table(found)
    columns = list(shown[0])
    lines = [table([{k: _cell(v) for k, v in row.items()} for row in shown], columns)]
    lines.append("the same in all: " + (", ".join(f"{k}={v}" for k, v in found["same"].items()) or "nothing"))
    if args.plot:
        save_figure(plots.compare_curves(found), args.plot)
        lines.append(f"learning curves: {args.plot}")
    emit(args, found, "\n".join(lines))
    return 0


def tensorboard(args) -> int:
    from labkit import train

    if args.jobs == ["stop"]:
        rec = train.stop_tensorboard()
        emit(args, rec, f"TensorBoard: {rec['state']}" if rec else "TensorBoard was not running")
        return 0
    rec = train.tensorboard(args.jobs, log=progress)
    emit(args, rec, rec["browser_url"] or rec["url"])
    return 0


def add(sub) -> None:
    group = verbs(sub, "train", "stage 2: training jobs")
    c = verb(group, "create", "start a training job (a new version if the job exists)", create)
    c.add_argument("--algorithm", required=True, help="an algorithm of the catalog (labkit algo list)")
    c.add_argument("--engine", required=True, choices=ENGINES)
    c.add_argument("--dataset", required=True, metavar="NAME@VERSION", help="a published dataset version")
    c.add_argument("--name", required=True, help="the job's name")
    c.add_argument("--hp", nargs="*", metavar="KEY=VALUE", help="hyper-parameters (labkit algo show ALGO)")
    c.add_argument("--device", default="cpu", choices=DEVICES)
    c.add_argument("--device-num", type=int, default=1, help="data-parallel processes on this machine (torchrun / msrun)")
    c.add_argument("--nnodes", type=int, default=1,
                   help="machines taking part (default 1); each runs this command with its own --node-rank")
    c.add_argument("--node-rank", type=int, default=0, help="this machine's number, 0 to NNODES-1")
    c.add_argument("--master-addr", metavar="HOST", help="machine 0's address, which every machine can reach")
    c.add_argument("--master-port", type=int, metavar="P",
                   help="machine 0's rendezvous port (default: 29400 for torchrun, 8118 for msrun)")
    c.add_argument("--wait", action="store_true", help="return when the job has ended")
    verb(group, "list", "list jobs with their state", list_)
    verb(group, "show", "a job's state, hyper-parameters, resources, metrics", show, ("job", "JOB[@VERSION]"))
    g = group.add_parser("logs", help="a job's log")
    g.add_argument("job", metavar="JOB[@VERSION]")
    g.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    g.add_argument("--json", action="store_true", help="print only the progress events, one JSON object per line")
    g.set_defaults(func=logs)
    verb(group, "stop", "stop a running job", stop, ("job", "JOB[@VERSION]"))
    r = verb(group, "resume", "continue a failed or stopped job from its last checkpoint", resume, ("job", "JOB[@VERSION]"))
    r.add_argument("--wait", action="store_true", help="return when the job has ended")
    delete_verb(group, "job", "JOB[@VERSION]")
    c = verb(group, "compare", "jobs side by side: the hyper-parameters that differ, metrics, time, pace", compare)
    c.add_argument("jobs", nargs="+", metavar="JOB[@VERSION]", help="two or more; names may be shell globs (lr-*, job@*)")
    c.add_argument("--plot", metavar="FILE", help="also draw their learning curves into FILE (.png, .svg, .pdf)")

    b = verb(sub, "tensorboard", "TensorBoard over the workspace's jobs (`labkit tensorboard stop` ends it)", tensorboard)
    b.add_argument("jobs", nargs="*", metavar="JOB[@VERSION]",
                   help="the jobs to show (globs allowed); none: every job, later ones too; stop: end TensorBoard")
