"""The process that runs one conversion task: ``python -m labkit.convert.worker TASK_DIR``.

It imports the source engine (so the notebook's kernel never has to), exports the job's
checkpoint if that was not done yet, builds the converted model in ``work/``, measures it
against the source engine and the plain export on the validation split (``report.json``),
and unless it failed its parity gate moves it to ``model.onnx`` and marks the task
COMPLETED, with the gate's verdict (passed, or not judged: too few images to tell). A failed
or killed conversion leaves no ``model.onnx``: nothing that import could pick up.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
import traceback
from pathlib import Path

import numpy as np

from labkit import cpu, records, workspace
from labkit.algorithms import checkpoint, inputs
from labkit.convert import graph, parity
from labkit.cpu import onnx_session
from labkit.errors import LabkitError
from labkit.tasks import COUNTING

CALIBRATION_BATCH = 8


def _engine(name: str):
    return importlib.import_module(f"labkit.convert.{name}")


def export_job(job_run: Path, engine, net, info: dict, size: int, out_dir: Path, log) -> dict:
    """The plain exports of a job at ``size`` (ONNX, and MindIR for MindSpore), with
    ``export.json``. Kept in the job's version directory when ``size`` is the trained size."""
    record_path = out_dir / "export.json"
    if record_path.exists():
        return workspace.read_json(record_path)
    channels = info["channels"]
    sample = np.zeros((1, channels, size, size), np.float32)
    staged = workspace.staging_dir(out_dir)
    try:
        files = engine.export(net, sample, staged)
        output = "density" if info["task"] == COUNTING else "logits"
        model = graph.finish_export(_load(files["onnx"]), output)
        import onnx

        onnx.save(model, str(staged / "onnx" / "model.onnx"))
        files["onnx"].unlink()
        record = {"engine": info["engine"], "opset": graph.opset(model), "input": graph.INPUT, "output": output,
                  "input_shape": ["batch", channels, size, size], "onnx": "onnx/model.onnx",
                  "mindir": "mindir/model.mindir" if "mindir" in files else None, "exported": workspace.now()}
        workspace.write_json(staged / "export.json", record)
        with workspace.locked(out_dir / ".export"):
            if not record_path.exists():  # another conversion may have exported meanwhile
                for part in ("onnx", "mindir"):
                    if (staged / part).exists():
                        os.replace(staged / part, out_dir / part)
                os.replace(staged / "export.json", record_path)
                log(f"exported {info['engine']} -> ONNX (opset {record['opset']})"
                    + (" and MindIR" if record["mindir"] else "") + f" in {out_dir}")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return workspace.read_json(record_path)


def _load(path: Path):
    import onnx

    return onnx.load(str(path))


def build_candidate(plain: Path, opts: dict, info: dict, calibration, work: Path, log) -> Path:
    """Apply the task's options to the plain export, in order; returns the candidate file."""
    current = plain
    if opts.get("output_nodes"):
        graph.select_outputs(current, opts["output_nodes"], work / "outputs.onnx")
        current = work / "outputs.onnx"
    precision = opts["precision"]
    if precision == "int8":
        batches = calibration()  # loads and normalises the train split: once
        log(f"calibrating INT8 ranges on {sum(len(b) for b in batches)} training images")
        graph.to_int8(current, work / "int8.onnx", batches, work)
        current = work / "int8.onnx"
    elif precision == "fp16":
        graph.to_fp16(current, work / "fp16.onnx")
        current = work / "fp16.onnx"
    preprocess = None
    if opts.get("preprocess"):
        preprocess = (graph.Preprocess.from_model_info(info, opts["input_format"]) if opts["preprocess"] == "auto"
                      else graph.Preprocess.from_file(Path(opts["preprocess"]), info))
        preprocess.layout = opts["input_format"]
        preprocess.check(info["channels"])
    graph.shape_input(current, work / "input.onnx", opts.get("batch"), opts["input_format"], preprocess)
    current = work / "input.onnx"
    if precision == "fp32":
        graph.optimize_fp32(current, work / "fp32.onnx")
        current = work / "fp32.onnx"
    graph.cast_outputs(current, work / "candidate.onnx", opts.get("output_type") == "fp16")
    return work / "candidate.onnx"


