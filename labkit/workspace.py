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
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from labkit.errors import LabkitError

PRIVATE = 0o700   # a workspace's mode: only its owner reads it (mkdir's mode, narrowed by the umask)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Numbering:
    """How an area spells its versions. Versions sort by their numbers, and the next one
    adds 1 to the last number (``V009`` -> ``V010``, ``0.0.9`` -> ``0.0.10``)."""
    pattern: re.Pattern
    first: str
    spelling: str  # for messages

    def key(self, version: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", version))

    def after(self, version: str | None) -> str:
        if version is None:
            return self.first
        return re.sub(r"\d+$", lambda m: str(int(m.group()) + 1).zfill(len(m.group())), version)


# Datasets, jobs and conversions count V001, V002, ...; the model registry counts 0.0.1,
# 0.0.2, ... as ModelArts' model versions do.
SEQUENCE = Numbering(re.compile(r"^V\d{3,}$"), "V001", "V001, V002, ...")
SEMVER = Numbering(re.compile(r"^\d+\.\d+\.\d+$"), "0.0.1", "MAJOR.MINOR.PATCH (0.0.1, 0.0.2, ...)")


def cache_dir() -> Path:
    """labkit's folder on this machine, outside any workspace (a calibration, downloads):
    ``$LABKIT_CACHE``, else ``$XDG_CACHE_HOME/labkit``, else ``~/.cache/labkit``. Each user's
    own: what it holds is trusted once checked, so a room shares files through a mirror
    (``labkit.downloads``), never by sharing this folder."""
    folder = os.environ.get("LABKIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labkit"
    return Path(folder).expanduser()


def home() -> Path:
    """The workspace root: ``$LABKIT_HOME``, else the nearest ``workspace/`` above the
    current directory (so a notebook started in ``notebooks/`` finds the repo's), else
    ``./workspace``. One labkit creates is readable by its owner only (``PRIVATE``)."""
    env = os.environ.get("LABKIT_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        cwd = Path.cwd()
        root = next((d / "workspace" for d in (cwd, *cwd.parents) if (d / "workspace").is_dir()),
                    cwd / "workspace")
    root = root.resolve()
    try:
        if not root.is_dir():
            root.parent.mkdir(parents=True, exist_ok=True)
            root.mkdir(mode=PRIVATE)   # a new workspace is its owner's alone (a room's learners share one server)
    except FileExistsError:
        pass
    except OSError as exc:
        raise LabkitError(f"cannot create the workspace {root}: {exc.strerror}",
                          "set LABKIT_HOME to a writable directory") from exc
    if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
        raise LabkitError(f"the workspace {root} is not yours to use (no read and write permission)",
                          "set LABKIT_HOME to a workspace of your own")
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
    """A JSON file, bounded in size and nesting (``schemas.parse``); FileNotFoundError if absent."""
    from labkit import schemas

    return schemas.read(path)


def readable(paths, read):
    """``read(path)`` for each of ``paths``; one whose record is damaged, foreign or gone is
    skipped with a warning that names it, so that one bad record never hides the others."""
    for path in paths:
        try:
            yield read(path)
        except (LabkitError, FileNotFoundError, NotADirectoryError) as exc:
            why = exc.message if isinstance(exc, LabkitError) else f"{path}: its record is missing"
            print(f"warning: skipped {why if str(path) in why else f'{path}: {why}'}", file=sys.stderr)


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


def disk_bytes(paths: list[Path]) -> tuple[list[int], int]:
    """(bytes the files under each of ``paths`` take, bytes that removing them all would free).
    A file counts once however many hard links it has (a dataset version links its images),
    under the first path that holds it, and is freed only when all its links are under ``paths``."""
    seen: dict[tuple[int, int], list[int]] = {}  # (device, inode) -> [size, links, links found]
    used = [0] * len(paths)
    for i, top in enumerate(paths):
        for folder, _, files in os.walk(top):
            for f in files:
                try:
                    st = os.lstat(os.path.join(folder, f))
                except FileNotFoundError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key not in seen:
                    seen[key] = [st.st_size, st.st_nlink, 0]
                    used[i] += st.st_size
                seen[key][2] += 1
    return used, sum(size for size, links, found in seen.values() if found >= links)


def size_text(n: int) -> str:
    """Bytes as a person reads them: 812 KB, 3.1 MB, 2.40 GB."""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def remove(path: Path) -> int:
    """Delete directory ``path`` whole and return the bytes freed. It is renamed aside first,
    under its parent's lock (a staging name, which ``remove_stale_staging`` sweeps away if the
    removal is killed), so no reader ever sees part of it."""
    _, freed = disk_bytes([path])
    with locked(path.parent):
        aside = path.parent / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(path, aside)
    shutil.rmtree(aside)
    return freed


def versions(parent: Path, numbering: Numbering = SEQUENCE) -> list[str]:
    """The published versions in ``parent`` (``V001``, ``V002``, ...), oldest first."""
    if not parent.is_dir():
        return []
    found = [p.name for p in parent.iterdir() if p.is_dir() and numbering.pattern.match(p.name)]
    return sorted(found, key=numbering.key)


def next_version(parent: Path, numbering: Numbering = SEQUENCE) -> str:
    published = versions(parent, numbering)
    return numbering.after(published[-1] if published else None)


def publish_version(staged: Path, parent: Path, numbering: Numbering = SEQUENCE, version: str | None = None) -> str:
    """Move a fully built ``staged`` directory into ``parent`` as ``version`` (default: the
    next one) and return its name.

    The number is chosen and the rename done under the lock, so concurrent publishers
    get distinct numbers; the rename makes the version appear whole or not at all."""
    with locked(parent):
        name = version or next_version(parent, numbering)
        if (parent / name).exists():
            raise LabkitError(f"{parent.name} already has version {name}",
                              f"choose another version; the next free one is {next_version(parent, numbering)}")
        os.rename(staged, parent / name)
    return name


def versioned(root: Path, ref: str, what: str, hint: str, numbering: Numbering = SEQUENCE) -> Path:
    """``NAME`` (its latest version) or ``NAME@VERSION`` of a versioned area (jobs, conversion
    tasks, models) -> the version's directory; a clear error naming what exists otherwise."""
    name, _, version = ref.partition("@")
    folder = root / check_name(name, f"{what} name")
    published = versions(folder, numbering)
    if not published:
        known = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
        raise LabkitError(f"no {what} named {name!r} ({what}s: {known or 'none yet'})", hint)
    version = version or published[-1]
    if version not in published:
        raise LabkitError(f"{what} {name} has no version {version} (versions: {', '.join(published)})", "use one of them")
    return folder / version


def latest_versions(root: Path, numbering: Numbering = SEQUENCE) -> list[Path]:
    """The newest version directory of each named folder in ``root``, by name."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        published = versions(folder, numbering)
        if published:
            found.append(folder / published[-1])
    return found
