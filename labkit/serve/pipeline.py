"""The MindX SDK pipeline of the seeds, run with Pillow, NumPy and ONNX Runtime.

A pipeline file is the seeds' JSON: one stream, whose elements each name a ``factory``, its
``props`` and the ``next`` element, from ``appsrc`` to ``appsink``. The plugins labkit runs:

    mxpi_imagedecoder        image bytes -> RGB (or grey, for a one-channel model) pixels
    mxpi_imageresize         resizeHeight x resizeWidth (stretch); default: the model's input size
    mxpi_opencvcentercrop    cropHeight x cropWidth from the centre; default: the model's input size
    mxpi_tensorinfer         modelPath: a registry model (NAME[@VERSION]) or a model directory
    mxpi_classpostprocessor  postProcessConfigPath (CLASS_NUM, SOFTMAX, TOP_K), labelPath (one name per line)
    labkit_countpostprocessor  a density map -> the head count (labkit's; MindX has no such plugin)
    mxpi_dataserialize       the result as JSON

Every image's time in each plugin and end to end is recorded; ``performance-statistics.json``
holds mean, p50 and p99 per plugin and end-to-end (the seeds' performance-statistics logs).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from labkit import boundary, schemas, workspace
from labkit.boundary import printable
from labkit.data.images import ImageError, decode, list_images
from labkit.errors import LabkitError
from labkit.serve.runtime import Model, ranked
from labkit.tasks import CLASSIFICATION, COUNTING

# The pipelines that come with labkit, one per task (the seeds' classification pipeline, and its
# counting twin), in the repository's data/pipelines/.
BUNDLED = {CLASSIFICATION: "classification.json", COUNTING: "crowd.json"}
SUPPORTED = ("appsrc", "mxpi_imagedecoder", "mxpi_imageresize", "mxpi_opencvcentercrop", "mxpi_tensorinfer",
             "mxpi_classpostprocessor", "labkit_countpostprocessor", "mxpi_dataserialize", "appsink")


def bundled(task: str) -> Path:
    """The pipeline that comes with labkit for ``task``."""
    return Path(__file__).resolve().parents[2] / "data" / "pipelines" / BUNDLED[task]


def load(path: Path) -> tuple[str, list[tuple[str, dict]]]:
    """The stream's name and its elements in order, from appsrc along ``next``."""
    try:
        spec = schemas.read(Path(path))
    except (OSError, LabkitError) as exc:
        why = exc.message if isinstance(exc, LabkitError) else exc.strerror
        raise LabkitError(f"cannot read the pipeline {path}: {why}", "give a pipeline JSON like data/pipelines/*.json") from None
    if not isinstance(spec, dict) or len(spec) != 1:
        raise LabkitError(f"{path} must hold exactly one stream", "{\"stream name\": {\"appsrc0\": {...}, ...}}")
    (stream, elements), = spec.items()
    if not isinstance(elements, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("props", {}), dict) and isinstance(e.get("next", ""), str)
            for e in elements.values()):
        raise LabkitError(f"stream {printable(stream)}: each element must be an object with a 'factory', and 'props' "
                          "(an object) and 'next' (a name) where it has them", "compare with data/pipelines/*.json")
    source = [name for name, e in elements.items() if isinstance(e, dict) and e.get("factory") == "appsrc"]
    if len(source) != 1:
        raise LabkitError(f"stream {stream} needs one appsrc element", "start the stream with an appsrc")
    chain, name = [], source[0]
    while name:
        if name not in elements or name in (n for n, _ in chain):
            raise LabkitError(f"stream {stream}: element {name!r} is missing or visited twice", "check the 'next' fields")
        element = elements[name]
        if element.get("factory") not in SUPPORTED:
            raise LabkitError(f"element {name}: plugin {element.get('factory')!r} is not one labkit runs",
                              f"use {', '.join(SUPPORTED)}")
        chain.append((name, element))
        name = element.get("next")
    if chain[-1][1]["factory"] != "appsink":
        raise LabkitError(f"stream {stream} does not end in an appsink", "set the last element's factory to appsink")
    return stream, chain


def _int_prop(props: dict, key: str, default: int) -> int:
    value = props.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LabkitError(f"property {key}={value!r} is not a number", f"e.g. \"{key}\": \"224\"") from None


