"""``labkit labs list`` and ``labkit run LAB``: the labs, run headless with papermill."""
from __future__ import annotations

from labkit.cli.output import emit, progress, table, verb, verbs
from labkit.i18n import LANGUAGES
from labkit.profiles import PROFILES


def list_(args) -> int:
    from labkit.labs import recipes

    found = recipes()
    rows = [{"lab": n, "engine": r.get("engine", ""), "stages": len(r["stages"]), "title": r.get("title", "")}
            for n, r in found.items()]
    emit(args, list(found.values()), table(rows, ["lab", "engine", "stages", "title"]))
    return 0


def run(args) -> int:
    from labkit.labs import run

    rec = run(args.lab, profile=args.profile, out=args.out, log=progress, follow_jobs=True, language=args.lang)
    emit(args, rec, f"lab {rec['lab']} {rec['status']} in {sum(s['seconds'] for s in rec['stages']):.0f}s -> {rec['path']}")
    return 0


def add(sub) -> None:
    verb(verbs(sub, "labs", "the labs (recipes of stage notebooks)"), "list", "list the labs", list_)
    r = verb(sub, "run", "run a lab headless with papermill into runs/LAB/<timestamp>/", run, ("lab", "LAB"))
    r.add_argument("--profile", choices=PROFILES, help="sizes and hyper-parameters (default: LABKIT_PROFILE or workshop)")
    r.add_argument("--lang", choices=LANGUAGES, default=LANGUAGES[0],
                   help="the lessons' language: en (default) or zh-CN (notebooks/zh-CN/, Chinese prose and figures)")
    r.add_argument("--out", default="runs", help="where runs go (default runs/)")
