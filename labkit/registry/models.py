"""The model registry: ``models/NAME/0.0.1/`` holds an imported model, ready to deploy:

    model.onnx     the model (from a job's export, a conversion, or a directory)
    labels.txt     class names, one per line (classification)
    serving.json   what the service needs: task, input name/type/layout/size, pre-processing
    config.json    the ModelArts-style description (formats.md): apis, metrics, dependencies
    run.json       the record: state NORMAL (validated) or FAILED with the reason

A model is NORMAL once ONNX Runtime loads it and it answers a test input with outputs of the
expected shape; otherwise the version is kept as FAILED, with the reason, and cannot be deployed.
"""
from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import numpy as np

from labkit import records, schemas, workspace
from labkit.artifacts import MODEL
from labkit.algorithms.inputs import normalization
from labkit.boundary import printable
from labkit.errors import LabkitError
from labkit.tasks import CLASSIFICATION, COUNTING

MODEL_TYPES = {"pytorch": "PyTorch", "mindspore": "MindSpore"}


def _root() -> Path:
    return MODEL.root()


def _versions(name: str) -> list[str]:
    return workspace.versions(_root() / name, MODEL.numbering)


def model_dir(ref: str) -> Path:
    """``NAME`` (its latest version) or ``NAME@0.0.2`` -> the version's directory."""
    return workspace.versioned(_root(), ref, "model", "import one with `labkit model import`", MODEL.numbering)


# --- sources: what each kind of import brings ----------------------------------------------

def _from_job(job: str) -> dict:
    from labkit import convert

    job_run, exported = convert.export(job)
    info = schemas.read(job_run / "output" / "model.json", schemas.ModelInfo)
    run = records.read(job_run)
    return {"onnx": job_run / exported["onnx"], "info": info, "preprocess": None, "layout": "NCHW",
            "metrics": run.get("metrics", {}), "eval": job_run / "output" / "eval.json",
            "source": {"kind": "job", "ref": f"{run['job']}@{run['version']}", "engine": info["engine"],
                       "dataset": run["dataset"]}}


def _from_conversion(task: str) -> dict:
    from labkit import convert

    path = convert.model_path(task)  # only a COMPLETED conversion has one
    rec = convert.show(task)
    info, opts = rec["model_info"], rec["options"]
    job_run = Path(rec["job_run"])
    return {"onnx": path, "info": {**info, "image_size": opts["size"]}, "preprocess": opts["preprocess"],
            "layout": opts["input_format"], "metrics": records.read(job_run).get("metrics", {}),
            "eval": job_run / "output" / "eval.json",
            "source": {"kind": "conversion", "ref": f"{rec['task']}@{rec['version']}", "engine": info["engine"],
                       "template": opts["template"], "parity": rec.get("metrics", {}),
                       "dataset": records.read(job_run)["dataset"]}}


