"""``labkit data import``: an image folder, a zip or tar of one, a ModelArts manifest, or the
ShanghaiTech layout, copied into the workspace.

Every file is checked before it is taken (``image_problem``); what is skipped is listed
in the import report with the reason. Nothing is ever written outside the workspace:
archive entries that would land elsewhere (absolute paths, ``..``, links, devices) and
manifest paths that leave the imported tree are refused.
"""
from __future__ import annotations

import functools
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from labkit import boundary, schemas
from labkit.data.images import IMAGE_EXTENSIONS, image_problem
from labkit.errors import LabkitError
from labkit.tasks import CLASSIFICATION, COUNTING

FORMATS = ("imagefolder", "manifest", "shanghaitech")
MAX_ENTRY_BYTES = 256 * 1024 * 1024  # one archive entry; far beyond any image a lab uses
MAX_ARCHIVE_BYTES = 64 * 1024**3     # a whole archive, unpacked (and never more than the disk can spare)
KEEP_FREE_BYTES = 1024**3            # the disk space an import always leaves free
MAX_ENTRIES = 1_000_000
# A manifest line's "usage" (ModelArts: TRAIN, EVAL, TEST, ...) -> the side of the source's own
# split it is on; ShanghaiTech's train_data / test_data are the same thing. ``publish --split
# source`` keeps it.
USAGES = {"TRAIN": "train", "EVAL": "val", "VALIDATION": "val", "TEST": "val"}


def detect_format(src: Path) -> str:
    if src.is_file() and src.suffix.lower() in {".jsonl", ".manifest", ".json"}:
        return "manifest"
    if src.is_dir() and _shanghaitech_parts(src):
        return "shanghaitech"
    return "imagefolder"


def import_path(src: Path, staged: Path, fmt: str) -> tuple[str, list[dict], dict]:
    """Copy ``src`` into ``staged``; return (task, item records, import report)."""
    report = {"source": str(src), "format": fmt, "skipped": [], "refused": []}
    if fmt == "imagefolder":
        if src.is_file() and (kind := archive_kind(src)):
            folder = _extract(src, kind, staged / ".extract", report)
            entries = _image_folder(_single_subfolder(folder), staged, report)
            shutil.rmtree(staged / ".extract")
        elif src.is_dir():
            entries = _image_folder(src, staged, report)
        else:
            raise LabkitError(f"{src} is neither a folder nor a zip or tar archive",
                              "pass an image folder (one sub-folder per class), a .zip or .tar(.gz) of one, "
                              "a manifest (.jsonl) or a ShanghaiTech folder")
        task = CLASSIFICATION
    elif fmt == "manifest":
        entries, task = _manifest(src, staged, report), CLASSIFICATION
    elif fmt == "shanghaitech":
        entries, task = _shanghaitech(src, staged, report), COUNTING
    else:
        raise LabkitError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    report["imported"] = len(entries)
    if not entries:
        raise LabkitError(f"no usable image found in {src} ({len(report['skipped'])} skipped, "
                          f"{len(report['refused'])} refused)",
                          "check the layout: one sub-folder per class for an image folder; "
                          + (f"first skipped: {report['skipped'][0]}" if report["skipped"] else "see --format"))
    return task, entries, report


def _label(name: str) -> str | None:
    """A class name taken from a folder or a manifest, or None if unusable. ``/`` may separate a
    category from a name, as in seed 004's ``美食/凉皮``, but no part may be empty, ``.`` or ``..``."""
    name = name.strip() if isinstance(name, str) else ""
    return name if schemas.is_label(name) else None


def class_folder(label: str) -> str:
    """The folder under ``images/`` that holds a class's images: the label, ``/`` read as ``_``."""
    return label.replace("/", "_")


def _take(file: Path, dest: Path, rel_report: str, report: dict) -> bool:
    problem = image_problem(file)
    if problem:
        report["skipped"].append({"file": rel_report, "reason": problem})
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, dest)
    return True


