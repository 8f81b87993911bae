"""Stage 1, data: make or import a dataset, then publish immutable, split versions.

    from labkit import data
    data.make("flowers", name="flowers", count=500, size=64, seed=0)
    v = data.publish("flowers", train_ratio=0.8, seed=0)      # -> {"version": "V001", ...}
    data.show("flowers@V001")
"""
from __future__ import annotations

from pathlib import Path

from labkit import profiles, schemas, workspace
from labkit.data import datasets
from labkit.data.generate import GENERATORS
from labkit.data.importers import FORMATS
from labkit.data.versions import publish
from labkit.errors import LabkitError
from labkit.tasks import CLASSIFICATION, COUNTING

__all__ = ["GENERATORS", "FORMATS", "make", "import_dataset", "download", "download_real", "publish", "list_datasets", "show",
           "version_dir", "manifest", "parse_ref", "default_name", "ensure_version"]


def make(kind: str, name: str | None = None, count: int | None = None, size: int | None = None,
         seed: int = 0, profile: str | None = None, class_names: str = "en") -> dict:
    """Generate a dataset offline. ``count`` and ``size`` default to the profile's; ``class_names``
    ``"tutorial"`` labels the classes as the original tutorial's dataset does (food: 美食/凉皮 ...).

    Making the same dataset again (same name, generator, count, size and seed) returns the
    existing one, so a notebook can be re-run; other parameters under a taken name are an error."""
    from labkit.data.generate import generate

    defaults = profiles.data_defaults(kind, profile)
    count = defaults["count"] if count is None else count
    size = defaults["size"] if size is None else size
    name = workspace.check_name(name or kind, "dataset name")
    source = {"kind": "generated", "generator": kind, "count": count, "size": size, "seed": seed,
              **({"class_names": class_names} if class_names != "en" else {})}
    if (datasets.path(name) / "dataset.json").exists():
        rec = datasets.record(name)
        if rec["source"] == source:
            return dict(rec, reused=True)
        raise datasets.already_exists(name)
    staged = datasets.staging()
    try:
        entries = generate(kind, staged, count, size, seed, class_names)
        task = COUNTING if kind == "crowd" else CLASSIFICATION
        return datasets.install(staged, name, task, entries, source)
    finally:
        datasets.discard(staged)


def import_dataset(path: str | Path, name: str, format: str | None = None, origin: dict | None = None) -> dict:
    """Import an image folder, a zip or tar of one, a ModelArts manifest or a ShanghaiTech folder.
    The returned record has ``report``: what was imported, skipped and refused, and why.
    ``origin`` replaces the path in the record's source (a download names its address)."""
    from labkit.data.importers import detect_format, import_path

    src = Path(path).expanduser()
    if not src.exists():
        raise LabkitError(f"{src} does not exist", "give the path of an image folder, a .zip or .tar.gz, a manifest or a "
                                                   "ShanghaiTech folder")
    name = workspace.check_name(name, "dataset name")
    if (datasets.path(name) / "dataset.json").exists():
        raise datasets.already_exists(name)
    fmt = format or detect_format(src)
    staged = datasets.staging()
    try:
        task, entries, report = import_path(src.resolve(), staged, fmt)
        source = origin or {"kind": "imported", "path": str(src.resolve()), "format": fmt}
        rec = datasets.install(staged, name, task, entries, source, report)
        return dict(rec, report=report)
    finally:
        datasets.discard(staged)


def download(public: str, name: str | None = None, mirror: str | None = None, log=print) -> dict:
    """A public dataset of the catalogue (``labkit.data.public``), downloaded once per machine
    (checked, cached; from ``mirror`` or ``$LABKIT_MIRROR`` if given) and imported as ``name``
    (default: its catalogue name). Asking again for the same returns the dataset already there."""
    from labkit.data.public import DATASETS
    from labkit.downloads import fetch

    if public not in DATASETS:
        raise LabkitError(f"no public dataset named {public!r}", f"labkit can download: {', '.join(DATASETS)}")
    entry = DATASETS[public]
    name = workspace.check_name(name or public, "dataset name")
    origin = {"kind": "downloaded", "public": public, "url": entry.remote.url, "sha256": entry.remote.sha256,
              "licence": entry.remote.licence, "format": "imagefolder"}
    if (datasets.path(name) / "dataset.json").exists():
        rec = datasets.record(name)
        if (rec["source"].get("public"), rec["source"].get("sha256")) == (public, entry.remote.sha256):
            return dict(rec, reused=True)
        raise datasets.already_exists(name)
    archive = fetch(entry.remote, mirror, log)
    return import_dataset(archive, name, "imagefolder", origin)