def _from_dir(path: str) -> dict:
    """A directory with one ONNX model, ``labels.txt`` for a classifier, and optionally a
    ModelArts ``config.json`` (its model_algorithm and metrics are kept)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise LabkitError(f"{path} is not a directory", "give a directory holding model.onnx and labels.txt")
    models = sorted(folder.glob("*.onnx"))
    if len(models) != 1:
        raise LabkitError(f"{path} holds {len(models)} .onnx files", "put exactly one ONNX model in the directory")
    if models[0].is_symlink():
        raise LabkitError(f"{models[0]} is a link", "put the model file itself in the directory")
    config = schemas.read(folder / "config.json", schemas.ImportedConfig) if (folder / "config.json").exists() else {}
    label_file = folder / "labels.txt"
    try:
        text = label_file.read_text(encoding="utf-8") if label_file.exists() else ""
    except UnicodeDecodeError:
        raise LabkitError(f"{label_file} is not UTF-8 text", "one class name per line, in UTF-8") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    wrong = next((label for label in labels if not schemas.is_label(label)), None)
    if wrong is not None:
        raise LabkitError(f"{label_file} holds {printable(wrong)!r}, which is not a class name",
                          "1-64 printable characters per line, no '\\', no empty, '.' or '..' part")
    task = config.get("model_algorithm") or (CLASSIFICATION if labels else COUNTING)
    if task == CLASSIFICATION and not labels:
        raise LabkitError(f"{path} has no labels.txt", "add labels.txt with one class name per line")
    info = {"task": task, "labels": labels, "num_classes": len(labels) or None, "engine": None, "arch": None}
    return {"onnx": models[0], "info": info, "preprocess": None, "layout": None, "metrics": config.get("metrics", {}),
            "eval": None, "source": {"kind": "directory", "ref": str(folder.resolve()), "engine": None}}


# --- import --------------------------------------------------------------------------------

def choose_source(kind: str | None = None, conversion: str | list[str] | None = None, job: str | None = None,
                  directory: str | None = None) -> dict:
    """What to import, as ``import_model``'s keyword: ``{"from_conversion" | "from_job" | "from_dir": REF}``.
    ``kind`` is "conversion", "job" or "dir"; by default the latest completed conversion, else a job
    (the latest completed one; a quick one is trained if there is none). ``conversion`` may be a list:
    the first that passed its parity gate is taken (e.g. INT8, else FP32)."""
    from labkit import convert, train

    if kind is None:
        conversion = conversion or convert.latest_completed()
        kind = "conversion" if conversion else "job"
    if kind == "conversion":
        if isinstance(conversion, list):
            conversion = convert.first_completed(conversion)
        conversion = conversion or convert.latest_completed()
        if not conversion:
            raise LabkitError("there is no completed conversion to import", 'run stage 3 first, or import a "job"')
        return {"from_conversion": conversion}
    if kind == "job":
        return {"from_job": job or train.ensure_job()}
    if kind == "dir":
        if not directory:
            raise LabkitError("a directory source needs its path", "set DIRECTORY to a folder with one .onnx file")
        return {"from_dir": directory}
    raise LabkitError(f"unknown source {kind!r}", 'use "conversion", "job" or "dir"')


def source_name(source: dict) -> str:
    """The model name a source suggests: its job, conversion or folder name, without a version."""
    (ref,) = source.values()
    return Path(str(ref).split("@")[0].rstrip("/")).name


def import_model(name: str, version: str | None = None, from_job: str | None = None,
                 from_conversion: str | None = None, from_dir: str | None = None, log=print) -> dict:
    """Import a model as ``name@version`` (default: the next patch version); validate it."""
    workspace.check_name(name, "model name")
    sources = [s for s in (from_job, from_conversion, from_dir) if s]
    if len(sources) != 1:
        raise LabkitError("import needs exactly one source", "give one of --from-job, --from-conversion, --from-dir")
    if version is not None and not MODEL.numbering.pattern.match(version):
        raise LabkitError(f"version {version!r} is not {MODEL.numbering.spelling}", "e.g. --version 0.0.1")
    src = _from_job(from_job) if from_job else _from_conversion(from_conversion) if from_conversion else _from_dir(from_dir)
    folder = _root() / name
    workspace.remove_stale_staging(folder)
    staged = workspace.staging_dir(folder)
    try:
        shutil.copyfile(src["onnx"], staged / "model.onnx")
        info = src["info"]
        if info.get("labels"):
            (staged / "labels.txt").write_text("\n".join(info["labels"]) + "\n", encoding="utf-8")
        state, reason, serving = "NORMAL", None, None
        try:
            serving = validate(staged / "model.onnx", src)
        except LabkitError as exc:
            state, reason = "FAILED", exc.message
        if serving:
            workspace.write_json(staged / "serving.json", serving)
        workspace.write_json(staged / "config.json", modelarts_config(src, serving))
        record = {"model": name, "state": state, "source": src["source"], "timestamps": {state: workspace.now()},
                  "metrics": src["metrics"]}
        if reason:
            record["reason"] = reason
        workspace.write_json(staged / "run.json", record)  # its version is its folder's name
        version = workspace.publish_version(staged, folder, MODEL.numbering, version)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    log(f"model {name}@{version}: {state}" + (f" ({reason})" if reason else "") + f", from {src['source']['kind']} "
        f"{src['source']['ref']}")
    return show(f"{name}@{version}")


def validate(path: Path, src: dict) -> dict:
    """Load the model in ONNX Runtime, answer a test input, check the output's shape; return
    ``serving.json``: how the service feeds it and reads its answer."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several types for files that are not loadable models
        raise LabkitError(f"ONNX Runtime cannot load the model: {str(exc)[:300]}",
                          "export a valid ONNX model (onnx.checker.check_model passes)") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise LabkitError(f"the model has {len(inputs)} inputs; an image model has one", "export one image input")
    inp, info = inputs[0], src["info"]
    dims = list(inp.shape)
    if len(dims) != 4:
        raise LabkitError(f"the model's input {inp.name} has shape {dims}, not an image batch", "export N,C,H,W or N,H,W,C")
    layout = src["layout"] or ("NHWC" if isinstance(dims[3], int) and dims[3] in (1, 3) and dims[1] not in (1, 3)
                               else "NCHW")
    channels, height, width = (dims[3], dims[1], dims[2]) if layout == "NHWC" else (dims[1], dims[2], dims[3])
    size = info.get("image_size") or (height if isinstance(height, int) else 224)
    if channels not in (1, 3):
        raise LabkitError(f"the model's input has {channels} channels", "image models take 1 (grey) or 3 (RGB)")
    dtype = {"tensor(uint8)": "UINT8", "tensor(float)": "FP32", "tensor(float16)": "FP16"}.get(inp.type)
    if dtype is None:
        raise LabkitError(f"the model's input type is {inp.type}", "take uint8 pixels or float32 tensors")
    batch = dims[0] if isinstance(dims[0], int) else None
    test = np.zeros((batch or 2, *((size, size, channels) if layout == "NHWC" else (channels, size, size))),
                    {"UINT8": np.uint8, "FP32": np.float32, "FP16": np.float16}[dtype])
    try:
        answer = session.run(None, {inp.name: test})[0]
    except Exception as exc:  # noqa: BLE001 - any failure to answer makes the import FAILED, with ORT's reason
        raise LabkitError(f"the model does not answer a test input of shape {list(test.shape)}: {str(exc)[:300]}",
                          "check its input shape") from None
    counting = info["task"] == COUNTING
    if counting and answer.ndim != 4:
        raise LabkitError(f"a counting model must output a density map (N,1,h,w), got shape {list(answer.shape)}",
                          "export the density map as the first output")
    if not counting and (answer.ndim != 2 or answer.shape[1] != len(info["labels"])):
        raise LabkitError(f"the model outputs shape {list(answer.shape)} but there are {len(info['labels'])} labels",
                          "the first output must be (N, number of classes), matching labels.txt")
    norm = info.get("normalize") or normalization(channels)
    return {"task": info["task"], "input": {"name": inp.name, "datatype": dtype, "shape": dims, "layout": layout,
                                            "channels": channels, "size": size, "batch": batch},
            "outputs": [{"name": o.name, "shape": list(o.shape), "type": o.type} for o in outputs],
            "normalize": None if dtype == "UINT8" else norm, "labels": info.get("labels") or []}


