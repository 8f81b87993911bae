"""Instructor packs: one archive that carries a dataset version, a trained job, a conversion or
a model from one workspace to another, so that a learner who fell behind continues at stage 3
from the instructor's job, or at stage 5 from the instructor's model.

An archive (``.tar.gz``) holds ``manifest.json`` first, then ``parts/<n>/...``: each part is one
artifact's directory, with the checksum and size of every file in the manifest, and the labkit
and engine versions it was made with. A job travels with its dataset version (converting it
measures parity on that version's validation split) and a conversion with its job; a model is
self-contained. A job keeps its best checkpoint, metrics, model.json and exports, not every
epoch's checkpoint.

``unpack`` trusts nothing in the archive. It reads the members one at a time and refuses an
unknown format, a path that is absolute or climbs out (``..``), a link or a device, a member the
manifest does not list (or one it lists that is missing), a member larger than declared or whose
sha256 differs, more bytes than the disk has free, and an engine this machine lacks. It extracts
into a staging directory of the workspace and moves the parts into place only once every check
has passed, so a refused archive writes nothing.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import zlib
from pathlib import Path

from labkit import boundary, schemas, workspace
from labkit.artifacts import BY_KIND, DATASET, JOB, VERSIONED
from labkit.boundary import printable
from labkit.errors import LabkitError
from labkit.doctor import package_versions

FORMAT = "labkit-pack/1"
KINDS = VERSIONED  # what an archive carries
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_FILES = 100_000
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SKIPPED = re.compile(r"(^|/)\.lock$|^output/checkpoints/epoch_")  # locks; every epoch's checkpoint but the best


# --- pack ------------------------------------------------------------------------------------

def kind_of(ref: str) -> str:
    """Which kind of artifact ``ref`` names in this workspace; an error if none or several."""
    name = workspace.check_name(ref.partition("@")[0])
    home = workspace.home()
    found = [k for k in KINDS if (home / BY_KIND[k].area / name).is_dir()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise LabkitError(f"nothing named {name!r} to pack (no dataset, job, conversion or model)",
                          "see `labkit data list`, `labkit train list`, `labkit convert list`, `labkit model list`")
    raise LabkitError(f"{name!r} names a {' and a '.join(found)}", f"say which with --kind ({', '.join(found)})")


def _part(kind: str, ref: str) -> tuple[dict, Path]:
    """(the manifest entry of one artifact, its directory) for the version ``ref`` names."""
    from labkit import convert, data, registry, train

    if kind == "dataset":
        folder = data.version_dir(ref)
        name, version = folder.parents[1].name, folder.name
        return {"kind": kind, "ref": f"{name}@{version}", "dir": f"{DATASET.area}/{name}",
                "only": ["dataset.json", "items.jsonl", f"versions/{version}"]}, folder.parents[1]
    record = {"job": train.show, "conversion": convert.show, "model": registry.show}[kind](ref)
    folder = Path(record["dir"])
    if record["state"] != BY_KIND[kind].finished:
        raise LabkitError(f"{kind} {folder.parent.name}@{folder.name} is {record['state']}: only a finished one is packed",
                          "wait for it to complete, or pack another version")
    return ({"kind": kind, "ref": f"{folder.parent.name}@{folder.name}", "dir": f"{BY_KIND[kind].area}/{folder.parent.name}/"
             f"{folder.name}", "engine": record.get("engine")}, folder)


def _parts(kind: str, ref: str) -> list[tuple[dict, Path]]:
    """The artifact and what it needs elsewhere, in the order they are installed."""
    from labkit import convert, train

    if kind == "job":
        dataset = train.show(ref)["dataset"]
        try:
            needed = _part("dataset", dataset)
        except LabkitError:
            raise LabkitError(f"job {ref} was trained on {dataset}, which is not in this workspace any more: the "
                              "job cannot travel without it (stage 3 measures on its validation split)",
                              "pack the model imported from the job instead (labkit pack MODEL@VERSION)") from None
        return [needed, _part("job", ref)]
    if kind == "conversion":
        return [*_parts("job", convert.show(ref)["job"]), _part("conversion", ref)]
    return [_part(kind, ref)]


def _files(entry: dict, folder: Path) -> list[str]:
    tops = [folder / p for p in entry.get("only", ["."])]
    found = []
    for top in tops:
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() and not p.is_symlink())
        found += [p.relative_to(folder).as_posix() for p in paths]
    return [f for f in found if not SKIPPED.search(f)]


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pack(ref: str, out: str | Path, kind: str | None = None, log=print) -> dict:
    """Write ``ref`` (and what it needs) into the archive ``out``; return its manifest."""
    kind = kind or kind_of(ref)
    if kind not in KINDS:
        raise LabkitError(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    parts = _parts(kind, ref)
    manifest = {"format": FORMAT, "kind": kind, "ref": parts[-1][0]["ref"], "created": workspace.now(),
                "home": str(workspace.home()), "versions": package_versions(), "parts": []}
    for entry, folder in parts:
        files = _files(entry, folder)
        entry = {k: v for k, v in entry.items() if k != "only"}
        entry["files"] = {f: {"size": (folder / f).stat().st_size, "sha256": _digest(folder / f)} for f in files}
        manifest["parts"].append(entry)
    out = Path(out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
        for i, ((_, folder), entry) in enumerate(zip(parts, manifest["parts"])):
            for f in entry["files"]:
                info = tarfile.TarInfo(f"parts/{i}/{f}")  # a plain file entry, never a link
                info.size, info.mode = entry["files"][f]["size"], 0o644
                with open(folder / f, "rb") as src:
                    tar.addfile(info, src)
    os.replace(partial, out)  # a killed pack leaves a .partial, never a short archive under the name
    total = sum(s["size"] for p in manifest["parts"] for s in p["files"].values())
    log(f"packed {kind} {manifest['ref']} ({', '.join(p['ref'] for p in manifest['parts'])}): "
        f"{workspace.size_text(total)} in {workspace.size_text(out.stat().st_size)} -> {out}")
    return {**manifest, "path": str(out)}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


# --- unpack ----------------------------------------------------------------------------------
# Fields a job or conversion record has only while it runs on the machine that ran it.
RUN_ONLY = ("command", "pid", "pid_started", "child_pid", "resumed_from", "stop_reason")
DATASET_TOPS = ("dataset.json", "items.jsonl", "versions")
LINKED_TOPS = ("images", "ground-truth")  # where a dataset's items live (links to its version's files)


def _refuse(archive: Path, why: str) -> LabkitError:
    return LabkitError(f"{archive.name} is refused: {printable(why, 400)}; nothing was written",
                       "ask for the archive again (`labkit pack` makes it), and unpack it as it came")


def _check_manifest(archive: Path, manifest) -> dict[str, dict]:
    """The members the manifest promises, by archive name; a refusal if it is not a pack's."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise _refuse(archive, f"it is not a {FORMAT} archive (format {printable(repr(got))})")
    why = schemas.problem(schemas.Pack, manifest)
    if why:
        raise _refuse(archive, f"its manifest is malformed: {why}")
    expected = {}
    for i, part in enumerate(manifest["parts"]):
        if not _part_dir_ok(part):
            raise _refuse(archive, f"part {i} of its manifest is malformed: a {part['kind']} does not go to "
                                   f"{printable(part['dir'])!r}")
        if part["kind"] == "dataset" and any(f.split("/")[0] not in DATASET_TOPS for f in part["files"]):
            raise _refuse(archive, f"its dataset part holds files a dataset version does not: "
                                   f"{printable(next(f for f in part['files'] if f.split('/')[0] not in DATASET_TOPS))!r}")
        for rel, spec in part["files"].items():
            expected[f"parts/{i}/{rel}"] = spec
    if len(expected) > MAX_FILES:
        raise _refuse(archive, f"it holds {len(expected)} files (at most {MAX_FILES})")
    return expected


