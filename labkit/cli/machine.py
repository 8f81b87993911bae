"""``labkit doctor`` (is this machine ready?) and ``labkit status`` (what still runs on it)."""
from __future__ import annotations

from dataclasses import asdict

from labkit.cli.output import emit, verb


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
    from labkit.status import running

    found = running()
    lines = [f"{r['kind']:<10} {r['name']:<28} {r['state']:<9} {r['detail']}\n{'':<10} stop: {r['stop']}" for r in found]
    emit(args, found, "\n".join(lines) if lines else "nothing is running.")
    return 0


def add(sub) -> None:
    verb(sub, "doctor", "check this machine: python, engines, devices, disk, workspace, ports", doctor)
    verb(sub, "status", "everything still running (jobs, conversions, services) and how to stop it", status)