def calibration_batches(images: np.ndarray, count: int, normalize) -> list[np.ndarray]:
    """``count`` of ``images`` picked at random (seed 0), normalised, in whole batches of
    CALIBRATION_BATCH: INT8 ranges are averaged over batches, and a short last batch would
    weigh as much as a full one."""
    picked = images[np.random.default_rng(0).permutation(len(images))[:count]]
    batch = min(CALIBRATION_BATCH, len(picked))
    return [normalize(picked[i:i + batch]) for i in range(0, len(picked) - len(picked) % batch, batch)]


def feeder(info: dict, opts: dict):
    """uint8 images of the dataset -> what the converted model takes as input."""
    counting = info["task"] == COUNTING

    def feed(images: np.ndarray) -> np.ndarray:
        if opts.get("preprocess"):
            x = images[..., None] if counting else images  # NHWC uint8
            return x if opts["input_format"] == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        x = inputs.normalize_gray(images) if counting else inputs.normalize(images)
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if opts["input_format"] == "NHWC" else x
    return feed


def convert(run: Path, rec: dict, log) -> dict:
    """Export the job's model, build the template's model, measure the three on the validation
    split, judge the conversion; keep the model unless the gate failed it."""
    opts, threads = rec["options"], rec["threads"]
    job_run, info = Path(rec["job_run"]), rec["model_info"]
    counting = info["task"] == COUNTING
    engine = _engine(info["engine"])
    engine.setup(threads)
    size = opts["size"]
    data_url = Path(rec["data_url"])
    load = inputs.load_counting if counting else inputs.load_classification
    images, targets = load(data_url, "val", size)
    log(f"validation split: {len(images)} images at {size} px; {threads} threads for every model")

    net = engine.load(info, checkpoint(job_run / "output", info["engine"]))
    trained_size = size == info["image_size"]
    export_dir = job_run if trained_size else run / "work" / "export"
    exported = export_job(job_run, engine, net, info, size, export_dir, log)
    plain = export_dir / exported["onnx"]

    work = run / "work"
    work.mkdir(exist_ok=True)

    def calibration():
        x_train, _ = load(data_url, "train", size)
        norm = inputs.normalize_gray if counting else inputs.normalize
        return calibration_batches(x_train, opts["calibration_images"], norm)

    candidate = build_candidate(plain, opts, info, calibration, work, log)
    log(f"built {opts['template']} ({candidate.stat().st_size / 1e6:.1f} MB); measuring parity on the validation split")
    truth = targets.reshape(len(targets), -1).sum(1) if counting else targets
    models = {"source": (engine, net, checkpoint(job_run / "output", info["engine"])), "plain": plain,
              "candidate": candidate}
    rows = measure(models, info, opts, images, truth, threads, work)

    # FP16 outputs (the seeds' output type) carry FP16 rounding whatever the model's precision
    judged = "fp16" if opts["precision"] == "fp32" and opts["output_type"] == "fp16" else opts["precision"]
    gate = parity.judge(info["task"], judged, rows[2])
    if not opts.get("output_nodes"):  # a plain export that is not the source's arithmetic fails the task
        plain_gate = parity.judge(info["task"], "fp32", rows[1])
        gate = plain_gate if plain_gate["verdict"] == parity.FAILED else gate
    report = {"task": rec["task"], "version": run.name, "template": opts["template"], "precision": opts["precision"],
              "options": opts, "threads": threads, "validation_images": len(images), "opset": exported["opset"],
              **gate, "models": rows, "tolerances": TOLERANCES}
    workspace.write_json(run / "report.json", report)
    if gate["verdict"] == parity.FAILED:
        raise LabkitError(gate["reason"], "see report.json; the converted model was not kept")
    os.replace(candidate, run / "model.onnx")  # the one step that makes the artifact visible
    return report


TOLERANCES = {"fp32_relative": parity.FP32_TOLERANCE, "min_top1_agreement": parity.MIN_AGREEMENT,
              "agreement_floor": parity.AGREEMENT_FLOOR, "max_count_drift": parity.MAX_COUNT_DRIFT,
              "count_drift_ceiling": parity.COUNT_DRIFT_CEILING, "confidence": parity.CONFIDENCE}