def _image_folder(folder: Path, staged: Path, report: dict) -> list[dict]:
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):  # never follows directory links
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                report["refused"].append({"entry": str((Path(dirpath) / d).relative_to(folder)),
                                          "reason": "symbolic link (not followed)"})
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            rel = path.relative_to(folder)
            if fname.startswith("."):
                continue
            if path.is_symlink():
                report["refused"].append({"entry": str(rel), "reason": "symbolic link (not followed)"})
                continue
            if len(rel.parts) != 2 or not (label := _label(rel.parts[0])):
                report["skipped"].append({"file": str(rel), "reason": "not inside a class sub-folder"})
                continue
            dest_rel = f"images/{class_folder(label)}/{fname}"
            if _take(path, staged / dest_rel, str(rel), report):
                entries.append({"file": dest_rel, "label": label})
    return entries


def _single_subfolder(folder: Path) -> Path:
    """A zip often holds one top folder around the class folders: step into it."""
    children = [c for c in folder.iterdir() if not c.name.startswith((".", "__MACOSX"))]
    if len(children) == 1 and children[0].is_dir() and any(g.is_dir() for g in children[0].iterdir()):
        return children[0]
    return folder


def archive_kind(src: Path) -> str | None:
    """``zip`` or ``tar`` (plain, gzip, bzip2 or xz: ``.tar``, ``.tar.gz``, ``.tgz`` ...), or None."""
    if zipfile.is_zipfile(src):
        return "zip"
    return "tar" if tarfile.is_tarfile(src) else None


