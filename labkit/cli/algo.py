"""``labkit algo``: stage 2, the algorithm catalog, subscriptions and custom algorithms."""
from __future__ import annotations

from labkit.catalog import ENGINES
from labkit.cli.output import emit, table, verb, verbs
from labkit.tasks import CLASSIFICATION, TASKS


def _card(c, profile: str) -> dict:
    return {"name": c.name, "title": c.title, "task": c.task, "engines": list(c.engines), "version": c.version,
            "description": c.description, "input_size": c.input_size, "profile": profile,
            "hyper_parameters": c.table(profile), "weights": c.weights,
            "transfer": {step: c.transfer_step(step, profile) for step in c.transfer}}


def list_(args) -> int:
    from labkit import catalog

    subs = {(s["algorithm"], s["engine"]) for s in catalog.subscriptions()}
    rows = [{"name": c.name, "task": c.task, "engines": ",".join(c.engines), "version": c.version,
             "subscribed": ",".join(e for e in c.engines if (c.name, e) in subs) or "-", "title": c.title}
            for c in catalog.cards()]
    emit(args, rows, table(rows, ["name", "task", "engines", "subscribed", "version", "title"]))
    return 0


def show(args) -> int:
    from labkit import catalog, profiles

    c = catalog.card(args.algo)
    rec = _card(c, profiles.profile())
    human = [f"{c.name}  {c.title} (v{c.version})", f"task     {c.task}", f"engines  {', '.join(c.engines)}",
             c.description, f"hyper-parameters (defaults of the {rec['profile']} profile):",
             table(rec["hyper_parameters"], ["name", "type", "default", "range", "description"])]
    for key, w in c.weights.items():
        human += [f"weights  --hp pretrained={key}: {w['title']}, {w['top1']}% ImageNet top-1 as published",
                  f"         from {w['source']}: {w['url']}", f"         licence: {w['licence']}"]
    for step, values in rec["transfer"].items():
        human.append(f"{'recipe' if step == 'features' else '':<8} {step}: " + " ".join(f"{k}={v}" for k, v in values.items()))
    emit(args, rec, "\n".join(human))
    return 0


def subscribe(args) -> int:
    from labkit import catalog

    sub = catalog.subscribe(args.algo, args.engine)
    emit(args, sub, f"subscribed: {sub['algorithm']} v{sub['version']} ({sub['engine']})")
    return 0


def create(args) -> int:
    from labkit import catalog, profiles

    c = catalog.create_custom(args.name, args.code_dir, args.boot_file, args.engine, args.hyper or [], args.task)
    emit(args, {**_card(c, profiles.profile()), "boot_file": str(c.boot_file)},
         f"algorithm {c.name} created ({c.engines[0]}, boot file {c.boot_file}); train it with: labkit train create "
         f"--algorithm {c.name} --engine {c.engines[0]} --dataset NAME@V001 --name JOB")
    return 0


def add(sub) -> None:
    group = verbs(sub, "algo", "stage 2: the algorithm catalog, subscriptions, custom algorithms")
    verb(group, "list", "list the algorithms and your subscriptions", list_)
    verb(group, "show", "an algorithm's card and hyper-parameter table", show, ("algo", "ALGO"))
    s = verb(group, "subscribe", "subscribe to an algorithm for an engine", subscribe, ("algo", "ALGO"))
    s.add_argument("--engine", required=True, choices=ENGINES)
    c = verb(group, "create", "register your own algorithm (a code directory and a boot file)", create)
    c.add_argument("--name", required=True)
    c.add_argument("--code-dir", required=True, help="the directory holding your training code (copied)")
    c.add_argument("--boot-file", required=True, help="the script to run, relative to --code-dir")
    c.add_argument("--engine", required=True, choices=ENGINES)
    c.add_argument("--task", default=CLASSIFICATION, choices=TASKS)
    c.add_argument("--hyper", nargs="*", metavar="NAME:TYPE:DEFAULT", help="hyper-parameters, e.g. lr:float:0.01")
