"""Paths an engine refuses, and the way round them.

A learner's folders carry their name, often in Chinese, often with spaces. MindSpore's
exporters (ONNX and MindIR) check the whole file name against ``ENGINE_PATH_RULES`` before
writing and refuse anything else; its checkpoints, PyTorch and ONNX Runtime take any path.
``writing_through`` lets such an engine write into a temporary folder whose path it accepts,
then moves what it wrote into place, so the learner's folder name never matters. Where no
accepted temporary folder exists, ``check`` refuses before any work, saying what to do.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from labkit.errors import LabkitError

# What each engine's own writers accept in a path (MindSpore: ``check_file_name_by_regular``);
# an engine not named here takes any path the file system takes.
ENGINE_PATH_RULES = {"mindspore": (re.compile(r"^[0-9a-zA-Z@_\-.:/\\]+$"), "ASCII letters, digits and @ _ - . : /")}
# Where a temporary folder may go when the system's own one is refused too
FALLBACK_TEMP_ROOTS = ("/tmp", "/var/tmp")
FIX = "set TMPDIR to a writable folder whose path has no spaces and only ASCII letters (e.g. export TMPDIR=/tmp)"


def accepts(engine: str, path: Path | str) -> bool:
    """Whether ``engine`` writes at ``path`` as it is spelled."""
    rule = ENGINE_PATH_RULES.get(engine)
    return rule is None or rule[0].match(str(path)) is not None


def temp_root(engine: str) -> Path | None:
    """A folder for temporary files whose path ``engine`` accepts (None: none here)."""
    for root in (tempfile.gettempdir(), *FALLBACK_TEMP_ROOTS):
        if accepts(engine, root) and os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
            return Path(root)
    return None


def check(engine: str, target: Path) -> None:
    """Refuse, before any work, a ``target`` that ``engine`` cannot write at, directly or through
    a temporary folder."""
    if not accepts(engine, target) and temp_root(engine) is None:
        rule = ENGINE_PATH_RULES[engine][1]
        raise LabkitError(f"{engine} writes only under a path of {rule}, and neither {target} nor a temporary folder "
                          f"({tempfile.gettempdir()}, {', '.join(FALLBACK_TEMP_ROOTS)}) is one that it can write in",
                          FIX)


@contextlib.contextmanager
def writing_through(engine: str, target: Path) -> Iterator[Path]:
    """A folder for ``engine`` to write in, whose contents end up in ``target`` (made if need be):
    ``target`` itself where the engine accepts its path, else a temporary folder whose contents
    are moved into ``target`` once the block has succeeded (nothing is moved if it failed)."""
    if accepts(engine, target):
        target.mkdir(parents=True, exist_ok=True)
        yield target
        return
    check(engine, target)
    scratch = Path(tempfile.mkdtemp(prefix="labkit-", dir=temp_root(engine)))
    try:
        yield scratch
        target.mkdir(parents=True, exist_ok=True)
        for item in scratch.iterdir():
            shutil.move(item, target / item.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
