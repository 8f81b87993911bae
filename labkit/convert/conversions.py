"""Conversion tasks: ``conversions/NAME/V00N/`` holds a task's record (``run.json``), its log
(``convert.log``), ``report.json`` and, once it passed, ``model.onnx``. Creating a task that
exists makes its next version. Options are checked here, before anything starts; the work
runs in ``python -m labkit.convert.worker`` (see there), and ``create`` waits for it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

from labkit import artifacts, cpu, engine_paths, profiles, records, schemas, workspace
from labkit.convert import parity
from labkit.errors import LabkitError

# template -> (precision, what it makes); the seeds' ATC templates, done with ONNX Runtime
TEMPLATES = {
    "onnx-ort-fp32": ("fp32", "ONNX Runtime graph-optimized model (fused Conv+BN+activation, folded constants)"),
    "onnx-ort-fp16": ("fp16", "float16 weights and compute where the CPU has kernels; float32 inputs and outputs"),
    "onnx-ort-int8": ("int8", "static QDQ quantization: per-channel int8 weights, uint8 activations calibrated "
                              "on the dataset version's train split"),
}
PRECISIONS = tuple(dict.fromkeys(p for p, _ in TEMPLATES.values()))
OUTPUT_TYPES = get_args(schemas.OutputType)
FORMATS = get_args(schemas.Layout)
# Calibration images and the seconds spent timing each model, per profile.
EFFORT = {"quick": (16, 0.5), "workshop": (100, 2.0), "full": (300, 5.0)}


CONVERSIONS = records.Kind(artifacts.CONVERSION, "conversion task", "create one with `labkit convert create`",
                     "the conversion's process died (killed or crashed) before it finished; "
                     "nothing was kept: run `labkit convert create` again",
                     stopped_first=True)  # a worker finishing while it is stopped must not say COMPLETED
_run_dir = CONVERSIONS.dir
refresh, show, list_tasks = CONVERSIONS.refresh, CONVERSIONS.show, CONVERSIONS.list


def parse_shape(text: str, layout: str) -> tuple[int | None, int, int, int]:
    """``images:1,3,64,64`` (NCHW) or ``images:1,64,64,3`` (NHWC) -> (batch or None, C, H, W).
    A batch of -1 or ``?`` stays free."""
    from labkit.convert.graph import INPUT

    name, sep, dims = text.partition(":")
    parts = dims.split(",")
    example = "images:1,3,224,224" if layout == "NCHW" else "images:1,224,224,3"
    if not sep or len(parts) != 4:
        raise LabkitError(f"input shape {text!r} is not NAME:N,C,H,W", f"e.g. {example} (N -1 for a free batch)")
    if name != INPUT:
        raise LabkitError(f"the exported model's input is called {INPUT!r}, not {name!r}", f"e.g. {example}")
    try:
        n, *rest = [-1 if p.strip() == "?" else int(p) for p in parts]
    except ValueError:
        raise LabkitError(f"input shape {text!r} has a dimension that is not a number", f"e.g. {example}") from None
    c, h, w = rest if layout == "NCHW" else (rest[2], rest[0], rest[1])
    if n == 0 or n < -1 or min(c, h, w) < 1:
        raise LabkitError(f"input shape {text!r} has an impossible dimension", f"e.g. {example}")
    return (None if n == -1 else n), c, h, w


def _job(job: str) -> tuple[Path, dict, dict]:
    from labkit import train

    rec = train.show(job)
    run = Path(rec["dir"])  # where the job is, not where its record says it is
    if rec["state"] != "COMPLETED":
        raise LabkitError(f"job {job} is {rec['state']}, only a completed job can be converted",
                          "wait for it (labkit train show) or train one")
    info_path = run / "output" / "model.json"
    if not info_path.exists():
        raise LabkitError(f"job {job} left no model.json (a custom algorithm?)",
                          "labkit converts the built-in algorithms' jobs; export your own model to ONNX and "
                          "import it with `labkit model import --from-dir`")
    return run, rec, json.loads(info_path.read_text(encoding="utf-8"))


def create(job: str, template: str, name: str, input_shape: str | None = None, input_format: str | None = None,
           output_nodes: list[str] | None = None, precision: str | None = None, output_type: str = "fp32",
           preprocess: str | None = None, calibration_images: int | None = None, threads: int | None = None,
           profile: str | None = None, log=print) -> dict:
    """Check every option, run the conversion and return its record once it has ended."""
    if template not in TEMPLATES:
        raise LabkitError(f"unknown template {template!r}", f"use one of {', '.join(TEMPLATES)}")
    implied = TEMPLATES[template][0]
    if precision and precision != implied:
        right = next(t for t, (p, _) in TEMPLATES.items() if p == precision) if precision in PRECISIONS else None
        raise LabkitError(f"template {template} converts to {implied}, not {precision}",
                          f"use --template {right}" if right else f"use one of {', '.join(PRECISIONS)}")
    layout = input_format or ("NHWC" if preprocess else "NCHW")
    if layout not in FORMATS:
        raise LabkitError(f"unknown input format {layout!r}", f"use one of {', '.join(FORMATS)}")
    if output_type not in OUTPUT_TYPES:
        raise LabkitError(f"unknown output type {output_type!r}", f"use one of {', '.join(OUTPUT_TYPES)}")
    from labkit import data

    workspace.check_name(name, "conversion task name")
    job_run, job_rec, info = _job(job)
    engine_paths.check(job_rec["engine"], job_run)
    batch, size = None, info["image_size"]
    if input_shape:
        batch, c, h, w = parse_shape(input_shape, layout)
        if c != info["channels"]:
            raise LabkitError(f"input shape has {c} channels, the model takes {info['channels']}",
                              f"use {info['channels']} channels")
        if h != w:
            raise LabkitError(f"input shape {h}x{w} is not square", "labkit's models take square images, e.g. 224x224")
        size = h
    if preprocess and preprocess != "auto":
        from labkit.convert.graph import Preprocess

        preprocess = str(Path(preprocess).expanduser().resolve())
        Preprocess.from_file(Path(preprocess), info)  # a malformed file fails here
    profile = profiles.profile(profile)
    default_images, timing = EFFORT[profile]
    opts = {"template": template, "precision": implied, "size": size, "batch": batch, "input_format": layout,
            "output_nodes": list(output_nodes or []), "output_type": output_type, "preprocess": preprocess,
            "calibration_images": calibration_images or default_images, "timing_seconds": timing}
    if opts["calibration_images"] < 1:
        raise LabkitError("--calibration must be at least 1 image", "e.g. --calibration 100")

    task_dir = CONVERSIONS.root() / name
    workspace.remove_stale_staging(task_dir)
    staged = workspace.staging_dir(task_dir)
    record = {"task": name, "job": f"{job_rec['job']}@{job_rec['version']}", "engine": job_rec["engine"],
              "job_run": str(job_run), "data_url": str(data.version_dir(job_rec["dataset"])), "model_info": info, "options": opts,
              "threads": threads or cpu.cores(), "profile": profile, "state": "CREATING",
              "timestamps": {"CREATING": workspace.now()}}
    workspace.write_json(staged / "run.json", record)
    run = task_dir / workspace.publish_version(staged, task_dir)
    records.update(run, version=run.name)
    log(f"conversion {name}@{run.name}: {record['job']} -> {template} ({TEMPLATES[template][1]})")
    proc = records.spawn(run, [sys.executable, "-m", "labkit.convert.worker", str(run)], "worker.log",
                         _worker_env(job_rec["engine"]))
    return _follow(run, proc, log)


def _worker_env(engine: str) -> dict:
    env = {**os.environ, "LABKIT_HOME": str(workspace.home()), "PYTHONUNBUFFERED": "1"}
    if engine == "mindspore":  # its generated protobuf modules need the pure-Python protobuf,
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"  # which it selects only if imported before onnx
    return env


def export(job: str) -> tuple[Path, dict]:
    """The job's plain exports (``onnx/model.onnx``, MindIR for MindSpore) and ``export.json``,
    made now in a worker process if they are not there yet."""
    job_run, job_rec, _ = _job(job)
    if not (job_run / "export.json").exists():
        engine_paths.check(job_rec["engine"], job_run)
        proc = subprocess.run([sys.executable, "-m", "labkit.convert.worker", "--export", str(job_run)],
                              capture_output=True, text=True, env=_worker_env(job_rec["engine"]))
        if proc.returncode != 0 or not (job_run / "export.json").exists():
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
            raise LabkitError(f"exporting job {job} to ONNX failed: {lines[-1] if lines else proc.returncode}",
                              "see the message above; `labkit convert create` reports the same failure in full")
    return job_run, workspace.read_json(job_run / "export.json")


def _follow(run: Path, proc: subprocess.Popen, log) -> dict:
    """Wait for the worker, passing its log lines on as they come."""
    offset = 0
    while True:
        done = proc.poll() is not None
        text = (run / "convert.log").read_text(encoding="utf-8") if (run / "convert.log").exists() else ""
        for line in text[offset:].splitlines():
            log(line)
        offset = len(text)
        if done:
            return refresh(run)
        time.sleep(0.3)


def stop(ref: str) -> dict:
    """End a running conversion: STOPPED. Its worker keeps nothing (the model is moved into
    place only as its last step, and only a COMPLETED task's model is read)."""
    return CONVERSIONS.stop(_run_dir(ref))


def latest_completed() -> str | None:
    """``TASK@VERSION`` of the most recently completed conversion, if any."""
    latest = CONVERSIONS.latest_completed()
    return f"{latest['task']}@{latest['version']}" if latest else None


def first_completed(refs: list[str], log=print) -> str:
    """``TASK@VERSION`` of the first of ``refs`` that passed its parity gate: a lab asks for
    INT8 and takes FP32 when INT8 failed its agreement bar or was not judged, and says so."""
    for ref in refs:
        record = show(ref)
        # records from before the three verdicts kept a model only when it passed
        if record["state"] == "COMPLETED" and record.get("verdict", parity.PASSED) == parity.PASSED:
            return f"{record['task']}@{record['version']}"
        why = (f"parity {record['verdict']}: {record.get('note')}" if record["state"] == "COMPLETED"
               else record.get("reason", "still running"))
        log(f"not using conversion {ref}: {record['state']}: {why}")
    raise LabkitError(f"none of the conversions {', '.join(refs)} completed and passed its parity gate",
                      "see `labkit convert list` and `labkit convert show TASK`; convert again or import the job")


def of_same_job(ref: str) -> list[str]:
    """``TASK@VERSION`` of each completed conversion (the latest version of each task name) of
    the job that conversion ``ref`` was made from: what ``comparison`` can put side by side.
    An empty list where ``ref`` is not in this workspace (a model unpacked without it)."""
    try:
        job = show(ref)["job"]
    except LabkitError:
        return []
    return [f"{r['task']}@{r['version']}" for r in list_tasks() if r["job"] == job and r["state"] == "COMPLETED"]


def report(ref: str) -> dict:
    """The task's parity report (also written for a task that failed its tolerances)."""
    run = _run_dir(ref)
    if not (run / "report.json").exists():
        state = refresh(run)
        raise LabkitError(f"conversion {ref} has no report ({state['state']}: {state.get('reason', 'still running')})",
                          "see `labkit convert show`; fix the cause and create the task again")
    return schemas.read(run / "report.json", schemas.Report)


# The report's columns a learner compares, in the order a table shows them.
COMPARED = ("size_mb", "max_abs_diff", "relative_diff", "top1_agreement", "accuracy", "count_diff", "mae",
            "latency_ms", "best_batch", "throughput")


def comparison(refs: list[str]) -> list[dict]:
    """Rows of the reports of several conversions of one job (``TASK[@V]``, shell globs
    allowed): the source engine and the plain ONNX export once (every report measures them
    alike), then each converted model, its name marked with its verdict. What
    ``plots.conversion_chart`` draws and ``labkit convert compare`` prints."""
    refs = CONVERSIONS.refs(refs)
    made_from = {ref: show(ref)["job"] for ref in refs}
    if len(set(made_from.values())) > 1:
        raise LabkitError("these conversions are of different jobs: "
                          + ", ".join(f"{ref} of {job}" for ref, job in made_from.items()),
                          "compare the conversions of one job; compare jobs with `labkit train compare`")
    reports = [report(ref) for ref in refs]
    converted = [{**r["models"][2], "model": r["models"][2]["model"] + parity.VERDICT_LABELS[r["verdict"]]}
                 for r in reports]
    return reports[0]["models"][:2] + converted


def exports(job: str) -> list[dict]:
    """The plain exports of a job (ONNX, and MindIR for MindSpore): format, file, size, opset."""
    job_run, exported = export(job)
    return [{"format": kind, "file": str(job_run / exported[kind]),
             "size_mb": round((job_run / exported[kind]).stat().st_size / 1e6, 2),
             "opset": exported["opset"] if kind == "onnx" else None}
            for kind in ("onnx", "mindir") if exported.get(kind)]


def signature(ref: str) -> list[dict]:
    """A converted model's inputs and outputs as ONNX Runtime reads them: kind, name, type, shape
    (a free dimension is a name, e.g. ``batch``)."""
    from labkit.cpu import onnx_session

    session = onnx_session(model_path(ref), threads=1)
    return [{"kind": kind, "name": v.name, "type": v.type, "shape": v.shape}
            for kind, values in (("input", session.get_inputs()), ("output", session.get_outputs())) for v in values]


def model_path(ref: str) -> Path:
    """The converted model, for the registry: only a COMPLETED task has one."""
    run = _run_dir(ref)
    record = refresh(run)
    if record["state"] != "COMPLETED" or not (run / "model.onnx").exists():
        raise LabkitError(f"conversion {ref} is {record['state']} and has no model to import"
                          + (f" ({record['reason']})" if record.get("reason") else ""),
                          "import a completed conversion (labkit convert list)")
    return run / "model.onnx"
