"""``labkit model``: stage 4, the model registry."""
from __future__ import annotations

import json

from labkit.cli.output import delete_verb, emit, table, verb, verbs
from labkit.registry.export import FORMATS


def _line(r: dict) -> str:
    src = r["source"]
    return (f"model {r['model']}@{r['version']}: {r['state']}" + (f" ({r['reason']})" if r.get("reason") else "")
            + f", from {src['kind']} {src['ref']}")


def import_(args) -> int:
    from labkit import registry

    rec = registry.import_model(args.name, args.version, from_job=args.from_job, from_conversion=args.from_conversion,
                                from_dir=args.from_dir, log=lambda m: None)
    normal = rec["state"] == "NORMAL"
    emit(args, rec, _line(rec) + (f"\nnext: labkit service deploy {rec['model']}@{rec['version']}" if normal else ""))
    return 0 if normal else 1


def list_(args) -> int:
    from labkit import registry

    found = registry.list_models()
    rows = [{"model": f"{r['model']}@{r['version']}", "state": r["state"], "task": (r.get("serving") or {}).get("task", ""),
             "input": " ".join(str(v) for v in [(r.get("serving") or {}).get("input", {}).get(k, "")
                                               for k in ("datatype", "layout", "size")]),
             "source": f"{r['source']['kind']} {r['source']['ref']}"} for r in found]
    emit(args, found, table(rows, ["model", "state", "task", "input", "source"]))
    return 0


def show(args) -> int:
    from labkit import registry

    r = registry.show(args.model)
    r["config"] = registry.config(args.model)
    emit(args, r, _line(r) + f"\ndirectory {r['dir']}\nconfig.json:\n" + json.dumps(r["config"], indent=2))
    return 0


def export(args) -> int:
    from labkit.registry.export import export

    written = export(args.model, args.format, args.dir)
    repo = written["repository"]
    if args.format == "triton":
        hint = f"next: tritonserver --model-repository {repo}"
    else:
        manifest = f"{repo}/{written['files'][-1]}"
        hint = (f"next: upload {repo} where KServe can read it (s3://, gs://, pvc://), put that URI in the "
                f"storageUri of {manifest}, then kubectl apply -f {manifest}")
    emit(args, written, f"model {written['model']} exported for {args.format} into {repo}:\n  "
                        + "\n  ".join(written["files"]) + "\n" + hint)
    return 0


def add(sub) -> None:
    group = verbs(sub, "model", "stage 4: the model registry")
    i = verb(group, "import", "import a model from a job, a conversion or a directory; validates it", import_)
    i.add_argument("--name", required=True, help="the model's name")
    i.add_argument("--version", help="MAJOR.MINOR.PATCH (default: the next one, 0.0.1 first)")
    source = i.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-job", metavar="JOB[@VERSION]", help="a completed training job (its ONNX export)")
    source.add_argument("--from-conversion", metavar="TASK[@VERSION]", help="a completed conversion task")
    source.add_argument("--from-dir", metavar="DIR", help="a directory: one .onnx file, labels.txt, optional config.json")
    verb(group, "list", "list models and versions with their state", list_)
    verb(group, "show", "a model's record and config.json", show, ("model", "NAME[@VERSION]"))
    e = verb(group, "export", "write a model for a production server: a Triton model repository or a KServe "
                              "InferenceService", export, ("model", "NAME[@VERSION]"))
    e.add_argument("--format", choices=FORMATS, required=True,
                   help="triton: DIR/NAME/config.pbtxt + 1/model.onnx; kserve: the same and NAME.inferenceservice.yaml")
    e.add_argument("dir", help="the directory to write into (the model repository)")
    delete_verb(group, "model", "NAME[@VERSION]")
