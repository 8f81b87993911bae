"""``labkit convert``: stage 3, export and convert a trained model, with a parity report."""
from __future__ import annotations

from labkit.cli.output import delete_verb, emit, progress, save_figure, table, verb, verbs
from labkit.convert.conversions import FORMATS, OUTPUT_TYPES, PRECISIONS, TEMPLATES
from labkit.errors import LabkitError


def _metrics(r: dict) -> str:
    m = r.get("metrics") or {}
    return ", ".join(f"{k} {m[k]:.4g}" for k in ("accuracy", "mae", "top1_agreement", "latency_ms", "size_mb") if k in m)


def _line(r: dict) -> str:
    shown = _metrics(r)
    verdict = f", parity {r['verdict']}" if r.get("verdict") else ""
    return (f"conversion {r['task']}@{r['version']}: {r['state']}{verdict}" + (f" ({shown})" if shown else "")
            + (f"\n  reason: {r['reason']}" if r.get("reason") else "")
            + (f"\n  gate: {r['note']}" if r.get("note") else ""))


def create(args) -> int:
    from labkit import convert

    rec = convert.create(args.job, args.template, args.name, input_shape=args.input_shape,
                         input_format=args.input_format, output_nodes=args.output_nodes, precision=args.precision,
                         output_type=args.output_type, preprocess=args.preprocess,
                         calibration_images=args.calibration, log=progress)
    done = rec["state"] == "COMPLETED"
    emit(args, rec, _line(rec) + (f"\nnext: labkit model import --name NAME --version 0.0.1 --from-conversion "
                                  f"{rec['task']}" if done else ""))
    return 0 if done else 1


def list_(args) -> int:
    from labkit import convert

    found = convert.list_tasks()
    rows = [{"task": f"{r['task']}@{r['version']}", "state": r["state"], "parity": r.get("verdict", ""), "job": r["job"],
             "template": r["options"]["template"], "metrics": _metrics(r)} for r in found]
    emit(args, found, table(rows, ["task", "state", "parity", "job", "template", "metrics"]))
    return 0


def _report_lines(report: dict) -> list[str]:
    lines = ["parity on the validation split:"]
    for m in report["models"]:
        score = (f"acc {m['accuracy']:.3f}" if "accuracy" in m else f"MAE {m['mae']:.3f}" if "mae" in m else "")
        diff = f"max|diff| {m['max_abs_diff']:.2e}" if "max_abs_diff" in m else ""
        diff += f" agree {m['top1_agreement']:.1%}" if m.get("top1_agreement") is not None else ""
        speed = f"{m['latency_ms']:.1f} ms/img" if "latency_ms" in m else ""
        lines.append(f"  {m['model']:<24} {m['size_mb']:>7.1f} MB  {diff:<20} {score:<11} {speed:<12} "
                     f"{m['throughput']:.0f} img/s")
    return lines


def show(args) -> int:
    from labkit import convert

    r = convert.show(args.task)
    o = r["options"]
    lines = [_line(r), f"job       {r['job']} ({r['engine']})",
             f"options   size {o['size']}, batch {o['batch'] or 'free'}, {o['input_format']}, outputs "
             f"{','.join(o['output_nodes']) or 'all'}, output type {o['output_type']}, "
             f"pre-processing {o['preprocess'] or 'none'}",
             "states    " + "  ".join(f"{s} {t}" for s, t in r["timestamps"].items()),
             f"directory {r['dir']}"]
    try:
        r["report"] = convert.report(args.task)
        lines += _report_lines(r["report"])
    except LabkitError:  # no report yet (running) or none (failed): the record says which
        pass
    emit(args, r, "\n".join(lines))
    return 0


def stop(args) -> int:
    from labkit import convert

    rec = convert.stop(args.task)
    emit(args, rec, _line(rec))
    return 0


def compare(args) -> int:
    from labkit import convert, plots

    rows = convert.comparison(args.tasks)
    lines = _report_lines({"models": rows})[1:]
    if args.plot:
        save_figure(plots.conversion_chart(rows), args.plot)
        lines.append(f"chart: {args.plot}")
    emit(args, rows, "\n".join(["each model on the validation split: size, difference from the source engine "
                                "(top-1 agreement), accuracy, batch-1 latency, best throughput", *lines]))
    return 0


def add(sub) -> None:
    group = verbs(sub, "convert", "stage 3: export and convert a trained model, with a parity report")
    c = verb(group, "create", "convert a job's model with a template; waits and prints the verdict", create)
    c.add_argument("--job", required=True, metavar="JOB[@VERSION]", help="a completed training job")
    c.add_argument("--template", required=True, choices=TEMPLATES, help="what to make (see the README)")
    c.add_argument("--name", required=True, help="the task's name")
    c.add_argument("--input-shape", metavar="images:N,C,H,W",
                   help="N fixed, or -1 for a free batch; H,W the image size (default: free batch, trained size)")
    c.add_argument("--input-format", choices=FORMATS, help="input layout (default NCHW; NHWC with --preprocess)")
    c.add_argument("--output-nodes", nargs="+", metavar="NAME", help="tensors to output instead (e.g. logits)")
    c.add_argument("--precision", choices=PRECISIONS, help="checked against the template's")
    c.add_argument("--output-type", choices=OUTPUT_TYPES, default="fp32", help="type of the outputs (default fp32)")
    c.add_argument("--preprocess", metavar="FILE|auto",
                   help="take uint8 pixels and normalise inside the model (the AIPP counterpart): 'auto' uses "
                        "the training normalisation, or a YAML file (data/preprocess/)")
    c.add_argument("--calibration", type=int, help="INT8: training images to calibrate on (default: the profile's)")
    verb(group, "list", "list conversion tasks", list_)
    verb(group, "show", "a task's options, state and parity report", show, ("task", "TASK[@VERSION]"))
    verb(group, "stop", "stop a running conversion (it keeps nothing)", stop, ("task", "TASK[@VERSION]"))
    delete_verb(group, "conversion", "TASK[@VERSION]")
    c = verb(group, "compare", "conversions of one job side by side: size, agreement, accuracy, latency, throughput",
             compare)
    c.add_argument("tasks", nargs="+", metavar="TASK[@VERSION]", help="names may be shell globs (flowers-*)")
    c.add_argument("--plot", metavar="FILE", help="also draw them as bars into FILE (.png, .svg, .pdf)")
