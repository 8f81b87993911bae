"""``labkit room status`` and ``labkit room give``: the instructor's view of a room on one
server, run as root there (docs/HUB.md)."""
from __future__ import annotations

from pathlib import Path

from labkit.cli.output import emit, table, verb, verbs
from labkit.room.learners import HOMES
from labkit.workspace import size_text

PACKS = "/srv/labkit/packs"   # the instructor's shared, read-only folder of packs (docs/HUB.md)


def status(args) -> int:
    from labkit.room import learners

    found = learners.room(args.homes)
    rows = []
    for e in found:
        if "error" in e:
            rows.append({"learner": e["learner"], "last error": e["error"]})
            continue
        rows.append({"learner": e["learner"], "lesson": e["lesson"] or "", "stage": e["stage"] or "-",
                     "last job": learners.job_text(e["jobs"][-1]) if e["jobs"] else "",
                     "jobs": len(e["jobs"]), "conversions": len(e["conversions"]),
                     "running": len(e["running"]), "disk": size_text(e["disk_bytes"]),
                     "last change": e["last_change"] or "", "last error": (e["last_error"] or "")[:60]})
    columns = ["learner", "lesson", "stage", "last job", "jobs", "conversions", "running", "disk", "last change",
               "last error"]
    emit(args, found, table(rows, columns) if found else f"no workspace matches {args.homes}")
    return 0


def give(args) -> int:
    from labkit.room import learners

    rec = learners.give(args.learner, args.pack, Path(args.packs), args.homes)
    emit(args, rec, f"{rec['kind']} {rec['ref']} is in {args.learner}'s workspace now")
    return 0


def add(sub) -> None:
    group = verbs(sub, "room", "a workshop room on one server (JupyterHub): every learner's progress, as root")
    s = verb(group, "status", "every learner: lesson, stage reached, jobs, conversions, services, disk, last error",
             status)
    s.add_argument("--homes", default=HOMES, metavar="GLOB", help=f"the learners' workspaces (default {HOMES})")
    g = verb(group, "give", "unpack an instructor's pack into a learner's workspace, as the learner", give)
    g.add_argument("learner", metavar="LEARNER", help="the learner's user name")
    g.add_argument("pack", metavar="PACK", help="a file in the packs folder (made by `labkit pack`)")
    g.add_argument("--packs", default=PACKS, metavar="DIR", help=f"the shared folder of packs (default {PACKS})")
    g.add_argument("--homes", default=HOMES, metavar="GLOB", help=f"the learners' workspaces (default {HOMES})")
