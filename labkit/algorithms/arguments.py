"""The command line of a built-in algorithm's training script, in the ModelArts convention:
``--data_url DIR --train_url DIR --algorithm NAME --<hp>=<value> ...``, the hyper-parameters
typed and checked against the algorithm's catalog card."""
from __future__ import annotations

import argparse

from labkit.algorithms import DEVICES


def parse_args(argv=None) -> tuple[argparse.Namespace, dict]:
    """``--data_url DIR --train_url DIR --algorithm NAME --<hp>=<value> ...`` -> (args, raw hps)."""
    p = argparse.ArgumentParser(description="labkit training script (ModelArts convention)")
    p.add_argument("--data_url", required=True, help="the dataset version directory")
    p.add_argument("--train_url", required=True, help="where checkpoints, metrics and the model go")
    p.add_argument("--algorithm", required=True, help="the catalog card whose hyper-parameters apply")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--resume", default=None, help="a checkpoint to continue from")
    args, rest = p.parse_known_args(argv)
    raw = {}
    for item in rest:
        if not item.startswith("--") or "=" not in item:
            p.error(f"hyper-parameters are passed as --name=value, got {item!r}")
        key, value = item[2:].split("=", 1)
        raw[key] = value
    return args, raw


def hyper_parameters(algorithm: str, raw: dict) -> dict:
    """The job's hyper-parameters, typed and checked against the card (the job passes all)."""
    from labkit.catalog import card

    hyper = card(algorithm).resolve(raw, "full")
    hyper.setdefault("seed", 0)
    return hyper
