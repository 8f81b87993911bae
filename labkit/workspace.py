"""The workspace: a directory of plain files and JSON records (the seeds' OBS bucket).

Records are written atomically (temporary file, fsync, rename) so a reader or a killed
writer never sees half a record. Versions are allocated under an exclusive file lock,
so processes publishing at the same moment each get a different number.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from labkit.errors import LabkitError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_RE = re.compile(r"^V(\d{3,})$")


def home() -> Path:
    """The workspace root: ``$LABKIT_HOME``, else the nearest ``workspace/`` above the
    current directory (so a notebook started in ``notebooks/`` finds the repo's), else
    ``./workspace``."""
    env = os.environ.get("LABKIT_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        cwd = Path.cwd()
        root = next((d / "workspace" for d in (cwd, *cwd.parents) if (d / "workspace").is_dir()),
                    cwd / "workspace")
    root = root.resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabkitError(f"cannot create the workspace {root}: {exc.strerror}",
                          "set LABKIT_HOME to a writable directory") from exc
    return root


def area(kind: str) -> Path:
    """A top-level area of the workspace (``datasets``, ``jobs``, ...), created on demand."""
    path = home() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_name(name: str, what: str = "name") -> str:
    if not NAME_RE.match(name or ""):
        raise LabkitError(f"invalid {what} {name!r}",
                          "use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    return name


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, record) -> None:
    """Write ``record`` as JSON atomically: readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise
    except json.JSONDecodeError as exc:
        raise LabkitError(f"the record {path} is damaged: {exc}",
                          "restore it or remove the directory that holds it") from exc


@contextlib.contextmanager
def locked(directory: Path):
    """Hold an exclusive lock on ``directory`` (a ``.lock`` file in it) for the block."""
    from filelock import FileLock  # here: importing the workspace stays fast

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / ".lock"):
        yield


def staging_dir(parent: Path) -> Path:
    """A fresh hidden directory in ``parent`` to build something in before it is published.
    Its name carries our pid so that leftovers of killed processes can be recognised."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def remove_stale_staging(parent: Path) -> None:
    """Remove staging directories whose process is gone (a killed publish or import)."""
    for path in parent.glob(".staging-*"):
        try:
            pid = int(path.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def versions(parent: Path) -> list[str]:
    """The published versions (``V001``, ``V002``, ...) in ``parent``, oldest first."""
    if not parent.is_dir():
        return []
    found = [p.name for p in parent.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    return sorted(found, key=lambda v: int(v[1:]))


def publish_version(staged: Path, parent: Path) -> str:
    """Move a fully built ``staged`` directory into ``parent`` as the next version.

    The number is chosen and the rename done under the lock, so concurrent publishers
    get distinct numbers; the rename makes the version appear whole or not at all."""
    with locked(parent):
        existing = versions(parent)
        number = int(existing[-1][1:]) + 1 if existing else 1
        name = f"V{number:03d}"
        os.rename(staged, parent / name)
    return name


def versioned(root: Path, ref: str, what: str, hint: str) -> Path:
    """``NAME`` (its latest version) or ``NAME@V002`` of a versioned area (jobs, conversion
    tasks) -> the version's directory; a clear error naming what exists otherwise."""
    name, _, version = ref.partition("@")
    folder = root / check_name(name, f"{what} name")
    published = versions(folder)
    if not published:
        known = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
        raise LabkitError(f"no {what} named {name!r} ({what}s: {known or 'none yet'})", hint)
    version = version or published[-1]
    if version not in published:
        raise LabkitError(f"{what} {name} has no version {version} (versions: {', '.join(published)})", "use one of them")
    return folder / version


def latest_versions(root: Path) -> list[Path]:
    """The newest version directory of each named folder in ``root``, by name."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        published = versions(folder)
        if published:
            found.append(folder / published[-1])
    return found
