"""``labkit doctor`` (is this machine ready?), ``labkit status`` (what still runs on it, and
the workspace's disk use) and ``labkit gc`` (free the disk of epoch checkpoints)."""
from __future__ import annotations

from dataclasses import asdict

from labkit.cli.output import emit, verb
from labkit.workspace import size_text


def doctor(args) -> int:
    from labkit.doctor import checks

    results = checks()
    lines = []
    for c in results:
        lines.append(f"[{'ok' if c.ok else 'FAIL':>4}] {c.name:<12} {c.detail}")
        if not c.ok:
            lines.append(f"       fix: {c.fix}")
    failed = [c.name for c in results if not c.ok]
    lines.append("labkit is ready." if not failed else f"{len(failed)} problem(s): {', '.join(failed)}")
    emit(args, [asdict(c) for c in results], "\n".join(lines))
    return 1 if failed else 0


def status(args) -> int:
    from labkit.status import disk_use, running

    found, disk = running(), disk_use()
    lines = [f"{r['kind']:<10} {r['name']:<28} {r['state']:<9} {r['detail']}\n{'':<10} stop: {r['stop']}" for r in found]
    lines = lines or ["nothing is running."]
    lines.append(f"workspace {disk['home']}: {size_text(disk['total_bytes'])} ("
                 + ", ".join(f"{area} {size_text(n)}" for area, n in disk["areas"].items()) + ")")
    emit(args, {"running": found, "disk": disk}, "\n".join(lines))
    return 0


def gc(args) -> int:
    from labkit import cleanup

    rec = cleanup.gc(dry_run=args.dry_run, log=lambda _: None)
    jobs = len({r["job"] for r in rec["removed"]})
    verb_ = "would free" if args.dry_run else "freed"
    emit(args, rec, f"{len(rec['removed'])} epoch checkpoint(s) of {jobs} job(s): {verb_} {size_text(rec['freed_bytes'])}"
                    " (each job keeps its best and its last)")
    return 0


def add(sub) -> None:
    verb(sub, "doctor", "check this machine: python, engines, devices, disk, workspace, ports", doctor)
    verb(sub, "status", "everything still running (jobs, conversions, services, TensorBoard), how to stop it, and disk use",
         status)
    g = verb(sub, "gc", "free disk: delete epoch checkpoints other than each job's best and last", gc)
    g.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