def _classification_metrics(eval_path: Path | None, metrics: dict) -> dict:
    """accuracy, and macro precision, recall and F1 from the job's confusion matrix."""
    out = {"f1": 0.0, "accuracy": float(metrics.get("accuracy", 0.0)), "precision": 0.0, "recall": 0.0}
    if eval_path is None or not eval_path.exists():
        return out
    matrix = np.array(schemas.read(eval_path, schemas.Evaluation).get("confusion", []), float)
    if matrix.size:
        tp = np.diag(matrix)
        precision = np.divide(tp, matrix.sum(0), out=np.zeros_like(tp), where=matrix.sum(0) > 0)
        recall = np.divide(tp, matrix.sum(1), out=np.zeros_like(tp), where=matrix.sum(1) > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
        out.update(precision=float(precision.mean()), recall=float(recall.mean()), f1=float(f1.mean()))
    return out


def modelarts_config(src: dict, serving: dict | None) -> dict:
    """config.json in ModelArts' schema (docs/reference/formats.md), for the model's task."""
    task = src["info"]["task"]
    if task == COUNTING:
        metrics = {k: float(src["metrics"][k]) for k in ("mae", "rmse") if k in src["metrics"]}
        response = {"count": {"type": "number"},
                    "density_map": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}
    else:
        metrics = _classification_metrics(src["eval"], src["metrics"])
        response = {"predicted_label": {"type": "string"},
                    "scores": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                                          "items": [{"type": "string"}, {"type": "number"}]}}}
    engine = src["source"].get("engine")
    return {
        "model_algorithm": task,
        "model_type": MODEL_TYPES.get(engine, "Image"),
        "runtime": "python3.11",
        "metrics": metrics,
        "apis": [{"protocol": "http", "url": "/", "method": "post",
                  "request": {"Content-type": "multipart/form-data",
                              "data": {"type": "object", "properties": {"images": {"type": "file"}}}},
                  "response": {"Content-type": "application/json",
                               "data": {"type": "object", "properties": response}}}],
        "dependencies": [{"installer": "pip", "packages": [
            {"package_name": "onnxruntime", "package_version": metadata.version("onnxruntime"),
             "restraint": "ATLEAST"}]}],
    }


