"""Files published by others (the real flower photos, ImageNet weights): fetched once per
machine into labkit's cache, checked, and shared.

``fetch`` downloads with httpx, which labkit already uses as the service's client. pooch, the
downloader made for scientific data, was the other candidate; it cannot resume a partial
download, and a workshop's Wi-Fi drops a 200 MB file more often than it finishes it. Here a
partial file (``NAME.part``) is continued with an HTTP Range request, by the next attempt
or the next run; a server that ignores Range sends the whole file again. Nothing is kept
until its SHA-256 matches the pinned one, and never more than the published size is written;
a dropped connection or a busy server is tried again after a growing pause.

A room shares one download: ``--mirror URL`` (or ``LABKIT_MIRROR``) fetches ``URL/NAME``
from the instructor's server, or copies ``FOLDER/NAME`` from a shared folder; the checksum
is the catalogue's either way, so a mirror cannot change what a learner trains on.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError
from labkit.workspace import cache_dir

CHUNK = 1 << 20
RETRY_PAUSES = (1, 2, 4, 8, 16)  # seconds before each new try after a dropped connection or a busy server
TIMEOUT_SECONDS = 30   # without a byte from the server
MIRROR_ENV = "LABKIT_MIRROR"
MAX_UNKNOWN_SIZE = 256 << 20  # a file published without its size: no more than this is ever written


@dataclass(frozen=True)
class Remote:
    """A published file: its address, the bytes it must hash to, and its terms."""
    url: str
    sha256: str    # the full hex digest
    size: int | None  # bytes, where published: a download never writes more (else MAX_UNKNOWN_SIZE)
    licence: str
    source: str    # who publishes it, for the catalogue cards and the docs
    name: str = ""  # its name in the cache and on a mirror, where the address ends in a generic one

    def __post_init__(self):
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.url}: sha256 must be 64 lowercase hex digits")

    @property
    def filename(self) -> str:
        return self.name or self.url.rsplit("/", 1)[-1]

    @property
    def limit(self) -> int:
        return self.size or MAX_UNKNOWN_SIZE


def cached_path(remote: Remote) -> Path:
    return cache_dir() / "downloads" / remote.filename


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def matches(remote: Remote, digest: str) -> bool:
    return digest == remote.sha256


def fetch(remote: Remote, mirror: str | None = None, log=print) -> Path:
    """The cached, checked copy of ``remote``: downloaded (from ``mirror`` if given, else
    ``$LABKIT_MIRROR``, else its own address) when the cache has none. Concurrent callers on
    one machine wait for each other's download rather than repeat it."""
    from filelock import FileLock

    target = cached_path(remote)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        if target.is_file():
            digest = sha256_of(target)
            if matches(remote, digest):
                return target
            log(f"the cached {target.name} does not match its checksum (got sha256 {digest[:16]}...): fetching it again")
            target.unlink()
        mirror = mirror or os.environ.get(MIRROR_ENV) or None
        partial = target.with_name(target.name + ".part")
        try:
            if mirror and not mirror.startswith(("http://", "https://")):
                _copy_from_folder(remote, Path(mirror).expanduser(), partial)
                origin = str(Path(mirror).expanduser() / remote.filename)
            else:
                origin = f"{mirror.rstrip('/')}/{remote.filename}" if mirror else remote.url
                _download(remote, origin, partial, log)
        except OSError as exc:  # the cache's disk is full or not writable, the mirror folder unreadable
            raise LabkitError(f"could not fetch {remote.filename}: {exc}", _where_to_put_it(remote)) from None
        _keep(remote, partial, target, origin)
    return target


def _where_to_put_it(remote: Remote) -> str:
    size = f", {remote.size:,} bytes" if remote.size else ""
    return (f"download {remote.url} (sha256 {remote.sha256}{size}) by other means and put it at "
            f"{cached_path(remote)}, or fetch it from a room's server or shared folder that has it: --mirror URL|FOLDER "
            f"(labkit data download) or {MIRROR_ENV}=URL|FOLDER (every command)")