def _zip_entries(archive: Path):
    """(name, kind, declared size, open) of each entry; kind is file, dir or symlink."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            kind = "dir" if info.is_dir() else "symlink" if stat.S_ISLNK(info.external_attr >> 16) else "file"
            yield info.filename, kind, info.file_size, functools.partial(zf.open, info)


def _tar_entries(archive: Path):
    """The same for a tar, opened seekable, so that an entry that declares more bytes than the
    archive holds costs a seek, not a read. Names often start with ``./`` (``tar -C dir .``):
    that names the same place. A tar whose end is missing (cut short between two entries,
    which tarfile reads as its end) is damaged."""
    with tarfile.open(archive, "r:*") as tf:
        try:
            members = tf.getmembers()
        except gzip.BadGzipFile:
            raise
        except OSError as exc:  # a seek past what any file can hold: an entry that declares petabytes
            raise tarfile.ReadError(f"an entry declares more bytes than it holds ({exc})") from None
        tf.fileobj.seek(tf.offset)
        if tf.fileobj.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
            raise tarfile.ReadError("it ends before its end-of-archive marker: cut short")
        for member in members:
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            if name in (".", ""):
                continue
            kind = ("sparse" if member.issparse() else "dir" if member.isdir() else "file" if member.isreg() else
                    "symlink" if member.issym() else "hardlink" if member.islnk() else "special")
            yield name, kind, member.size, functools.partial(tf.extractfile, member)


ENTRIES = {"zip": _zip_entries, "tar": _tar_entries}
# What a damaged archive raises, and a damaged entry (RuntimeError: an encrypted zip entry)
DAMAGED = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, gzip.BadGzipFile)
DAMAGED_ENTRY = (*DAMAGED, NotImplementedError, RuntimeError)
REFUSED_KINDS = {"symlink": "symbolic link: could point outside the dataset",
                 "hardlink": "hard link: names another file, which may be outside the dataset",
                 "special": "not a plain file (a device or a pipe)",
                 "sparse": "a sparse file: it could unpack to far more than the archive holds"}


class _Budget:
    """What a whole archive may unpack to: ``MAX_ENTRIES`` entries and ``MAX_ARCHIVE_BYTES``,
    never leaving less than ``KEEP_FREE_BYTES`` free on the disk; beyond that it is refused whole."""

    def __init__(self, archive: Path, dest: Path):
        self.archive, self.entries = archive, 0
        self.bytes = min(MAX_ARCHIVE_BYTES, shutil.disk_usage(dest).free - KEEP_FREE_BYTES)

    def entry(self) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise LabkitError(f"{self.archive.name} holds more than {MAX_ENTRIES:,} entries",
                              "split it, or import the folder it came from; nothing was imported")

    def spend(self, n: int) -> None:
        self.bytes -= n
        if self.bytes < 0:
            raise LabkitError(f"{self.archive.name} unpacks to more than this disk can spare "
                              f"(at most {MAX_ARCHIVE_BYTES:,} bytes, keeping {KEEP_FREE_BYTES:,} free)",
                              "free disk space, or import a smaller archive; nothing was imported")


def _extract(archive: Path, kind: str, dest: Path, report: dict) -> Path:
    """Extract what is safe of a zip or tar into ``dest``: entries that would land outside it
    (absolute, ``..``), links, special files, oversized or repeated entries are refused and
    reported; a damaged entry is skipped; an archive that cannot be read at all, or that
    unpacks to more than ``_Budget`` allows, is an error."""
    dest.mkdir(parents=True)
    budget = _Budget(archive, dest)
    try:
        for name, entry_kind, size, open_entry in ENTRIES[kind](archive):
            budget.entry()
            why = boundary.problem(name.rstrip("/") if entry_kind == "dir" else name)
            reason = None
            if why:
                reason = f"{why}: would not land safely inside the dataset"
            elif entry_kind in REFUSED_KINDS:
                reason = REFUSED_KINDS[entry_kind]
            elif size > MAX_ENTRY_BYTES:
                reason = f"entry of {size:,} bytes, over the {MAX_ENTRY_BYTES:,} limit"
            if reason:
                report["refused"].append({"entry": name, "reason": reason})
                continue
            if entry_kind == "dir":
                continue
            try:
                target = boundary.inside(dest, name, "archive entry")
            except boundary.UnsafePath as exc:  # a folder of that name was a file, or the file came twice
                report["refused"].append({"entry": name, "reason": exc.message})
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                report["refused"].append({"entry": name, "reason": "the archive holds this name twice"})
                continue
            problem = _copy_entry(open_entry, target, budget)
            if problem:
                target.unlink(missing_ok=True)
                report["skipped"].append({"file": name, "reason": problem})
    except DAMAGED as exc:
        raise LabkitError(f"{archive.name} is not a readable {kind} archive ({exc})",
                          "download or copy it again; nothing was imported") from None
    return dest


def _copy_entry(open_entry, target: Path, budget: _Budget) -> str | None:
    """Copy one entry, at most ``MAX_ENTRY_BYTES`` whatever size it declares; why not, or None."""
    left = MAX_ENTRY_BYTES
    try:
        with open_entry() as src, open(target, "wb") as out:
            while chunk := src.read(min(1 << 20, left + 1)):
                left -= len(chunk)
                if left < 0:
                    return f"more than {MAX_ENTRY_BYTES:,} bytes once decompressed"
                budget.spend(len(chunk))
                out.write(chunk)
    except DAMAGED_ENTRY as exc:
        return f"damaged or unsupported entry ({exc})"
    return None


def _manifest(manifest: Path, staged: Path, report: dict) -> list[dict]:
    base = manifest.parent.resolve()
    entries = []
    with open(manifest, encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = schemas.parse(line, f"line {n}")
            source = obj["source"]
            label = _label(next(a["name"] for a in obj["annotation"] if "name" in a))
            if not isinstance(source, str) or not isinstance(label, (str, type(None))):
                raise TypeError
        except (LabkitError, KeyError, TypeError, StopIteration):
            report["skipped"].append({"file": f"line {n}", "reason": "not a manifest line with a source and a label"})
            continue
        if not label:
            report["skipped"].append({"file": source, "reason": "label unusable as a class name"})
            continue
        if "://" in source:
            report["skipped"].append({"file": source, "reason": "remote source: labkit works offline; copy the file "
                                                                 "next to the manifest and give a relative path"})
            continue
        while isinstance(source, str) and source.startswith("./"):  # "./a.jpg" names a.jpg
            source = source[2:]
        if not isinstance(source, str) or boundary.problem(source):
            report["refused"].append({"entry": boundary.printable(repr(source)),
                                      "reason": f"path leaves the manifest's folder or is not a plain name: "
                                                f"{boundary.problem(source)}"})
            continue
        try:
            file = boundary.inside(base, source, "manifest source")
        except boundary.UnsafePath as exc:
            report["refused"].append({"entry": source, "reason": exc.message})
            continue
        if not file.is_file():
            report["skipped"].append({"file": source, "reason": "file not found"})
            continue
        dest_rel = f"images/{class_folder(label)}/{n:06d}_{file.name}"  # line number: two sources may share a name
        if _take(file, staged / dest_rel, source, report):
            entry = {"file": dest_rel, "label": label}
            usage = USAGES.get(str(obj.get("usage", "")).upper())
            entries.append({**entry, "usage": usage} if usage else entry)
    return entries


def _shanghaitech_parts(root: Path) -> list[Path]:
    """The folders holding ``train_data``/``test_data``: ``root`` itself or its ``part_*``."""
    candidates = [root, *sorted(p for p in root.glob("part_*") if p.is_dir())]
    return [c for c in candidates if (c / "train_data").is_dir() or (c / "test_data").is_dir()]


def _shanghaitech(root: Path, staged: Path, report: dict) -> list[dict]:
    from labkit.data.crowd import read_ground_truth, write_ground_truth

    parts = _shanghaitech_parts(root)
    if not parts:
        raise LabkitError(f"{root} is not in the ShanghaiTech layout",
                          "expected train_data/images and train_data/ground-truth (or part_A_final/...)")
    (staged / "images").mkdir(parents=True, exist_ok=True)
    (staged / "ground-truth").mkdir(parents=True, exist_ok=True)
    entries = []
    for part in parts:
        for split in ("train_data", "test_data"):
            images = part / split / "images"
            gt_dir = next((part / split / g for g in ("ground-truth", "ground_truth") if (part / split / g).is_dir()), None)
            if not images.is_dir():
                continue
            prefix = (f"{part.name}_" if part != root else "") + split.split("_")[0]
            for img in sorted(images.iterdir()):
                rel = str(img.relative_to(root))
                if img.suffix.lower() not in IMAGE_EXTENSIONS:
                    report["skipped"].append({"file": rel, "reason": "not an image file"})
                    continue
                gt = gt_dir / f"GT_{img.stem}.mat" if gt_dir else None
                if img.is_symlink() or (gt is not None and gt.is_symlink()):
                    report["refused"].append({"entry": rel, "reason": "symbolic link (not followed)"})
                    continue
                if gt is None or not gt.is_file():
                    report["skipped"].append({"file": rel, "reason": f"no ground truth GT_{img.stem}.mat"})
                    continue
                try:
                    heads = read_ground_truth(gt)
                except Exception as exc:  # scipy raises many types for a damaged .mat
                    report["skipped"].append({"file": str(gt.relative_to(root)), "reason": f"unreadable ground truth: {exc}"})
                    continue
                name = f"{prefix}_{img.stem}"
                if _take(img, staged / "images" / f"{name}{img.suffix.lower()}", rel, report):
                    write_ground_truth(staged / "ground-truth" / f"GT_{name}.mat", heads)
                    entries.append({"file": f"images/{name}{img.suffix.lower()}",
                                    "ground_truth": f"ground-truth/GT_{name}.mat",
                                    "count": len(heads), "origin": f"{part.name}/{split}",
                                    "usage": "train" if split == "train_data" else "val"})
    return entries
