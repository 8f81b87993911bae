"""``labkit labs list`` and ``labkit run LAB``: the labs, run headless with papermill."""
from __future__ import annotations

from labkit.cli.output import emit, progress, table, verb, verbs
from labkit.i18n import LANGUAGES
from labkit.labs import OPTIONS
from labkit.profiles import PROFILES


def list_(args) -> int:
    from labkit import profiles
    from labkit.errors import LabkitError
    from labkit.labs import estimate, recipes
    from labkit.train.timing import minutes_text

    found, profile = recipes(), profiles.profile(args.profile)
    rows = [{"lab": n, "engine": r.get("engine", ""), "stages": len(r["stages"]), "title": r.get("title", "")}
            for n, r in found.items()]
    columns = ["lab", "engine", "stages", "title"]
    if not args.no_estimate:  # calibrates each model once per machine (seconds), then reads the cache
        for row, rec in zip(rows, found.values()):
            try:
                rec["estimate_seconds"] = round(estimate(row["lab"], profile, log=progress))
                row[f"{profile} here"] = minutes_text(rec["estimate_seconds"])
            except LabkitError as exc:
                progress(f"{row['lab']}: no time estimate: {exc.message}")
                row[f"{profile} here"] = "?"
        columns.insert(3, f"{profile} here")
    emit(args, list(found.values()), table(rows, columns))
    return 0


def run(args) -> int:
    from labkit.labs import run

    options = {k: v for k, v in {"DATA": args.data, "PRETRAINED": args.pretrained}.items() if v}
    rec = run(args.lab, profile=args.profile, out=args.out, log=progress, follow_jobs=True, language=args.lang,
              max_epochs=args.max_epochs, options=options)
    emit(args, rec, f"lab {rec['lab']} {rec['status']} in {sum(s['seconds'] for s in rec['stages']):.0f}s -> {rec['path']}")
    return 0


def add(sub) -> None:
    ls = verb(verbs(sub, "labs", "the labs (recipes of stage notebooks)"), "list",
              "list the labs, with how long each should take on this machine", list_)
    ls.add_argument("--profile", choices=PROFILES, help="the profile to estimate (default: LABKIT_PROFILE or workshop)")
    ls.add_argument("--no-estimate", action="store_true", help="skip the time estimates (no calibration)")
    r = verb(sub, "run", "run a lab headless with papermill into runs/LAB/<timestamp>/", run, ("lab", "LAB"))
    r.add_argument("--profile", choices=PROFILES, help="sizes and hyper-parameters (default: LABKIT_PROFILE or workshop)")
    r.add_argument("--lang", choices=LANGUAGES, default=LANGUAGES[0],
                   help="the lessons' language: en (default) or zh-CN (notebooks/zh-CN/, Chinese prose and figures)")
    r.add_argument("--out", default="runs", help="where runs go (default runs/)")
    r.add_argument("--data", choices=OPTIONS["DATA"],
                   help="generated (default: offline) or real: the real photos (labkit data download; flowers labs)")
    r.add_argument("--pretrained", choices=OPTIONS["PRETRAINED"],
                   help="none (default: from scratch) or imagenet: the published ImageNet weights, then fine-tuning")
    r.add_argument("--max-epochs", type=int, metavar="N",
                   help="stop every training job after N epochs (e.g. 1: try the full profile's sizes)")