def _open_partial(partial: Path, append: bool):
    """``partial`` for writing, never through a link planted in its place."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(partial, flags, 0o644), "ab" if append else "wb")


def _copy_from_folder(remote: Remote, folder: Path, partial: Path) -> None:
    """Copy ``folder/NAME`` (a room's shared folder, a USB stick), a plain file of at most the
    published size, into ``partial``."""
    source = folder / remote.filename
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        raise LabkitError(f"the mirror folder {folder} has no {remote.filename} (or it is a link)",
                          _where_to_put_it(remote)) from None
    with os.fdopen(fd, "rb") as src:
        info = os.fstat(src.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > remote.limit:
            raise LabkitError(f"{source} is not the published {remote.filename}: "
                              + ("not a plain file" if not stat.S_ISREG(info.st_mode) else f"{info.st_size:,} bytes"),
                              _where_to_put_it(remote))
        with _open_partial(partial, append=False) as out:
            shutil.copyfileobj(src, out, CHUNK)


def _download(remote: Remote, url: str, partial: Path, log) -> None:
    """Download ``url`` into ``partial``, resuming what it holds; retried with a growing pause
    when the connection breaks or the server is busy (5xx, 429)."""
    import httpx
    from tqdm.auto import tqdm

    if partial.is_symlink() or (partial.exists() and not partial.is_file()):
        partial.unlink()
    have = partial.stat().st_size if partial.exists() else 0
    if have > remote.limit:
        partial.unlink()
        have = 0
    size = f" ({remote.size / 1e6:,.1f} MB)" if remote.size else ""
    log(f"downloading {url}{size}" + (f", resuming after {have / 1e6:,.1f} MB" if have else ""))
    bar = tqdm(total=remote.size, initial=have, unit="B", unit_scale=True, desc=remote.filename,
               disable=not sys.stderr.isatty())
    try:
        # identity: the bytes as published, so that a Range offset counts the same bytes as the file
        with httpx.Client(follow_redirects=True, timeout=TIMEOUT_SECONDS,
                          headers={"Accept-Encoding": "identity"}) as client:
            for pause in (*RETRY_PAUSES, None):
                try:
                    _receive(client, url, partial, remote, bar)
                    return
                except (httpx.TransportError, _Interrupted) as exc:
                    if pause is None or (isinstance(exc, httpx.ConnectError) and not partial.exists()):
                        kept = partial.stat().st_size if partial.exists() else 0
                        kept = f" ({kept:,} bytes kept in {partial.name}: the next try resumes there)" if kept else ""
                        raise LabkitError(f"could not download {url}: {exc}{kept}", _where_to_put_it(remote)) from None
                    time.sleep(pause)
                except httpx.HTTPError as exc:  # too many redirects, an undecodable answer
                    raise LabkitError(f"could not download {url}: {exc}", _where_to_put_it(remote)) from None
    except httpx.InvalidURL as exc:
        raise LabkitError(f"{url} is not an address ({exc})", f"check --mirror or {MIRROR_ENV}") from None
    finally:
        bar.close()


class _Interrupted(Exception):
    """The answer ended before the file, or the server is busy: worth another try."""


def _receive(client, url: str, partial: Path, remote: Remote, bar) -> None:
    """One request: continue ``partial`` (or start it again if the server ignores Range). A
    connection that ends early or a busy server raises ``_Interrupted`` (or httpx's own error),
    a refusal a ``LabkitError``."""
    size = remote.limit
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and have:  # the server has nothing past this: the checksum decides
            return
        if response.status_code in (429, 500, 502, 503, 504):
            raise _Interrupted(f"the server is busy (HTTP {response.status_code})")
        if response.status_code not in (200, 206):
            raise LabkitError(f"{url} answered HTTP {response.status_code}",
                              "check the address (or the mirror's: it must serve the file under its published name)")
        resumed = response.status_code == 206 and response.headers.get("content-range", "").startswith(f"bytes {have}-")
        if response.status_code == 206 and not resumed:  # another range than asked: start again from the top
            partial.unlink()
            raise _Interrupted(f"the server answered another range ({response.headers.get('content-range')})")
        if not resumed:
            have = 0
            bar.reset(total=size)
        with _open_partial(partial, append=resumed) as out:
            for chunk in response.iter_raw():  # as they arrive: a broken connection loses none
                if have + len(chunk) > size:
                    out.truncate(0)
                    raise LabkitError(f"{url} sends more than the {size:,} bytes " + (
                                      "published" if remote.size else "any such file has"),
                                      "the server does not hold the published file; use its own address or another mirror")
                out.write(chunk)
                have += len(chunk)
                bar.update(len(chunk))
    if remote.size and have < remote.size:
        raise _Interrupted(f"the connection ended after {have:,} of {remote.size:,} bytes")


def _keep(remote: Remote, partial: Path, target: Path, origin: str) -> None:
    """Rename ``partial`` to ``target`` if it is the published file; else delete it, and say so."""
    digest = sha256_of(partial)
    if not matches(remote, digest):
        partial.unlink()
        raise LabkitError(f"{origin} is not the published {remote.filename}: its sha256 is {digest}, "
                          f"the published one {remote.sha256}; nothing was kept",
                          "the server or the mirror holds another file (damaged, or not the one published); "
                          + _where_to_put_it(remote))
    os.replace(partial, target)
