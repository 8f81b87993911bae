"""The ``labkit`` command: one verb per workflow stage, calling the same API as the notebooks.

Errors a user can fix print what went wrong and what to do, and exit with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from labkit import __version__
from labkit.catalog import ENGINES
from labkit.errors import LabkitError
from labkit.tasks import CLASSIFICATION, TASKS


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
        done = train.show(args.job)["state"] in train.TERMINAL  # before reading: the last lines are not lost
        text = train.logs(args.job, offset)
        if not done:  # whole lines only: a line still being written is printed next time
            text = text[: text.rfind("\n") + 1]
        sys.stdout.write(text)
        sys.stdout.flush()
        offset += len(text.encode())
        if not args.follow or done:
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

# --- convert ----------------------------------------------------------------------------

def _task_metrics(r: dict) -> str:
    m = r.get("metrics") or {}
    return ", ".join(f"{k} {m[k]:.4g}" for k in ("accuracy", "mae", "top1_agreement", "latency_ms", "size_mb") if k in m)


def _task_line(r: dict) -> str:
    shown = _task_metrics(r)
    verdict = f", parity {r['verdict']}" if r.get("verdict") else ""
    return (f"conversion {r['task']}@{r['version']}: {r['state']}{verdict}" + (f" ({shown})" if shown else "")
            + (f"\n  reason: {r['reason']}" if r.get("reason") else "")
            + (f"\n  gate: {r['note']}" if r.get("note") else ""))


def cmd_convert_create(args) -> int:
    from labkit import convert

    rec = convert.create(args.job, args.template, args.name, input_shape=args.input_shape,
                         input_format=args.input_format, output_nodes=args.output_nodes, precision=args.precision,
                         output_type=args.output_type, preprocess=args.preprocess,
                         calibration_images=args.calibration, log=lambda m: print(m, file=sys.stderr))
    print(_task_line(rec))
    if rec["state"] == "COMPLETED":
        print(f"next: labkit model import --name NAME --version 0.0.1 --from-conversion {rec['task']}")
    return 0 if rec["state"] == "COMPLETED" else 1


def cmd_convert_list(args) -> int:
    from labkit import convert

    found = convert.list_tasks()
    rows = [{"task": f"{r['task']}@{r['version']}", "state": r["state"], "parity": r.get("verdict", ""), "job": r["job"],
             "template": r["options"]["template"], "metrics": _task_metrics(r)} for r in found]
    _emit(args, found, _table(rows, ["task", "state", "parity", "job", "template", "metrics"]))
    return 0


def cmd_convert_show(args) -> int:
    from labkit import convert

    r = convert.show(args.task)
    o = r["options"]
    lines = [_task_line(r), f"job       {r['job']} ({r['engine']})",
             f"options   size {o['size']}, batch {o['batch'] or 'free'}, {o['input_format']}, outputs "
             f"{','.join(o['output_nodes']) or 'all'}, output type {o['output_type']}, "
             f"pre-processing {o['preprocess'] or 'none'}",
             "states    " + "  ".join(f"{s} {t}" for s, t in r["timestamps"].items()),
             f"directory {r['dir']}"]
    try:
        report = convert.report(args.task)
        r["report"] = report
        lines.append("parity on the validation split:")
        for m in report["models"]:
            score = (f"acc {m['accuracy']:.3f}" if "accuracy" in m else f"MAE {m['mae']:.3f}" if "mae" in m else "")
            diff = f"max|diff| {m['max_abs_diff']:.2e}" if "max_abs_diff" in m else ""
            speed = f"{m['latency_ms']:.1f} ms/img" if "latency_ms" in m else ""
            lines.append(f"  {m['model']:<24} {m['size_mb']:>7.1f} MB  {diff:<20} {score:<11} {speed:<12} "
                         f"{m['throughput']:.0f} img/s")
    except LabkitError:
        pass
    _emit(args, r, "\n".join(lines))
    return 0


# --- model registry ---------------------------------------------------------------------

def _model_line(r: dict) -> str:
    src = r["source"]
    return (f"model {r['model']}@{r['version']}: {r['state']}" + (f" ({r['reason']})" if r.get("reason") else "")
            + f", from {src['kind']} {src['ref']}")


def cmd_model_import(args) -> int:
    from labkit import registry

    rec = registry.import_model(args.name, args.version, from_job=args.from_job, from_conversion=args.from_conversion,
                                from_dir=args.from_dir, log=lambda m: None)
    print(_model_line(rec))
    if rec["state"] == "NORMAL":
        print(f"next: labkit service deploy {rec['model']}@{rec['version']}")
    return 0 if rec["state"] == "NORMAL" else 1


def cmd_model_list(args) -> int:
    from labkit import registry

    found = registry.list_models()
    rows = [{"model": f"{r['model']}@{r['version']}", "state": r["state"], "task": (r.get("serving") or {}).get("task", ""),
             "input": " ".join(str(v) for v in [(r.get("serving") or {}).get("input", {}).get(k, "")
                                               for k in ("datatype", "layout", "size")]),
             "source": f"{r['source']['kind']} {r['source']['ref']}"} for r in found]
    _emit(args, found, _table(rows, ["model", "state", "task", "input", "source"]))
    return 0


def cmd_model_show(args) -> int:
    from labkit import registry

    r = registry.show(args.model)
    r["config"] = registry.config(args.model)
    _emit(args, r, _model_line(r) + f"\ndirectory {r['dir']}\nconfig.json:\n" + json.dumps(r["config"], indent=2))
    return 0


# --- services ---------------------------------------------------------------------------

def _service_line(r: dict) -> str:
    alive = f", {r['instances_alive']}/{r['instances']} instances alive" if "instances_alive" in r else ""
    return (f"service {r['service']}: {r['state']} {r.get('url', '')} ({r['model']}{alive})"
            + (f"\n  reason: {r['reason']}" if r.get("reason") and r["state"] != "RUNNING" else ""))


def cmd_service_deploy(args) -> int:
    from labkit.serve import services

    rec = services.deploy(args.model, name=args.name, instances=args.instances, auto_stop=args.auto_stop,
                          port=args.port, host=args.host, log=lambda m: print(m, file=sys.stderr))
    print(rec["url"])
    print(f"curl -F images=@IMAGE.jpg {rec['url']}/")
    return 0


def cmd_service_list(args) -> int:
    from labkit.serve import services

    found = services.list_services()
    rows = [{"service": r["service"], "state": r["state"], "url": r.get("url", ""), "model": r["model"],
             "instances": r["instances"]} for r in found]
    _emit(args, found, _table(rows, ["service", "state", "url", "model", "instances"]))
    return 0


def cmd_service_predict(args) -> int:
    from labkit.serve import services

    print(json.dumps(services.predict(args.service, args.image), ensure_ascii=False))
    return 0


def cmd_service_stop(args) -> int:
    from labkit.serve import services

    if args.all == bool(args.service):
        raise LabkitError("name one service, or --all", "labkit service stop NAME | labkit service stop --all")
    stopped = services.stop_all() if args.all else [services.stop(args.service)]
    for r in stopped:
        print(_service_line(r))
    if not stopped:
        print("no service was running")
    return 0


def cmd_batch_create(args) -> int:
    from labkit.serve import batch

    summary = batch.create(args.model, args.input, args.output, args.format)
    print(f"{summary['predicted']} of {summary['images']} images predicted with {summary['model']} -> "
          f"{summary['output']}" + (f"; {summary['errors']} bad file(s) listed in errors.jsonl" if summary["errors"] else ""))
    return 0


def cmd_pipeline_run(args) -> int:
    from labkit.serve import pipeline

    stats = pipeline.run(args.pipeline, args.input, args.output, model=args.model)
    print(f"stream {stats['stream']}: {stats['images']} images, {stats['errors']} bad -> {stats['output']}")
    if stats["e2e"]:
        print(f"{'plugin':<28} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9}")
        for name, st in [("end to end", stats["e2e"]), *stats["plugins"].items()]:
            print(f"{name:<28} {st['mean_ms']:>9.3f} {st['p50_ms']:>9.3f} {st['p99_ms']:>9.3f}")
    return 0


def cmd_eval(args) -> int:
    from labkit import eval as evaluation

    out = args.out or "result.json"
    if args.kind == "classification":
        r = evaluation.classification(args.result_dir, args.labels, out)
        print("  ".join(f"top{k} {100 * r[f'top{k}']:.2f}%" for k in range(1, 6)) + f"  ({len(r['confusion'])} classes)")
    else:
        r = evaluation.counting(args.result_dir, args.labels, out)
        print(f"MAE {r['mae']:.3f}  RMSE {r['rmse']:.3f}")
    if r["missing_results"]:
        print(f"{len(r['missing_results'])} labelled image(s) had no result file, e.g. {r['missing_results'][0]}")
    print(f"written to {out}")
    return 0


def cmd_status(args) -> int:
    from labkit.status import running

    found = running()
    lines = [f"{r['kind']:<10} {r['name']:<28} {r['state']:<9} {r['detail']}\n{'':<10} stop: {r['stop']}" for r in found]
    _emit(args, found, "\n".join(lines) if lines else "nothing is running.")
    return 0


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
    from labkit.convert.tasks import TEMPLATES
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
    asu.add_argument("--engine", required=True, choices=ENGINES)
    asu.set_defaults(func=cmd_algo_subscribe)
    acr = asub.add_parser("create", help="register your own algorithm (a code directory and a boot file)")
    acr.add_argument("--name", required=True)
    acr.add_argument("--code-dir", required=True, help="the directory holding your training code (copied)")
    acr.add_argument("--boot-file", required=True, help="the script to run, relative to --code-dir")
    acr.add_argument("--engine", required=True, choices=ENGINES)
    acr.add_argument("--task", default=CLASSIFICATION, choices=TASKS)
    acr.add_argument("--hyper", nargs="*", metavar="NAME:TYPE:DEFAULT", help="hyper-parameters, e.g. lr:float:0.01")
    acr.set_defaults(func=cmd_algo_create)

    tr = sub.add_parser("train", help="stage 2: training jobs")
    tsub = tr.add_subparsers(dest="verb", required=True, metavar="VERB")
    tc = tsub.add_parser("create", help="start a training job (a new version if the job exists)")
    tc.add_argument("--algorithm", required=True, help="an algorithm of the catalog (labkit algo list)")
    tc.add_argument("--engine", required=True, choices=ENGINES)
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

    cv = sub.add_parser("convert", help="stage 3: export and convert a trained model, with a parity report")
    csub = cv.add_subparsers(dest="verb", required=True, metavar="VERB")
    cc = csub.add_parser("create", help="convert a job's model with a template; waits and prints the verdict")
    cc.add_argument("--job", required=True, metavar="JOB[@VERSION]", help="a completed training job")
    cc.add_argument("--template", required=True, choices=TEMPLATES, help="what to make (see the README)")
    cc.add_argument("--name", required=True, help="the task's name")
    cc.add_argument("--input-shape", metavar="images:N,C,H,W",
                    help="N fixed, or -1 for a free batch; H,W the image size (default: free batch, trained size)")
    cc.add_argument("--input-format", choices=("NCHW", "NHWC"), help="input layout (default NCHW; NHWC with --preprocess)")
    cc.add_argument("--output-nodes", nargs="+", metavar="NAME", help="tensors to output instead (e.g. logits)")
    cc.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="checked against the template's")
    cc.add_argument("--output-type", choices=("fp32", "fp16"), default="fp32", help="type of the outputs (default fp32)")
    cc.add_argument("--preprocess", metavar="FILE|auto",
                    help="take uint8 pixels and normalise inside the model (the AIPP counterpart): 'auto' uses "
                         "the training normalisation, or a YAML file (data/preprocess/)")
    cc.add_argument("--calibration", type=int, help="INT8: training images to calibrate on (default: the profile's)")
    cc.set_defaults(func=cmd_convert_create)
    _read_verb(csub, "list", "list conversion tasks", cmd_convert_list)
    _read_verb(csub, "show", "a task's options, state and parity report", cmd_convert_show, ("task", "TASK[@VERSION]"))

    mo = sub.add_parser("model", help="stage 4: the model registry")
    msub = mo.add_subparsers(dest="verb", required=True, metavar="VERB")
    mi = msub.add_parser("import", help="import a model from a job, a conversion or a directory; validates it")
    mi.add_argument("--name", required=True, help="the model's name")
    mi.add_argument("--version", help="MAJOR.MINOR.PATCH (default: the next one, 0.0.1 first)")
    src = mi.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-job", metavar="JOB[@VERSION]", help="a completed training job (its ONNX export)")
    src.add_argument("--from-conversion", metavar="TASK[@VERSION]", help="a completed conversion task")
    src.add_argument("--from-dir", metavar="DIR", help="a directory: one .onnx file, labels.txt, optional config.json")
    mi.set_defaults(func=cmd_model_import)
    _read_verb(msub, "list", "list models and versions with their state", cmd_model_list)
    _read_verb(msub, "show", "a model's record and config.json", cmd_model_show, ("model", "NAME[@VERSION]"))

    sv = sub.add_parser("service", help="stage 5: online services (HTTP, on this machine)")
    ssub = sv.add_subparsers(dest="verb", required=True, metavar="VERB")
    sd = ssub.add_parser("deploy", help="start a model as a service; prints its URL once it answers")
    sd.add_argument("model", metavar="NAME[@VERSION]", help="a NORMAL model of the registry")
    sd.add_argument("--name", help="the service's name (default: the model's)")
    sd.add_argument("--instances", type=int, default=1, help="processes, each with its own ONNX Runtime session")
    sd.add_argument("--auto-stop", type=float, metavar="SECONDS", help="stop after this many seconds (the seeds: 3600)")
    sd.add_argument("--port", type=int, default=0, help="default: a free port")
    sd.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    sd.set_defaults(func=cmd_service_deploy)
    _read_verb(ssub, "list", "list services with their state and URL", cmd_service_list)
    sp = ssub.add_parser("predict", help="send an image to a service's predict API")
    sp.add_argument("service")
    sp.add_argument("image")
    sp.set_defaults(func=cmd_service_predict)
    sst = ssub.add_parser("stop", help="stop a service (it finishes the requests in flight)")
    sst.add_argument("service", nargs="?")
    sst.add_argument("--all", action="store_true", help="stop every running service")
    sst.set_defaults(func=cmd_service_stop)

    ba = sub.add_parser("batch", help="stage 5: batch prediction of a folder of images")
    bsub = ba.add_subparsers(dest="verb", required=True, metavar="VERB")
    bc = bsub.add_parser("create", help="predict every image of a folder into JSONL or CSV")
    bc.add_argument("model", metavar="NAME[@VERSION]")
    bc.add_argument("--input", required=True, help="a folder of images (searched recursively)")
    bc.add_argument("--output", required=True, help="where predictions, result files and errors go")
    bc.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    bc.set_defaults(func=cmd_batch_create)

    pl = sub.add_parser("pipeline", help="stage 5: run a MindX-style pipeline JSON with per-plugin timing")
    psub = pl.add_subparsers(dest="verb", required=True, metavar="VERB")
    pr = psub.add_parser("run", help="every image of a folder through the pipeline")
    pr.add_argument("pipeline", metavar="PIPELINE.json", help="e.g. data/pipelines/classification.json")
    pr.add_argument("--input", required=True, help="a folder of images")
    pr.add_argument("--output", help="default: pipeline-result/ next to the input folder")
    pr.add_argument("--model", metavar="NAME[@VERSION]", help="the registry model to run (overrides modelPath)")
    pr.set_defaults(func=cmd_pipeline_run)

    ev = sub.add_parser("eval", help="stage 5: result.json from result files and a label file")
    esub = ev.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, text in (("classification", "top-1..top-5 accuracy, per-class precision/recall, confusion matrix"),
                       ("counting", "MAE and RMSE of predicted counts")):
        e = esub.add_parser(kind, help=text)
        e.add_argument("result_dir", metavar="RESULT_DIR", help="<image stem>_1.txt files (batch or pipeline output)")
        e.add_argument("labels", metavar="LABELS", help="'<image name> <label>' per line")
        e.add_argument("--out", help="default result.json")
        e.set_defaults(func=cmd_eval)

    st = sub.add_parser("status", help="everything still running (jobs, conversions, services) and how to stop it")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=cmd_status)

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
