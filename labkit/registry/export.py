"""A registry model leaves for a production server (``labkit model export``).

- ``triton``: a Triton Inference Server model repository, ``DIR/NAME/config.pbtxt`` and
  ``DIR/NAME/1/model.onnx``, served by Triton's ONNX Runtime backend with dynamic batching;
  ``labels.txt`` beside the config names the classes (Triton's classification extension).
- ``kserve``: the same repository plus ``DIR/NAME.inferenceservice.yaml``, a KServe InferenceService
  (ONNX model format, Open Inference Protocol v2) whose ``storageUri`` is a placeholder for where
  the repository is uploaded.

The model is exported as it is in the registry: its input (name, type, layout, size) is the one
labkit's own service takes, so a V2 client of labkit's service talks to Triton or KServe
unchanged; a model converted with pre-processing inside takes raw uint8 pixels there too.
docs/reference/protocols.md says what each field of the config and the manifest means.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from labkit.errors import LabkitError
from labkit.registry.serving import model_config

FORMATS = ("triton", "kserve")
STORAGE_URI = "s3://YOUR-BUCKET/labkit-models"   # the placeholder the README explains
_ENUMS = {"data_type", "format", "kind"}   # protobuf enum fields: written bare, not quoted


def export(ref: str, fmt: str, out: str | Path) -> dict:
    """Write model ``ref`` (NAME or NAME@VERSION, NORMAL) under ``out`` as ``fmt``; return what
    was written."""
    from labkit.registry.models import deployable, show

    if fmt not in FORMATS:
        raise LabkitError(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    folder, serving = deployable(ref)
    record = show(ref)
    name, out = record["model"], Path(out)
    target, manifest = out / name, out / f"{name}.inferenceservice.yaml"
    for path in (target, manifest if fmt == "kserve" else target):
        if path.exists():
            raise LabkitError(f"{path} exists already", "export into another directory, or remove it first")
    staged = out / f".{name}.exporting"
    shutil.rmtree(staged, ignore_errors=True)
    (staged / "1").mkdir(parents=True)
    try:
        shutil.copyfile(folder / "model.onnx", staged / "1" / "model.onnx")
        labels = serving.get("labels") or []
        if labels:
            (staged / "labels.txt").write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
        (staged / "config.pbtxt").write_text(triton_config(name, serving), encoding="utf-8")
        staged.rename(target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    written = {"model": f"{name}@{record['version']}", "format": fmt, "repository": str(out),
               "files": sorted(str(p.relative_to(out)) for p in target.rglob("*") if p.is_file())}
    if fmt == "kserve":
        import yaml

        spec = inference_service(name, record["version"])
        manifest.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written["files"].append(manifest.name)
    return written


def triton_config(name: str, serving: dict) -> str:
    """``config.pbtxt``: the model configuration labkit's service reports (``serving.model_config``),
    with the input's layout, the class names, dynamic batching and CPU instances."""
    config = model_config(name, serving)
    config["input"][0]["format"] = f"FORMAT_{serving['input']['layout']}"
    if serving.get("labels"):
        config["output"][0]["label_filename"] = "labels.txt"
    if config["max_batch_size"]:
        config["dynamic_batching"] = {}
    config["instance_group"] = [{"kind": "KIND_CPU"}]
    return "\n".join(_text_format(config)) + "\n"


def _text_format(fields: dict, pad: str = "") -> list[str]:
    """Protobuf text format of a message given as a dict (nested messages, repeated messages
    and scalars, enums by name)."""
    lines = []
    for key, value in fields.items():
        if isinstance(value, dict):
            lines += [f"{pad}{key} {{", *_text_format(value, pad + "  "), f"{pad}}}"]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{pad}{key} [")
            for i, item in enumerate(value):
                lines += [f"{pad}  {{", *_text_format(item, pad + "    "), f"{pad}  }}" + ("," if i < len(value) - 1 else "")]
            lines.append(f"{pad}]")
        elif isinstance(value, str) and key not in _ENUMS:
            lines.append(f"{pad}{key}: {json.dumps(value, ensure_ascii=False)}")
        else:
            lines.append(f"{pad}{key}: {value}")
    return lines


def inference_service(name: str, version: str) -> dict:
    """A KServe InferenceService serving the exported repository with protocol v2."""
    resource = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "model"   # a DNS-1123 name
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": resource, "annotations": {"labkit/model": f"{name}@{version}"}},
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": "onnx"},
            "protocolVersion": "v2",
            "storageUri": STORAGE_URI,
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        }}},
    }
