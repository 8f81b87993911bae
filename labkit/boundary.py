"""The one gate for paths that come from outside: archive members, path-valued fields of
records, manifest ``source`` lines, zip entries, ground-truth files.

``relative`` checks the spelling of such a path (POSIX, relative, no ``..``, nothing a
terminal or a file system would read otherwise); ``inside`` resolves it under its root and
refuses links and anything but a plain file or directory on the way. Packs, imports,
publishing and every reader of a record pass their paths through here.
"""
from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path, PurePosixPath

from labkit.errors import LabkitError

MAX_COMPONENT_BYTES = 255   # what ext4, APFS and NTFS allow in one name
MAX_PATH_BYTES = 1024
MAX_DEPTH = 16
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePath(LabkitError):
    """A path from outside that would leave its root or is not a plain name."""


def printable(text: str, limit: int = 200, keep: str = "") -> str:
    """``text`` as it is safe to print on a terminal: control characters (but those in ``keep``)
    escaped, cut at ``limit``."""
    out = "".join(c if c in keep or unicodedata.category(c) not in ("Cc", "Cf", "Cs") else ascii(c)[1:-1]
                  for c in str(text))
    return out if len(out) <= limit else out[:limit] + "..."


def problem(rel) -> str | None:
    """Why ``rel`` is not a safe relative path, or None."""
    if not isinstance(rel, str) or not rel:
        return "not a non-empty string"
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in rel):
        return "a control character (NUL, newline, ...) in the name"
    if "\\" in rel:
        return "a backslash (a Windows path)"
    if rel.startswith("/") or _DRIVE.match(rel):
        return "an absolute path"
    parts = rel.split("/")
    if ".." in parts:
        return "'..' climbs out of its folder"
    if "" in parts or "." in parts:
        return "an empty or '.' component"
    if len(parts) > MAX_DEPTH:
        return f"more than {MAX_DEPTH} folders deep"
    if len(rel.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"longer than {MAX_PATH_BYTES} bytes"
    if any(len(p.encode("utf-8")) > MAX_COMPONENT_BYTES for p in parts):
        return f"a name longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def relative(rel, what: str = "path") -> PurePosixPath:
    """``rel`` as a relative POSIX path; an ``UnsafePath`` saying why not."""
    why = problem(rel)
    if why:
        raise UnsafePath(f"{what} {printable(repr(rel))} is refused: {why}",
                         "paths from outside must be relative, inside their folder, plain names")
    return PurePosixPath(rel)


def inside(root: Path, rel, what: str = "path", kind: str = "file") -> Path:
    """``root / rel`` once ``rel`` is safe and nothing on the way is a link: every existing
    folder on the way a real directory, the end (if it exists) a plain ``file`` or a
    ``dir`` as ``kind`` says (``any``: either)."""
    path = Path(root)
    parts = relative(rel, what).parts
    for i, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return Path(root).joinpath(*parts)
        last = i == len(parts) - 1
        wanted = (stat.S_ISDIR(mode) if not last or kind == "dir" else
                  stat.S_ISREG(mode) if kind == "file" else stat.S_ISREG(mode) or stat.S_ISDIR(mode))
        if not wanted:
            nature = "a link" if stat.S_ISLNK(mode) else "a special file" if not (
                stat.S_ISREG(mode) or stat.S_ISDIR(mode)) else "a file" if stat.S_ISREG(mode) else "a folder"
            raise UnsafePath(f"{what} {printable(rel)!r} is refused: {printable(path.name)!r} is {nature}",
                             "links and special files are never followed; use plain files and folders")
    return path
