"""``labkit data``: stage 1, make or import datasets and publish versions."""
from __future__ import annotations

from labkit.cli.output import delete_verb, emit, progress, table, verb, verbs
from labkit.data.generate import CLASS_NAMES, GENERATORS
from labkit.data.importers import FORMATS
from labkit.data.public import DATASETS as PUBLIC
from labkit.downloads import MIRROR_ENV
from labkit.data.versions import SIGMAS, SPLITS


def make(args) -> int:
    from labkit import data

    rec = data.make(args.kind, name=args.name, count=args.count, size=args.size, seed=args.seed,
                    class_names=args.class_names)
    done = "already there (same parameters)" if rec.get("reused") else "made"
    src = rec["source"]
    emit(args, rec, f"dataset {rec['name']}: {rec['count']} {src['generator']} images of {src['size']}px {done}\n"
                    f"next: labkit data publish {rec['name']} --train-ratio 0.8")
    return 0


def import_(args) -> int:
    from labkit import data

    rec = data.import_dataset(args.path, args.name, args.format)
    report = rec["report"]
    lines = [f"dataset {rec['name']}: imported {report['imported']} images ({rec['source']['format']}), "
             f"skipped {len(report['skipped'])}, refused {len(report['refused'])}"]
    lines += [f"  refused {item['entry']}: {item['reason']}" for item in report["refused"][:20]]
    lines += [f"  skipped {item['file']}: {item['reason']}" for item in report["skipped"][:20]]
    hidden = len(report["skipped"]) + len(report["refused"]) - 40
    if hidden > 0:
        lines.append(f"  ... and {hidden} more in the import report (labkit data show {rec['name']} --json)")
    emit(args, rec, "\n".join(lines))
    return 0


def download(args) -> int:
    from labkit import data

    rec = data.download(args.public, name=args.name, mirror=args.mirror, log=progress)
    if rec.get("reused"):
        emit(args, rec, f"dataset {rec['name']}: already here ({rec['count']} images of {args.public})")
        return 0
    report = rec["report"]
    emit(args, rec, f"dataset {rec['name']}: {report['imported']} images of {len(rec['classes'])} classes "
                    f"({', '.join(rec['classes'])}), skipped {len(report['skipped'])}, refused {len(report['refused'])}\n"
                    f"licence: {rec['source']['licence']}\n"
                    f"next: labkit data publish {rec['name']} --train-ratio 0.8")
    return 0


def publish(args) -> int:
    from labkit import data

    v = data.publish(args.name, train_ratio=args.train_ratio, seed=args.seed, sigma=args.sigma, split_by=args.split)
    if not args.json:
        progress(f"  train {v['counts']['train']['images']} / val {v['counts']['val']['images']} images, "
                 f"checksum {v['checksum'][:12]}")
    emit(args, v, v["version"])  # scripts read the version from stdout
    return 0


def list_(args) -> int:
    from labkit import data

    found = data.list_datasets()
    rows = [{"name": d["name"], "task": d["task"], "images": d["count"], "classes": len(d["classes"]) or "-",
             "versions": ",".join(d["versions"]) or "-", "source": d["source"].get("generator") or d["source"]["format"]}
            for d in found]
    emit(args, found, table(rows, ["name", "task", "images", "classes", "versions", "source"]))
    return 0


def show(args) -> int:
    from labkit import data

    rec = data.show(args.ref)
    if "version" in rec:
        how = (f"train ratio {rec['train_ratio']}, seed {rec['seed']}" if "seed" in rec
               else "the source's own train/test split")
        lines = [f"{rec['dataset']}@{rec['version']}  ({rec['task']}, {how})",
                 f"checksum {rec['checksum']}", f"path     {rec['path']}"]
        for side in ("train", "val"):
            counts = rec["counts"][side]
            detail = counts.get("per_class") or {"heads": counts.get("heads")}
            lines.append(f"{side:<5} {counts['images']:>6} images  " + "  ".join(f"{k}={v}" for k, v in detail.items()))
    else:
        lines = [f"{rec['name']}  ({rec['task']}, {rec['count']} images)", f"source   {rec['source']}",
                 f"versions {', '.join(rec['versions']) or '(none: labkit data publish ' + rec['name'] + ')'}"]
        if rec["class_counts"]:
            lines.append("classes  " + "  ".join(f"{k}={v}" for k, v in rec["class_counts"].items()))
        if "heads" in rec:
            lines.append(f"heads    {rec['heads']}")
        if rec.get("skipped"):
            lines.append(f"skipped  {rec['skipped']} files at import (see --json for the report)")
    emit(args, rec, "\n".join(lines))
    return 0


def add(sub) -> None:
    group = verbs(sub, "data", "stage 1: make or import datasets, publish versions")
    m = verb(group, "make", "generate a dataset offline", make)
    m.add_argument("kind", choices=GENERATORS, help="which generator")
    m.add_argument("--name", help="dataset name (default: the generator's name)")
    m.add_argument("--count", type=int, help="number of images (default: the profile's, see LABKIT_PROFILE)")
    m.add_argument("--size", type=int, help="image width and height in pixels (default: the profile's)")
    m.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same images")
    m.add_argument("--class-names", choices=CLASS_NAMES, default="en",
                   help="en (default): English class ids; tutorial: the names the original tutorial's dataset "
                        "uses (food: 美食/凉皮 ...)")
    i = verb(group, "import", "import an image folder, a zip or tar of one, a manifest or a ShanghaiTech folder", import_)
    i.add_argument("path", help="what to import")
    i.add_argument("--name", required=True, help="dataset name")
    i.add_argument("--format", choices=FORMATS, help="layout of PATH (default: detected)")
    d = verb(group, "download", "download a public dataset (checked, cached once per machine) and import it", download)
    d.add_argument("public", choices=PUBLIC, metavar="NAME",
                   help="which: " + "; ".join(f"{name} ({d.title}, {d.images:,} images)" for name, d in PUBLIC.items()))
    d.add_argument("--name", help="dataset name (default: NAME)")
    d.add_argument("--mirror", help=f"fetch from a room's server (URL) or a shared folder holding the file instead of "
                                    f"its own address (default: ${MIRROR_ENV})")
    p = verb(group, "publish", "publish an immutable version (V001, V002, ...) with a train/val split", publish)
    p.add_argument("name", help="dataset name")
    p.add_argument("--train-ratio", type=float, default=0.8, help="share of each class used to train (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--split", choices=SPLITS, default="stratified",
                   help="stratified (default): a seeded split per class; source: keep the source's own train/test "
                        "(ShanghaiTech's train_data/test_data, a manifest's usage)")
    p.add_argument("--sigma", choices=SIGMAS, default="fixed",
                   help="crowd data: Gaussian width of the density maps (default fixed, sigma 4)")
    verb(group, "list", "list datasets and their versions", list_)
    verb(group, "show", "show a dataset, or one version (NAME@V001)", show, ("ref", "NAME[@VERSION]"))
    delete_verb(group, "dataset", "NAME[@VERSION]")