def download_real(kind: str, name: str | None = None, mirror: str | None = None, log=print) -> dict:
    """The real photos of generator ``kind``'s classes (flowers: ``flowers-photos``), downloaded
    and imported as ``download`` does: what a lab's ``DATA=real`` uses."""
    from labkit.data.public import name_for_kind

    return download(name_for_kind(kind), name=name, mirror=mirror, log=log)


def list_datasets() -> list[dict]:
    """Every dataset with its versions."""
    return datasets.list_all()


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@V001`` -> (name, version or None)."""
    name, _, version = ref.partition("@")
    if version and not workspace.SEQUENCE.pattern.match(version):
        raise LabkitError(f"invalid version {version!r} in {ref!r}", f"versions are spelled {workspace.SEQUENCE.spelling}")
    return name, version or None


def version_dir(ref: str) -> Path:
    """The directory of ``NAME@VERSION`` (``NAME`` alone: its latest version)."""
    name, version = parse_ref(ref)
    rec = datasets.record(name)
    published = workspace.versions(datasets.path(name) / "versions")
    if not published:
        raise LabkitError(f"dataset {name!r} has no published version", f"run `labkit data publish {name}`")
    version = version or published[-1]
    if version not in published:
        raise LabkitError(f"dataset {rec['name']!r} has no version {version} (versions: {', '.join(published)})",
                          f"use one of them, or publish a new one with `labkit data publish {name}`")
    return datasets.path(name) / "versions" / version


def show(ref: str) -> dict:
    """A dataset's record with its versions, or (``NAME@V001``) one version's record."""
    name, version = parse_ref(ref)
    if version is None:
        rec = datasets.record(name)
        rec["versions"] = workspace.versions(datasets.path(name) / "versions")
        report = datasets.path(name) / "import_report.json"
        if report.exists():
            rec["report"] = workspace.read_json(report)
        return rec
    vdir = version_dir(ref)
    return dict(schemas.read(vdir / "version.json", schemas.Version), version=vdir.name, path=str(vdir))


def manifest(ref: str, split: str) -> list[dict]:
    """The manifest lines of one split (``train`` or ``val``) of a version."""
    if split not in ("train", "val"):
        raise LabkitError(f"unknown split {split!r}", "use 'train' or 'val'")
    return schemas.read_lines(version_dir(ref) / f"{split}.jsonl", schemas.SplitLine)


def default_name(kind: str, profile: str | None = None, source: str = "generated") -> str:
    """The name the data notebook gives a dataset: ``<kind>-<profile>`` when generated; the
    public dataset's name for the real photos (``source="real"``)."""
    if source == "real":
        from labkit.data.public import name_for_kind

        return name_for_kind(kind)
    return f"{kind}-{profiles.profile(profile)}"


def ensure_version(kind: str, name: str | None = None, profile: str | None = None, log=print,
                   source: str = "generated") -> str:
    """``NAME@VERSION`` of the latest version of dataset ``name`` (default: the data notebook's
    name for ``kind``); when there is none, make (or, ``source="real"``, download) and publish it
    with the defaults and say so. This is what lets every stage notebook run on its own."""
    name = name or default_name(kind, profile, source)
    exists = (datasets.path(name) / "dataset.json").exists()
    published = workspace.versions(datasets.path(name) / "versions")
    if exists and published:
        return f"{name}@{published[-1]}"
    if not exists and source == "real":
        download_real(kind, name=name, log=log)
    elif not exists:
        make(kind, name=name, profile=profile)
    ref = f"{name}@{publish(name)['version']}"
    how = "downloaded" if source == "real" else "made"
    log(f"no published {name!r} dataset yet: {how} and published {ref} with the {profiles.profile(profile)} defaults")
    return ref
