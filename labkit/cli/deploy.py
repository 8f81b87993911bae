"""Stage 5, deploy: ``labkit service`` (online services over HTTP), ``labkit batch`` (a folder
of images) and ``labkit pipeline`` (a MindX-style pipeline with per-plugin timing)."""
from __future__ import annotations

import json

from labkit.cli.output import emit, on_terminal, progress, table, verb, verbs
from labkit.errors import LabkitError
from labkit.serve.batch_prediction import FORMATS


def _service_line(r: dict) -> str:
    alive = f", {r['instances_alive']}/{r['instances']} instances alive" if "instances_alive" in r else ""
    return (f"service {r['service']}: {r['state']} {r.get('url', '')} ({r['model']}{alive})"
            + (f"\n  reason: {r['reason']}" if r.get("reason") and r["state"] != "RUNNING" else ""))


def deploy(args) -> int:
    from labkit.serve import services

    rec = services.deploy(args.model, name=args.name, instances=args.instances, auto_stop=args.auto_stop,
                          port=args.port, host=args.host, log=progress)
    emit(args, rec, f"{rec['url']}\ncurl -F images=@IMAGE.jpg {rec['url']}/")
    return 0


def start(args) -> int:
    from labkit.serve import services

    rec = services.start(args.service, log=progress)
    emit(args, rec, _service_line(rec))
    return 0


def list_(args) -> int:
    from labkit.serve import services

    found = services.list_services()
    rows = [{"service": r["service"], "state": r["state"], "url": r.get("url", ""), "model": r["model"],
             "instances": r["instances"]} for r in found]
    emit(args, found, table(rows, ["service", "state", "url", "model", "instances"]))
    return 0


def predict(args) -> int:
    from labkit.serve import services

    print(json.dumps(services.predict(args.service, args.image), ensure_ascii=False))  # the answer is JSON already
    return 0


def stop(args) -> int:
    from labkit.serve import services

    if args.all == bool(args.service):
        raise LabkitError("name one service, or --all", "labkit service stop NAME | labkit service stop --all")
    stopped = services.stop_all() if args.all else [services.stop(args.service)]
    emit(args, stopped, "\n".join(map(_service_line, stopped)) or "no service was running")
    return 0


def batch(args) -> int:
    from labkit.serve import batch_prediction

    summary = batch_prediction.create(args.model, args.input, args.output, args.format, progress=on_terminal())
    emit(args, summary, f"{summary['predicted']} of {summary['images']} images predicted with {summary['model']} -> "
                        f"{summary['output']}" + (f"; {summary['errors']} bad file(s) listed in errors.jsonl"
                                                  if summary["errors"] else ""))
    return 0


def pipeline(args) -> int:
    from labkit.serve import pipeline

    stats = pipeline.run(args.pipeline, args.input, args.output, model=args.model)
    lines = [f"stream {stats['stream']}: {stats['images']} images, {stats['errors']} bad -> {stats['output']}"]
    if stats["e2e"]:
        lines.append(f"{'plugin':<28} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9}")
        for name, st in [("end to end", stats["e2e"]), *stats["plugins"].items()]:
            lines.append(f"{name:<28} {st['mean_ms']:>9.3f} {st['p50_ms']:>9.3f} {st['p99_ms']:>9.3f}")
    emit(args, stats, "\n".join(lines))
    return 0


def add(sub) -> None:
    service = verbs(sub, "service", "stage 5: online services (HTTP, on this machine)")
    d = verb(service, "deploy", "start a model as a service; prints its URL once it answers", deploy,
             ("model", "NAME[@VERSION]"))
    d.add_argument("--name", help="the service's name (default: the model's)")
    d.add_argument("--instances", type=int, default=1, help="processes, each with its own ONNX Runtime session")
    d.add_argument("--auto-stop", type=float, metavar="SECONDS", help="stop after this many seconds (the seeds: 3600)")
    d.add_argument("--port", type=int, default=0, help="default: a free port")
    d.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    verb(service, "list", "list services with their state and URL", list_)
    p = service.add_parser("predict", help="send an image to a service's predict API; prints its JSON answer")
    p.add_argument("service")
    p.add_argument("image")
    p.set_defaults(func=predict)
    s = verb(service, "stop", "stop a service (it finishes the requests in flight)", stop)
    s.add_argument("service", nargs="?")
    s.add_argument("--all", action="store_true", help="stop every running service")
    verb(service, "start", "start a stopped service again, as it was deployed", start, ("service", "SERVICE"))

    b = verb(verbs(sub, "batch", "stage 5: batch prediction of a folder of images"), "create",
             "predict every image of a folder into JSONL or CSV", batch, ("model", "NAME[@VERSION]"))
    b.add_argument("--input", required=True, help="a folder of images (searched recursively)")
    b.add_argument("--output", required=True, help="where predictions, result files and errors go")
    b.add_argument("--format", choices=FORMATS, default="jsonl")

    r = verb(verbs(sub, "pipeline", "stage 5: run a MindX-style pipeline JSON with per-plugin timing"), "run",
             "every image of a folder through the pipeline", pipeline, ("pipeline", "PIPELINE.json"))
    r.add_argument("--input", required=True, help="a folder of images")
    r.add_argument("--output", help="default: pipeline-result/ next to the input folder")
    r.add_argument("--model", metavar="NAME[@VERSION]", help="the registry model to run (overrides modelPath)")
