"""Stage 2a, the catalog (the seeds' AI Gallery): algorithm cards, subscriptions, custom algorithms.

    from labkit import catalog
    catalog.subscribe("ResNet50", "pytorch")
    catalog.card("ResNet50").table("workshop")      # the hyper-parameter table
"""
from __future__ import annotations

import shutil
from pathlib import Path

from labkit import boundary, schemas, workspace
from labkit.catalog.cards import BUILTIN, Card, HyperParameter
from labkit.tasks import CLASSIFICATION, TASKS
from labkit.errors import LabkitError

ENGINES = ("mindspore", "pytorch")
ENGINE_PACKAGES = {"mindspore": "mindspore", "pytorch": "torch"}  # what pip installs for each
__all__ = ["ENGINES", "Card", "cards", "card", "subscribe", "subscriptions", "is_subscribed", "create_custom"]


def _root() -> Path:
    return workspace.area("catalog")


def cards() -> list[Card]:
    """Every algorithm: the built-in cards, then the custom ones of this workspace."""
    found = sorted((_root() / "custom").glob("*/algorithm.json"))
    custom = list(workspace.readable(found, lambda p: _custom_card(schemas.read(p, schemas.Algorithm))))
    return [*BUILTIN, *custom]


def card(name: str) -> Card:
    found = {c.name.lower(): c for c in cards()}
    if name.lower() not in found:
        raise LabkitError(f"no algorithm named {name!r}", f"`labkit algo list` shows them: {', '.join(c.name for c in cards())}")
    return found[name.lower()]


def check_engine(c: Card, engine: str) -> str:
    if engine not in c.engines:
        raise LabkitError(f"{c.name} does not run on {engine!r}", f"use --engine {' or '.join(c.engines)}")
    return engine


def subscriptions() -> list[dict]:
    path = _root() / "subscriptions.json"
    return workspace.read_json(path) if path.exists() else []


def is_subscribed(name: str, engine: str) -> bool:
    c = card(name)
    return any(s["algorithm"] == c.name and s["engine"] == engine for s in subscriptions())


def subscribe(name: str, engine: str) -> dict:
    """Add an algorithm to "my subscriptions" (idempotent); return the subscription."""
    c = card(name)
    check_engine(c, engine)
    with workspace.locked(_root()):
        subs = subscriptions()
        for s in subs:
            if s["algorithm"] == c.name and s["engine"] == engine:
                return s
        sub = {"algorithm": c.name, "engine": engine, "version": c.version, "subscribed": workspace.now()}
        workspace.write_json(_root() / "subscriptions.json", [*subs, sub])
    return sub


def create_custom(name: str, code_dir: str | Path, boot_file: str, engine: str, hyper: list[str] = (),
                  task: str = CLASSIFICATION) -> Card:
    """Register a user's algorithm: ``code_dir`` is copied into the workspace (like the seeds'
    upload to OBS), ``boot_file`` is the script inside it, ``hyper`` lists ``NAME:TYPE:DEFAULT``."""
    workspace.check_name(name, "algorithm name")
    if engine not in ENGINES:
        raise LabkitError(f"unknown engine {engine!r}", f"use one of {', '.join(ENGINES)}")
    if task not in TASKS:
        raise LabkitError(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
    if any(c.name.lower() == name.lower() for c in cards()):
        raise LabkitError(f"an algorithm named {name!r} already exists", "choose another --name")
    src = Path(code_dir).expanduser().resolve()
    if not boundary.inside(src, boot_file, "--boot-file").is_file():  # a plain file inside the folder
        raise LabkitError(f"boot file {boot_file!r} not found in {src}",
                          "--boot-file is the training script's path relative to --code-dir")
    if workspace.home().is_relative_to(src):
        raise LabkitError(f"the code directory {src} contains the workspace", "put the algorithm's code in a folder "
                          "of its own: it is copied whole into the workspace")
    params = [_parse_hyper(spec) for spec in hyper]
    record = {"name": name, "engine": engine, "task": task, "boot_file": boot_file, "source": str(src),
              "hyper": [{"name": h.name, "type": h.type, "default": h.default} for h in params],
              "created": workspace.now()}
    staged = workspace.staging_dir(_root() / "custom")
    try:
        shutil.copytree(src, staged / "code", symlinks=True)
        workspace.write_json(staged / "algorithm.json", record)
        staged.rename(_root() / "custom" / name)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return card(name)


def _parse_hyper(spec: str) -> HyperParameter:
    name, type_, default = (spec.split(":", 2) + ["", ""])[:3]
    if not name.isidentifier() or type_ not in ("int", "float", "str", "bool"):
        raise LabkitError(f"bad --hyper {spec!r}", "write NAME:TYPE:DEFAULT with TYPE int, float, str or bool, "
                                                   "e.g. lr:float:0.01")
    h = HyperParameter(name, type_, None, "custom hyper-parameter")
    return HyperParameter(name, type_, h.coerce(default) if default != "" else None, "custom hyper-parameter")


def _custom_card(rec: dict) -> Card:
    hyper = tuple(HyperParameter(h["name"], h["type"], h["default"], "custom hyper-parameter") for h in rec["hyper"])
    code = _root() / "custom" / rec["name"] / "code"
    return Card(rec["name"], f"custom: {rec['name']}", rec["task"], (rec["engine"],), "custom", 0,
                f"custom algorithm from {rec['source']}", "", hyper, custom=True, code_dir=str(code),
                boot_file=rec["boot_file"])