def _part_dir_ok(part: dict) -> bool:
    """A part goes where its kind lives (``datasets/NAME`` or ``AREA/NAME/VERSION``), as its ref says."""
    pieces = part["dir"].split("/")
    artifact = BY_KIND[part["kind"]]
    if part["kind"] == "dataset":
        shape = len(pieces) == 2 and part["ref"].partition("@")[0] == pieces[1]
    else:
        shape = (len(pieces) == 3 and bool(artifact.numbering.pattern.match(pieces[2]))
                 and part["ref"] == f"{pieces[1]}@{pieces[2]}")
    return shape and pieces[0] == artifact.area and bool(workspace.NAME_RE.match(pieces[1]))


def _extract(archive: Path, tar: tarfile.TarFile, manifest: tarfile.TarInfo, expected: dict, staged: Path) -> None:
    """Every member after the manifest into ``staged``, each checked against what it promises."""
    seen = set()
    for member in tar:
        if member is manifest:  # iterating starts again at the first member, which was read already
            continue
        spec = expected.get(member.name)
        if spec is None or member.name in seen:
            raise _refuse(archive, f"it holds {printable(member.name)!r}, which its manifest does not list")
        if not member.isreg():
            raise _refuse(archive, f"{printable(member.name)!r} is a link or a special file, not a plain file")
        if member.size != spec["size"]:
            raise _refuse(archive, f"{printable(member.name)!r} is {member.size} bytes, its manifest says {spec['size']}")
        dest = boundary.inside(staged, member.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with tar.extractfile(member) as src, open(dest, "xb") as out:
            left = member.size
            while chunk := src.read(min(1 << 20, left)):
                left -= len(chunk)
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != spec["sha256"]:
            raise _refuse(archive, f"{printable(member.name)!r} does not match its checksum (damaged or tampered with)")
        seen.add(member.name)
    missing = sorted(set(expected) - seen)
    if missing:
        raise _refuse(archive, f"{len(missing)} file(s) its manifest lists are missing, e.g. {printable(missing[0])!r}")


# --- unpack: what each part must hold --------------------------------------------------------

def _record(folder: Path, rel: str, schema, archive: Path, i: int):
    """Part ``i``'s record ``rel``, valid by ``schema``; a refusal naming the file and the field."""
    path = folder / rel
    if not path.is_file():
        raise _refuse(archive, f"its part {i} has no {rel}")
    try:
        return (schemas.read_lines(path, schema) if rel.endswith(".jsonl") else schemas.read(path, schema))
    except LabkitError as exc:
        raise _refuse(archive, exc.message.replace(str(folder), f"part {i}")) from None


def _verify_dataset(archive: Path, i: int, part: dict, folder: Path) -> None:
    """The dataset record, its items and its one version, consistent with each other and whole."""
    name = part["dir"].split("/")[1]
    rec = _record(folder, "dataset.json", schemas.Dataset, archive, i)
    items = _record(folder, "items.jsonl", schemas.Item, archive, i)
    found = [p for p in (folder / "versions").iterdir()] if (folder / "versions").is_dir() else []
    if len(found) != 1 or not found[0].is_dir() or not DATASET.numbering.pattern.match(found[0].name):
        raise _refuse(archive, f"its dataset part {name} holds {len(found)} entries under versions/, not one version")
    vdir, version_name = found[0], found[0].name
    version = _record(folder, f"versions/{version_name}/version.json", schemas.Version, archive, i)
    if rec["name"] != name or version["dataset"] != name or version["task"] != rec["task"]:
        raise _refuse(archive, f"its dataset part {name}: dataset.json and version.json name another dataset or task")
    try:
        schemas.check_items(items, rec["task"], f"part {i}/items.jsonl")
    except LabkitError as exc:
        raise _refuse(archive, exc.message) from None
    if part["ref"] != f"{name}@{version_name}":
        raise _refuse(archive, f"its dataset part says {printable(part['ref'])!r} but holds {name}@{version_name}")
    files = set()
    for item in items:
        for key in ("file", "ground_truth"):
            if key in item and item[key] is not None:
                rel = item[key]
                if rel.split("/")[0] not in LINKED_TOPS or rel in files:
                    raise _refuse(archive, f"its dataset part {name}: item {printable(rel)!r} is not under "
                                           f"{' or '.join(LINKED_TOPS)}/, or is listed twice")
                if not _plain_file(vdir, rel):
                    raise _refuse(archive, f"its dataset part {name}: item {printable(rel)!r} is not in version "
                                           f"{version_name}")
                files.add(rel)
    lines = {}
    for side in ("train", "val"):
        path = vdir / f"{side}.jsonl"
        rows = _record(folder, f"versions/{version_name}/{side}.jsonl", schemas.SplitLine, archive, i)
        for row in rows:
            if row["source"] not in files or _digest(vdir / row["source"]) != row["sha256"]:
                raise _refuse(archive, f"its {side} split names {printable(row['source'])!r}, which is not one of "
                                       "the dataset's items or differs from it")
        lines[side] = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    checksum = hashlib.sha256("\n".join(f"{s}\t{ln}" for s in ("train", "val") for ln in lines[s]).encode()).hexdigest()
    if checksum != version["checksum"]:
        raise _refuse(archive, f"its dataset version {name}@{version_name} does not match its own checksum")
    part["checksum"] = checksum


def _plain_file(root: Path, rel: str) -> bool:
    try:
        return boundary.inside(root, rel).is_file()
    except boundary.UnsafePath:
        return False


def _verify_run(archive: Path, i: int, part: dict, folder: Path, parts: list[dict], home: Path) -> None:
    """A job, conversion or model: its record names it, it finished, and what it was made from
    travels with it or is here already."""
    kind, (_, name, version) = part["kind"], part["dir"].split("/")
    artifact = BY_KIND[kind]
    key, done = artifact.key, artifact.finished
    rec = _record(folder, "run.json", artifact.schema, archive, i)
    if rec[key] != name or rec.get("version", version) != version:
        raise _refuse(archive, f"its {kind} part {name}@{version} holds the record of "
                               f"{printable(str(rec[key]))}@{printable(str(rec.get('version')))}")
    if rec["state"] != done:
        raise _refuse(archive, f"its {kind} {name}@{version} is {rec['state']}: only a {done} {kind} is unpacked")
    if kind in ("job", "conversion") and rec["engine"] != part.get("engine"):
        raise _refuse(archive, f"its {kind} part {name}@{version} says engine {part.get('engine')!r}, its record "
                               f"{rec['engine']!r}")
    needs = {"job": ("dataset", rec.get("dataset")), "conversion": ("job", rec.get("job"))}.get(kind)
    if needs and not any(p["kind"] == needs[0] and p["ref"] == needs[1] for p in parts):
        raise _refuse(archive, f"its {kind} {name}@{version} was made from {needs[0]} {needs[1]}, which the "
                               "archive does not hold")
    if kind == "job":
        for rel, record_schema in (("output/model.json", schemas.ModelInfo), ("output/eval.json", schemas.Evaluation)):
            if (folder / rel).exists():
                _record(folder, rel, record_schema, archive, i)
    if kind == "conversion":
        _record(folder, "report.json", schemas.Report, archive, i)
    if kind == "model":
        _record(folder, "serving.json", schemas.Serving, archive, i)
        if not (folder / "model.onnx").is_file():
            raise _refuse(archive, f"its model {name}@{version} has no model.onnx")
        _check_onnx(archive, folder / "model.onnx")


def _check_onnx(archive: Path, path: Path) -> None:
    """An ONNX model from outside holds its weights: one that names external data files (which
    ONNX Runtime would read from wherever they point) is refused, as is one that does not parse."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a file that is not a model
        raise _refuse(archive, f"its model.onnx is not an ONNX model ({str(exc)[:200]})") from None
    tensors = [*model.graph.initializer, *(a.t for n in model.graph.node for a in n.attribute if a.HasField("t"))]
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors):
        raise _refuse(archive, "its model.onnx reads weights from external files")
    if any(f.domain not in ("", "ai.onnx", "ai.onnx.ml", "com.microsoft") for f in model.opset_import):
        raise _refuse(archive, "its model.onnx uses custom operators (code labkit would have to load)")


# --- unpack: installing ----------------------------------------------------------------------

def _plan(archive: Path, manifest: dict, home: Path) -> list[bool]:
    """For each part, whether to install it (False: the same dataset version is here already);
    a refusal if a part would overwrite something or needs an engine that is not installed."""
    from labkit.catalog import ENGINE_PACKAGES

    installed = package_versions()
    install = []
    for part in manifest["parts"]:
        engine = part.get("engine")
        if part["kind"] in ("job", "conversion") and not installed.get(ENGINE_PACKAGES.get(engine, "")):
            raise LabkitError(f"{archive.name} holds a {engine} {part['kind']}, and {engine} is not installed here",
                              "unpack it on a machine with that engine (`labkit doctor` lists them); nothing was written")
        target = home / part["dir"]
        if part["kind"] == "dataset":
            version = part["ref"].partition("@")[2]
            here = target / "versions" / version / "version.json"
            if here.exists():
                if schemas.read(here, schemas.Version)["checksum"] != part["checksum"]:
                    raise LabkitError(f"dataset version {part['ref']} exists here with other data",
                                      f"delete it first (labkit data delete {part['ref']}) or unpack into another "
                                      "workspace (LABKIT_HOME); nothing was written")
                install.append(False)
                continue
            if target.exists():
                raise LabkitError(f"a dataset named {target.name} exists here, without version {version}",
                                  f"delete it first (labkit data delete {target.name}) or unpack into another "
                                  "workspace (LABKIT_HOME); nothing was written")
        elif target.exists():
            raise LabkitError(f"{part['kind']} {part['ref']} exists here already",
                              f"delete it first (labkit {BY_KIND[part['kind']].cli} delete {part['ref']}) or unpack into another "
                              "workspace (LABKIT_HOME); nothing was written")
        install.append(True)
    return install


def _place(archive: Path, i: int, source: Path, part: dict, parts: list[dict], old_home: str, home: Path) -> None:
    """Make part ``i`` (still in staging) read as this workspace's: paths in its records point
    here, its path fields are where labkit puts them, and what it did while running is dropped."""
    for path in source.rglob("*.json"):
        workspace.write_json(path, _rehomed(schemas.read(path), old_home, str(home)))
    if part["kind"] == "dataset":  # the dataset's images: links to its version's, as publish made them
        version = next(source.glob("versions/*"))
        for item in schemas.read_lines(source / "items.jsonl", schemas.Item):
            for key in ("file", "ground_truth"):
                if item.get(key):
                    dest = boundary.inside(source, item[key])
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.link(boundary.inside(version, item[key]), dest)
        return
    if part["kind"] == "model":
        return
    record = schemas.read(source / "run.json")
    if part["kind"] == "job":
        dataset, places = record["dataset"], {"train_url": home / part["dir"] / "output"}
    else:  # a conversion: its job travels with it (``_verify_run``), and names the dataset
        job_part = next(n for n, p in enumerate(parts) if p["kind"] == "job" and p["ref"] == record["job"])
        dataset = schemas.read(source.parent / str(job_part) / "run.json")["dataset"]
        places = {"job_run": home / JOB.area / record["job"].replace("@", "/")}
    places["data_url"] = home / DATASET.area / dataset.partition("@")[0] / "versions" / dataset.partition("@")[2]
    for key, place in places.items():
        if record.get(key) is not None and record[key] != str(place):
            raise _refuse(archive, f"part {i}'s run.json: field {key!r} points to {printable(str(record[key]))!r}, "
                                   "not where it belongs in the workspace")
        record[key] = str(place)
    for key in RUN_ONLY:
        record.pop(key, None)
    workspace.write_json(source / "run.json", record)


def _commit(staged: Path, manifest: dict, install: list[bool], home: Path) -> None:
    """Rename every part into place; if one cannot go, those already moved go back (all or nothing)."""
    moved = []
    try:
        for i, (part, wanted) in enumerate(zip(manifest["parts"], install)):
            if not wanted:
                continue
            source, target = staged / "parts" / str(i), home / part["dir"]
            target.parent.mkdir(parents=True, exist_ok=True)
            with workspace.locked(target.parent):
                if target.exists():
                    raise LabkitError(f"{part['kind']} {part['ref']} appeared here while unpacking",
                                      "unpack again; nothing was written")
                os.rename(source, target)
            moved.append((target, source))
    except BaseException:
        for target, source in reversed(moved):
            os.rename(target, source)
        raise


def unpack(file: str | Path, log=print) -> dict:
    """Check archive ``file`` and install what it holds into this workspace; return its
    manifest with what was installed and what was already here."""
    archive = Path(file).expanduser()
    if not archive.is_file():
        raise LabkitError(f"{archive} does not exist", "give the path of a file made by `labkit pack`")
    home = workspace.home()
    workspace.remove_stale_staging(home)
    staged = workspace.staging_dir(home)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                first = tar.next()
                if first is None or first.name != "manifest.json" or not first.isreg() or first.size > MAX_MANIFEST_BYTES:
                    raise _refuse(archive, "it does not start with a labkit manifest")
                try:
                    manifest = schemas.parse(tar.extractfile(first).read(), "its manifest")
                except LabkitError as exc:
                    raise _refuse(archive, exc.message) from None
                expected = _check_manifest(archive, manifest)
                needed = sum(s["size"] for s in expected.values())
                free = shutil.disk_usage(home).free
                if needed > free:
                    raise LabkitError(f"{archive.name} needs {workspace.size_text(needed)}, the workspace's disk has "
                                      f"{workspace.size_text(free)} free",
                                      "free disk (labkit gc, labkit status); nothing was written")
                _extract(archive, tar, first, expected, staged)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            raise _refuse(archive, f"it is not a readable .tar.gz ({exc})") from None
        parts = manifest["parts"]
        for i, part in enumerate(parts):  # datasets first: the others are checked against them
            if part["kind"] == "dataset":
                _verify_dataset(archive, i, part, staged / "parts" / str(i))
        for i, part in enumerate(parts):
            if part["kind"] != "dataset":
                _verify_run(archive, i, part, staged / "parts" / str(i), parts, home)
        install = _plan(archive, manifest, home)
        for i, (part, wanted) in enumerate(zip(parts, install)):
            if wanted:
                _place(archive, i, staged / "parts" / str(i), part, parts, manifest["home"], home)
        _commit(staged, manifest, install, home)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    installed = [p["ref"] for p, w in zip(manifest["parts"], install) if w]
    kept = [p["ref"] for p, w in zip(manifest["parts"], install) if not w]
    log(f"unpacked {manifest['kind']} {printable(manifest['ref'])} from {printable(archive.name)}: "
        f"installed {', '.join(installed) or 'nothing'}"
        + (f"; already here: {', '.join(kept)}" if kept else ""))
    here = package_versions()
    differs = {k: (v, here[k]) for k, v in manifest["versions"].items() if v and here.get(k) and v != here[k]}
    for pkg, (there, here) in differs.items():
        log(f"note: packed with {printable(pkg)} {printable(there)}, this machine has {here}")
    return {"kind": manifest["kind"], "ref": manifest["ref"], "installed": installed, "already_here": kept,
            "versions": manifest["versions"], "version_differences": differs}


def _rehomed(value, old: str, new: str):
    """``value`` with every string that starts with the packer's workspace path rebased on ours."""
    if isinstance(value, str):
        return new + value[len(old):] if value == old or value.startswith(old + os.sep) else value
    if isinstance(value, list):
        return [_rehomed(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _rehomed(v, old, new) for k, v in value.items()}
    return value