def _text(path: Path) -> str:
    """A text file the pipeline names; a clear error if it cannot be read as UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabkitError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                          "the pipeline's files are UTF-8 text beside the pipeline JSON") from None


def _read_cfg(path: Path) -> dict:
    conf = {}
    for line in _text(path).splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = (p.strip() for p in line.split("=", 1))
            conf[key] = value
    return conf


class Pipeline:
    def _beside(self, rel, what: str, kind: str = "file") -> Path:
        """A file the pipeline names, inside the pipeline's folder (``boundary``)."""
        if not isinstance(rel, str):
            raise LabkitError(f"{what} must be a path, got {printable(repr(rel))}", "a path beside the pipeline JSON")
        return boundary.inside(self.path.parent, rel, what, kind)

    def __init__(self, path: Path, model: str | None = None):
        from labkit import registry

        self.path = Path(path)
        self.stream, self.chain = load(self.path)
        infer = [p for _, e in self.chain if e["factory"] == "mxpi_tensorinfer" for p in [e.get("props", {})]]
        if len(infer) != 1:
            raise LabkitError(f"stream {self.stream} needs one mxpi_tensorinfer", "add one, with a modelPath")
        ref = model or infer[0].get("modelPath")
        if not ref:
            raise LabkitError("mxpi_tensorinfer has no modelPath", "name a registry model, or pass --model NAME")
        folder = self._beside(ref, "modelPath", kind="dir") if not boundary.problem(ref) else None
        self.model = Model(folder if folder and (folder / "serving.json").is_file() else registry.deployable(ref)[0],
                           threads=None)
        self.size = self.model.input["size"]
        self.grey = self.model.input["channels"] == 1
        self.post = {}
        for _, element in self.chain:
            if element["factory"] == "mxpi_classpostprocessor":
                props = element.get("props", {})
                conf = (_read_cfg(self._beside(props["postProcessConfigPath"], "postProcessConfigPath"))
                        if props.get("postProcessConfigPath") else {})
                labels = self.model.labels
                if props.get("labelPath"):
                    labels = [ln.strip() for ln in _text(self._beside(props["labelPath"], "labelPath")).splitlines()
                              if ln.strip()]
                classes = int(conf.get("CLASS_NUM", len(labels)))
                if classes != len(self.model.labels):
                    raise LabkitError(f"CLASS_NUM={classes} but the model has {len(self.model.labels)} classes",
                                      "set CLASS_NUM in the post-processing config to the model's number of classes")
                self.post = {"labels": labels, "softmax": conf.get("SOFTMAX", "true").lower() == "true",
                             "top_k": int(conf.get("TOP_K", 5))}

    def run_one(self, data: bytes) -> tuple[dict, dict]:
        """One image through the chain: (its result, seconds per plugin)."""
        timings, value = {}, data
        for name, element in self.chain:
            start = time.perf_counter()
            value = self._plugin(element["factory"], element.get("props", {}), value)
            timings[name] = time.perf_counter() - start
        return value, timings

    def _plugin(self, factory: str, props: dict, value):
        if factory in ("appsrc", "appsink"):
            return value
        if factory == "mxpi_imagedecoder":
            return decode(value, "L" if self.grey else "RGB")
        if factory == "mxpi_imageresize":
            h, w = _int_prop(props, "resizeHeight", self.size), _int_prop(props, "resizeWidth", self.size)
            return np.asarray(Image.fromarray(value).resize((w, h), Image.Resampling.BILINEAR))
        if factory == "mxpi_opencvcentercrop":
            h, w = _int_prop(props, "cropHeight", self.size), _int_prop(props, "cropWidth", self.size)
            top, left = max(0, (value.shape[0] - h) // 2), max(0, (value.shape[1] - w) // 2)
            return value[top:top + h, left:left + w]
        if factory == "mxpi_tensorinfer":
            if value.shape[:2] != (self.size, self.size):
                raise LabkitError(f"the model takes {self.size}x{self.size} images, the pipeline gives "
                                  f"{value.shape[0]}x{value.shape[1]}", "make the crop (or resize) the model's size")
            return self.model.run(self.model.from_pixels(value)[None])[0][0]
        if factory == "mxpi_classpostprocessor":
            order, scores = ranked(value, self.post["top_k"], self.post["softmax"])
            return {"MxpiClass": [{"classId": int(i), "className": self.post["labels"][i],
                                   "confidence": float(scores[i])} for i in order]}
        if factory == "labkit_countpostprocessor":
            return {"count": float(value.sum()), "density_shape": list(value.shape[-2:])}
        if factory == "mxpi_dataserialize":
            return json.loads(json.dumps(value))
        raise AssertionError(factory)  # load() admits only SUPPORTED factories


def _stats(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"mean_ms": float(ms.mean()), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "count": len(ms)}


def run(pipeline: Path, input_dir: Path, output_dir: Path | None = None, model: str | None = None,
        progress: bool = True) -> dict:
    """Every image of ``input_dir`` through the pipeline. Writes, in ``output_dir``, one
    ``<stem>_1.txt`` per image (class indices best first, or the count: what ``labkit eval``
    reads), ``results.jsonl``, ``errors.jsonl`` (bad images, not fatal) and
    ``performance-statistics.json``; returns the statistics."""
    from tqdm.auto import tqdm

    pipe = Pipeline(pipeline, model)
    images = list_images(input_dir)
    out = Path(output_dir or Path(input_dir).parent / "pipeline-result")
    out.mkdir(parents=True, exist_ok=True)
    per_plugin = {name: [] for name, _ in pipe.chain}
    e2e, errors = [], []
    with open(out / "results.jsonl", "w", encoding="utf-8") as results:
        for path in tqdm(images, desc=pipe.stream, unit="img", disable=not progress):
            start = time.perf_counter()
            try:
                value, timings = pipe.run_one(path.read_bytes())
            except ImageError as exc:
                errors.append({"file": str(path), "error": str(exc)})
                continue
            e2e.append(time.perf_counter() - start)
            for name, seconds in timings.items():
                per_plugin[name].append(seconds)
            results.write(json.dumps({"file": str(path), "result": value}, ensure_ascii=False) + "\n")
            line = (" ".join(str(c["classId"]) for c in value["MxpiClass"]) if "MxpiClass" in value
                    else f"{value['count']:.4f}" if "count" in value else "")
            (out / f"{path.stem}_1.txt").write_text(line + "\n", encoding="utf-8")
    with open(out / "errors.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in errors)
    stats = {"stream": pipe.stream, "images": len(e2e), "errors": len(errors), "e2e": _stats(e2e) if e2e else None,
             "plugins": {name: _stats(v) for name, v in per_plugin.items() if v}, "output": str(out)}
    workspace.write_json(out / "performance-statistics.json", stats)
    return stats
