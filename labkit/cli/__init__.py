"""The ``labkit`` command: a group of verbs per workflow stage, each group in its own module
with its handlers, all calling the same API as the notebooks.

Every verb that makes or shows a record takes ``--json`` and prints the record for scripts;
progress goes to stderr. Errors a user can fix print what went wrong and what to do, and
exit with status 1.
"""
from __future__ import annotations

import argparse
import os
import sys

from labkit import __version__
from labkit.cli import algo, convert, data, deploy, evaluate, labs, machine, model, packs, room, train
from labkit.boundary import printable
from labkit.errors import LabkitError

GROUPS = (machine, data, algo, train, convert, model, deploy, evaluate, packs, labs, room)  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit", description="labkit: the life of a deep-learning model, on one "
                                "laptop, offline. Every verb has --help.")
    p.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabkitError as exc:
        print(f"error: {printable(exc.message, 4000, keep=chr(10))}", file=sys.stderr)  # names from outside, escaped
        if exc.hint:
            print(f"  fix: {printable(exc.hint, 4000, keep=chr(10))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `labkit ... | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a defect of labkit's, not the user's: one line, and how to see more
        if os.environ.get("LABKIT_DEBUG"):
            raise
        print(f"error: labkit failed unexpectedly ({type(exc).__name__}: {printable(str(exc))})", file=sys.stderr)
        print("  fix: this is a bug in labkit: run the command again with LABKIT_DEBUG=1 for the traceback, "
              "and report it", file=sys.stderr)
        return 2