# --- look ----------------------------------------------------------------------------------

def show(ref: str) -> dict:
    folder = model_dir(ref)
    record = {**records.read(folder, schemas.Model), "version": folder.name, "dir": str(folder)}
    record["versions"] = _versions(folder.parent.name)
    if (folder / "serving.json").exists():
        record["serving"] = schemas.read(folder / "serving.json", schemas.Serving)
    return record


def config(ref: str) -> dict:
    return workspace.read_json(model_dir(ref) / "config.json")


def list_models() -> list[dict]:
    refs = [f"{folder.name}@{version}" for folder in sorted(p for p in _root().iterdir()
                                                           if p.is_dir() and not p.name.startswith("."))
            for version in _versions(folder.name)]
    return list(workspace.readable(refs, show))


def ensure_model(log=print) -> str:
    """``NAME@VERSION`` of the most recently imported NORMAL model; when there is none, import
    the latest completed conversion, or else a trained job's ONNX export (training a quick
    one if there is none), and say so. This lets the deploy notebook run on its own."""
    normal = [r for r in list_models() if r["state"] == "NORMAL"]
    if normal:
        latest = max(normal, key=lambda r: r["timestamps"]["NORMAL"])
        return f"{latest['model']}@{latest['version']}"
    from labkit import convert, train

    task = convert.latest_completed()
    if task:
        name = task.split("@")[0]
        log(f"no model in the registry yet: importing conversion {task} as {name}")
        record = import_model(name, from_conversion=task, log=log)
    else:
        job = train.ensure_job(log=log)
        name = job.split("@")[0]
        log(f"no model in the registry yet: importing job {job}'s ONNX export as {name}")
        record = import_model(name, from_job=job, log=log)
    if record["state"] != "NORMAL":
        raise LabkitError(f"the imported model {name} is {record['state']}: {record.get('reason')}",
                          "see `labkit model show`")
    return f"{record['model']}@{record['version']}"


def deployable(ref: str) -> tuple[Path, dict]:
    """The model's directory and serving.json; a FAILED model is a clear error."""
    record = show(ref)
    if record["state"] != "NORMAL":
        raise LabkitError(f"model {record['model']}@{record['version']} is {record['state']}: {record.get('reason')}",
                          "import a valid model (labkit model list shows each model's state)")
    return Path(record["dir"]), record["serving"]