SOURCE_LABELS = {"pytorch": "PyTorch (eager)", "mindspore": "MindSpore (graph mode)"}


def measure(models: dict, info: dict, opts: dict, images: np.ndarray, truth: np.ndarray, threads: int,
            work: Path) -> list[dict]:
    """The report's rows: the source engine's model, the plain ONNX export and the converted
    model, each compared (outputs against the source's; the chosen output nodes against the
    same tensors of the plain export) and timed alike."""
    task = info["task"]
    engine, net, source_file = models["source"]
    plain, candidate = models["plain"], models["candidate"]
    x_float = (inputs.normalize_gray if task == COUNTING else inputs.normalize)(images)
    feed = feeder(info, opts)
    plain_session, conv_session = onnx_session(plain, threads), onnx_session(candidate, threads)
    natural = not opts.get("output_nodes")

    def run_source(x):
        return engine.predict(net, x)

    def run_plain(x):
        return plain_session.run(None, {graph.INPUT: x})[0]

    def run_conv(x):
        return conv_session.run(None, {graph.INPUT: x})[0]

    source = parity.run_batched(run_source, x_float, None)
    plain_out = parity.run_batched(run_plain, x_float, None)
    conv_out = parity.run_batched(run_conv, feed(images), opts.get("batch"))
    if natural:
        reference = source
    else:
        graph.select_outputs(plain, opts["output_nodes"], work / "plain_outputs.onnx")
        selected = onnx_session(work / "plain_outputs.onnx", threads)
        reference = parity.run_batched(lambda x: selected.run(None, {graph.INPUT: x})[0], x_float, None)
    budget = opts["timing_seconds"]
    return [
        {"model": SOURCE_LABELS[info["engine"]], "file": str(source_file), "size_mb": source_file.stat().st_size / 1e6,
         **(parity.compare(task, source, source, truth) if natural else {}),
         **parity.speed(run_source, x_float, None, budget)},
        {"model": "ONNX (plain export)", "file": str(plain), "size_mb": plain.stat().st_size / 1e6,
         **(parity.compare(task, plain_out, source, truth) if natural else {}),
         **parity.speed(run_plain, x_float, None, budget)},
        {"model": opts["template"], "file": "model.onnx", "size_mb": candidate.stat().st_size / 1e6,
         **parity.compare(task, conv_out, reference, truth if natural else None),
         **parity.speed(run_conv, feed(images), opts.get("batch"), budget)},
    ]


def export_only(job_run: Path) -> int:
    """``--export JOB_RUN``: the job's plain exports at its trained size, nothing else."""
    info = workspace.read_json(job_run / "output" / "model.json")
    engine = _engine(info["engine"])
    engine.setup(cpu.cores())
    net = engine.load(info, checkpoint(job_run / "output", info["engine"]))
    export_job(job_run, engine, net, info, info["image_size"], job_run, print)
    return 0


def main(run_dir: str) -> int:
    run = Path(run_dir)
    rec = records.update(run, state="RUNNING")
    with open(run / "convert.log", "a", encoding="utf-8") as logfile:
        def log(message: str) -> None:
            logfile.write(message + "\n")
            logfile.flush()

        try:
            report = convert(run, rec, log)
        except LabkitError as exc:
            reason = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
            log(f"FAILED: {reason}")
            records.finish(run, "FAILED", reason=reason)
            return 1
        except Exception as exc:  # any failure of an export or a converter ends the task, with the reason
            logfile.write(traceback.format_exc())
            records.finish(run, "FAILED", reason=f"{type(exc).__name__}: {exc}"[:500])
            return 1
        finally:
            shutil.rmtree(run / "work", ignore_errors=True)
        conv = report["models"][2]
        summary = {k: conv[k] for k in ("accuracy", "mae", "top1_agreement", "count_diff", "relative_diff",
                                        "latency_ms", "throughput", "size_mb") if k in conv}
        log(f"{report['verdict']}: {report['reason']}")
        log("COMPLETED: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))
        records.finish(run, "COMPLETED", metrics=summary, verdict=report["verdict"], note=report["reason"])
    return 0


if __name__ == "__main__":
    sys.exit(export_only(Path(sys.argv[2])) if sys.argv[1] == "--export" else main(sys.argv[1]))
