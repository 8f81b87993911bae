"""The ``labkit`` command: one verb per workflow stage, calling the same API as the notebooks.

Errors a user can fix print what went wrong and what to do, and exit with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from labkit import __version__
from labkit.errors import LabkitError


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _emit(args, obj, human: str) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False) if getattr(args, "json", False) else human)


# --- doctor -----------------------------------------------------------------------------

def cmd_doctor(args) -> int:
    from labkit.doctor import checks

    results = checks()
    for c in results:
        print(f"[{'ok' if c.ok else 'FAIL':>4}] {c.name:<12} {c.detail}")
        if not c.ok:
            print(f"       fix: {c.fix}")
    failed = [c.name for c in results if not c.ok]
    print("labkit is ready." if not failed else f"{len(failed)} problem(s): {', '.join(failed)}")
    return 1 if failed else 0


# --- data -------------------------------------------------------------------------------

def cmd_data_make(args) -> int:
    from labkit import data

    rec = data.make(args.kind, name=args.name, count=args.count, size=args.size, seed=args.seed)
    verb = "already there (same parameters)" if rec.get("reused") else "made"
    src = rec["source"]
    print(f"dataset {rec['name']}: {rec['count']} {src['generator']} images of {src['size']}px {verb}")
    print(f"next: labkit data publish {rec['name']} --train-ratio 0.8")
    return 0


def cmd_data_import(args) -> int:
    from labkit import data

    rec = data.import_dataset(args.path, args.name, args.format)
    report = rec["report"]
    print(f"dataset {rec['name']}: imported {report['imported']} images ({rec['source']['format']}), "
          f"skipped {len(report['skipped'])}, refused {len(report['refused'])}")
    for item in report["refused"][:20]:
        print(f"  refused {item['entry']}: {item['reason']}")
    for item in report["skipped"][:20]:
        print(f"  skipped {item['file']}: {item['reason']}")
    hidden = len(report["skipped"]) + len(report["refused"]) - 40
    if hidden > 0:
        print(f"  ... and {hidden} more in the import report (labkit data show {rec['name']} --json)")
    return 0


def cmd_data_publish(args) -> int:
    from labkit import data

    v = data.publish(args.name, train_ratio=args.train_ratio, seed=args.seed, sigma=args.sigma)
    print(v["version"])
    print(f"  train {v['counts']['train']['images']} / val {v['counts']['val']['images']} images, "
          f"checksum {v['checksum'][:12]}", file=sys.stderr)
    return 0


def cmd_data_list(args) -> int:
    from labkit import data

    found = data.list_datasets()
    rows = [{"name": d["name"], "task": d["task"], "images": d["count"], "classes": len(d["classes"]) or "-",
             "versions": ",".join(d["versions"]) or "-", "source": d["source"].get("generator") or d["source"]["format"]}
            for d in found]
    _emit(args, found, _table(rows, ["name", "task", "images", "classes", "versions", "source"]))
    return 0


def cmd_data_show(args) -> int:
    from labkit import data

    rec = data.show(args.ref)
    if "version" in rec:
        lines = [f"{rec['dataset']}@{rec['version']}  ({rec['task']}, train ratio {rec['train_ratio']}, seed {rec['seed']})",
                 f"checksum {rec['checksum']}", f"path     {rec['path']}"]
        for side in ("train", "val"):
            counts = rec["counts"][side]
            detail = counts.get("per_class") or {"heads": counts.get("heads")}
            lines.append(f"{side:<5} {counts['images']:>6} images  " + "  ".join(f"{k}={v}" for k, v in detail.items()))
    else:
        lines = [f"{rec['name']}  ({rec['task']}, {rec['count']} images)", f"source   {rec['source']}",
                 f"versions {', '.join(rec['versions']) or '(none: labkit data publish ' + rec['name'] + ')'}"]
        if rec["class_counts"]:
            lines.append("classes  " + "  ".join(f"{k}={v}" for k, v in rec["class_counts"].items()))
        if "heads" in rec:
            lines.append(f"heads    {rec['heads']}")
        if rec.get("skipped"):
            lines.append(f"skipped  {rec['skipped']} files at import (see --json for the report)")
    _emit(args, rec, "\n".join(lines))
    return 0


# --- algo -------------------------------------------------------------------------------

def cmd_algo_list(args) -> int:
    from labkit import catalog

    subs = {(s["algorithm"], s["engine"]) for s in catalog.subscriptions()}
    rows = [{"name": c.name, "task": c.task, "engines": ",".join(c.engines), "version": c.version,
             "subscribed": ",".join(e for e in c.engines if (c.name, e) in subs) or "-", "title": c.title}
            for c in catalog.cards()]
    _emit(args, rows, _table(rows, ["name", "task", "engines", "subscribed", "version", "title"]))
    return 0


def cmd_algo_show(args) -> int:
    from labkit import catalog, profiles

    c = catalog.card(args.algo)
    profile = profiles.profile()
    table = c.table(profile)
    rec = {"name": c.name, "title": c.title, "task": c.task, "engines": list(c.engines), "version": c.version,
           "description": c.description, "input_size": c.input_size, "profile": profile, "hyper_parameters": table}
    human = [f"{c.name}  {c.title} (v{c.version})", f"task     {c.task}", f"engines  {', '.join(c.engines)}",
             c.description, f"hyper-parameters (defaults of the {profile} profile):",
             _table(table, ["name", "type", "default", "range", "description"])]
    _emit(args, rec, "\n".join(human))
    return 0


def cmd_algo_subscribe(args) -> int:
    from labkit import catalog

    sub = catalog.subscribe(args.algo, args.engine)
    print(f"subscribed: {sub['algorithm']} v{sub['version']} ({sub['engine']})")
    return 0


def cmd_algo_create(args) -> int:
    from labkit import catalog

    c = catalog.create_custom(args.name, args.code_dir, args.boot_file, args.engine, args.hyper or [], args.task)
    print(f"algorithm {c.name} created ({c.engines[0]}, boot file {c.boot_file}); "
          f"train it with: labkit train create --algorithm {c.name} --engine {c.engines[0]} --dataset NAME@V001 --name JOB")
    return 0


# --- train ------------------------------------------------------------------------------

def _hp_pairs(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LabkitError(f"--hp {pair!r} is not KEY=VALUE", "e.g. --hp batch_size=16")
        out[key] = value
    return out


def _job_line(r: dict) -> str:
    metrics = r.get("metrics") or {}
    main = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in ("accuracy", "top5", "mae", "rmse"))
    return f"job {r['job']}@{r['version']}: {r['state']}" + (f" ({main})" if main else "") + \
        (f" -- {r['reason']}" if r.get("reason") and r["state"] == "FAILED" else "")


def cmd_train_create(args) -> int:
    from labkit import train

    rec = train.create(args.algorithm, args.engine, args.dataset, args.name, _hp_pairs(args.hp), args.device,
                       args.device_num, wait=args.wait, log=lambda m: print(m, file=sys.stderr))
    print(_job_line(rec))
    return 0 if rec["state"] in ("CREATING", "RUNNING", "COMPLETED") else 1


def cmd_train_list(args) -> int:
    from labkit import train

    found = train.list_jobs()
    rows = [{"job": f"{r['job']}@{r['version']}", "state": r["state"], "algorithm": r["algorithm"], "engine": r["engine"],
             "dataset": r["dataset"], "metrics": ", ".join(f"{k}={v:.3g}" for k, v in (r.get("metrics") or {}).items()
                                                          if k in ("accuracy", "mae"))} for r in found]
    _emit(args, found, _table(rows, ["job", "state", "algorithm", "engine", "dataset", "metrics"]))
    return 0


def cmd_train_show(args) -> int:
    from labkit import train

    r = train.show(args.job)
    lines = [_job_line(r), f"algorithm {r['algorithm']} ({r['engine']}, {r['device']} x{r['device_num']}), "
             f"dataset {r['dataset']}", "hyper     " + " ".join(f"{k}={v}" for k, v in r["hyper"].items()),
             "states    " + "  ".join(f"{s} {t}" for s, t in r["timestamps"].items()),
             f"output    {r.get('train_url', '')}"]
    if "peak_memory_mb" in r:
        lines.append(f"resources peak memory {r['peak_memory_mb']} MB, CPU time {r['cpu_seconds']} s")
    for row in train.metrics(args.job)[-5:]:
        lines.append(f"  epoch {int(row['epoch']):>3}: " + "  ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                                   if k != "epoch" and v is not None))
    _emit(args, r, "\n".join(lines))
    return 0


def cmd_train_logs(args) -> int:
    import time

    from labkit import train

    offset = 0
    while True:
        text = train.logs(args.job)
        sys.stdout.write(text[offset:])
        sys.stdout.flush()
        offset = len(text)
        if not args.follow or train.show(args.job)["state"] in train.TERMINAL:
            if args.follow:
                sys.stdout.write(train.logs(args.job)[offset:])
            return 0
        time.sleep(0.5)


def cmd_train_stop(args) -> int:
    from labkit import train

    print(_job_line(train.stop(args.job)))
    return 0


def cmd_train_resume(args) -> int:
    from labkit import train

    rec = train.resume(args.job, wait=args.wait, log=lambda m: print(m, file=sys.stderr))
    print(_job_line(rec))
    return 0 if rec["state"] != "FAILED" else 1


# --- labs -------------------------------------------------------------------------------

def cmd_labs_list(args) -> int:
    from labkit.labs import recipes

    found = recipes()
    rows = [{"lab": n, "engine": r.get("engine", ""), "stages": len(r["stages"]), "title": r.get("title", "")}
            for n, r in found.items()]
    _emit(args, list(found.values()), _table(rows, ["lab", "engine", "stages", "title"]))
    return 0


def cmd_run(args) -> int:
    from labkit.labs import run

    rec = run(args.lab, profile=args.profile, out=args.out)
    print(f"lab {rec['lab']} {rec['status']} in {sum(s['seconds'] for s in rec['stages']):.0f}s -> {rec['path']}")
    return 0


# --- the parser -------------------------------------------------------------------------

def _read_verb(sub, name: str, help: str, func, ref: tuple[str, str] | None = None):
    """A `list` or `show` verb: an optional positional (dest, metavar), and --json for scripts."""
    p = sub.add_parser(name, help=help)
    if ref:
        p.add_argument(ref[0], metavar=ref[1])
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    from labkit.data.generate import GENERATORS
    from labkit.data.importers import FORMATS
    from labkit.profiles import PROFILES

    p = argparse.ArgumentParser(prog="labkit", description="labkit: the life of a deep-learning model, on one "
                                "laptop, offline. Every verb has --help.")
    p.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("doctor", help="check this machine: python, engines, devices, disk, workspace, ports")
    d.set_defaults(func=cmd_doctor)

    data = sub.add_parser("data", help="stage 1: make or import datasets, publish versions")
    dsub = data.add_subparsers(dest="verb", required=True, metavar="VERB")
    m = dsub.add_parser("make", help="generate a dataset offline")
    m.add_argument("kind", choices=GENERATORS, help="which generator")
    m.add_argument("--name", help="dataset name (default: the generator's name)")
    m.add_argument("--count", type=int, help="number of images (default: the profile's, see LABKIT_PROFILE)")
    m.add_argument("--size", type=int, help="image width and height in pixels (default: the profile's)")
    m.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same images")
    m.set_defaults(func=cmd_data_make)
    i = dsub.add_parser("import", help="import an image folder, a zip of one, a manifest or a ShanghaiTech folder")
    i.add_argument("path", help="what to import")
    i.add_argument("--name", required=True, help="dataset name")
    i.add_argument("--format", choices=FORMATS, help="layout of PATH (default: detected)")
    i.set_defaults(func=cmd_data_import)
    pub = dsub.add_parser("publish", help="publish an immutable version (V001, V002, ...) with a train/val split")
    pub.add_argument("name", help="dataset name")
    pub.add_argument("--train-ratio", type=float, default=0.8, help="share of each class used to train (default 0.8)")
    pub.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    pub.add_argument("--sigma", choices=("fixed", "adaptive"), default="fixed",
                     help="crowd data: Gaussian width of the density maps (default fixed, sigma 4)")
    pub.set_defaults(func=cmd_data_publish)
    _read_verb(dsub, "list", "list datasets and their versions", cmd_data_list)
    _read_verb(dsub, "show", "show a dataset, or one version (NAME@V001)", cmd_data_show, ("ref", "NAME[@VERSION]"))

    algo = sub.add_parser("algo", help="stage 2: the algorithm catalog, subscriptions, custom algorithms")
    asub = algo.add_subparsers(dest="verb", required=True, metavar="VERB")
    _read_verb(asub, "list", "list the algorithms and your subscriptions", cmd_algo_list)
    _read_verb(asub, "show", "an algorithm's card and hyper-parameter table", cmd_algo_show, ("algo", "ALGO"))
    asu = asub.add_parser("subscribe", help="subscribe to an algorithm for an engine")
    asu.add_argument("algo", metavar="ALGO")
    asu.add_argument("--engine", required=True, choices=("mindspore", "pytorch"))
    asu.set_defaults(func=cmd_algo_subscribe)
    acr = asub.add_parser("create", help="register your own algorithm (a code directory and a boot file)")
    acr.add_argument("--name", required=True)
    acr.add_argument("--code-dir", required=True, help="the directory holding your training code (copied)")
    acr.add_argument("--boot-file", required=True, help="the script to run, relative to --code-dir")
    acr.add_argument("--engine", required=True, choices=("mindspore", "pytorch"))
    acr.add_argument("--task", default="image_classification", choices=("image_classification", "crowd_counting"))
    acr.add_argument("--hyper", nargs="*", metavar="NAME:TYPE:DEFAULT", help="hyper-parameters, e.g. lr:float:0.01")
    acr.set_defaults(func=cmd_algo_create)

    tr = sub.add_parser("train", help="stage 2: training jobs")
    tsub = tr.add_subparsers(dest="verb", required=True, metavar="VERB")
    tc = tsub.add_parser("create", help="start a training job (a new version if the job exists)")
    tc.add_argument("--algorithm", required=True, help="an algorithm of the catalog (labkit algo list)")
    tc.add_argument("--engine", required=True, choices=("mindspore", "pytorch"))
    tc.add_argument("--dataset", required=True, metavar="NAME@VERSION", help="a published dataset version")
    tc.add_argument("--name", required=True, help="the job's name")
    tc.add_argument("--hp", nargs="*", metavar="KEY=VALUE", help="hyper-parameters (labkit algo show ALGO)")
    tc.add_argument("--device", default="cpu", choices=("cpu", "gpu", "ascend"))
    tc.add_argument("--device-num", type=int, default=1, help="data-parallel processes (torchrun / msrun)")
    tc.add_argument("--wait", action="store_true", help="return when the job has ended")
    tc.set_defaults(func=cmd_train_create)
    _read_verb(tsub, "list", "list jobs with their state", cmd_train_list)
    _read_verb(tsub, "show", "a job's state, hyper-parameters, resources, metrics", cmd_train_show, ("job", "JOB[@VERSION]"))
    for verb, func, text in (("logs", cmd_train_logs, "a job's log"), ("stop", cmd_train_stop, "stop a running job"),
                             ("resume", cmd_train_resume, "continue a failed or stopped job from its last checkpoint")):
        t = tsub.add_parser(verb, help=text)
        t.add_argument("job", metavar="JOB[@VERSION]")
        if verb == "logs":
            t.add_argument("--follow", action="store_true", help="keep printing until the job ends")
        if verb == "resume":
            t.add_argument("--wait", action="store_true", help="return when the job has ended")
        t.set_defaults(func=func)

    labs = sub.add_parser("labs", help="the labs (recipes of stage notebooks)")
    lsub = labs.add_subparsers(dest="verb", required=True, metavar="VERB")
    _read_verb(lsub, "list", "list the labs", cmd_labs_list)
    r = sub.add_parser("run", help="run a lab headless with papermill into runs/LAB/<timestamp>/")
    r.add_argument("lab", help="lab name (labkit labs list)")
    r.add_argument("--profile", choices=PROFILES, help="sizes and hyper-parameters (default: LABKIT_PROFILE or workshop)")
    r.add_argument("--out", default="runs", help="where runs go (default runs/)")
    r.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabkitError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `labkit ... | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
