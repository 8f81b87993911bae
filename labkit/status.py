"""``labkit status``: everything labkit started that is still running — training jobs,
conversions, services, TensorBoard — and the command that stops each (the seeds' "make sure nothing is
still billing"), and what the workspace holds on disk. A record whose process died is
reported as such, never as running."""
from __future__ import annotations

from labkit import convert, train, workspace
from labkit.artifacts import AREAS, CONVERSION, JOB, SERVICE, TENSORBOARD
from labkit.serve import services
from labkit.train import board


def running() -> list[dict]:
    found = []
    for r in train.list_jobs():
        if r["state"] not in train.TERMINAL:
            found.append({"kind": "job", "name": f"{r['job']}@{r['version']}", "state": r["state"],
                          "detail": f"{r['algorithm']} on {r['engine']}", "stop": JOB.stop_command(r["job"])})
    for r in convert.list_tasks():
        if r["state"] not in train.TERMINAL:
            found.append({"kind": "conversion", "name": f"{r['task']}@{r['version']}", "state": r["state"],
                          "detail": r["options"]["template"], "stop": CONVERSION.stop_command(r["task"])})
    for r in services.list_services():
        if r["state"] in services.LIVE:
            alive = r.get("instances_alive", r["instances"])
            detail = f"{r.get('url', '')} serving {r['model']}"
            if alive < r["instances"]:
                detail += f"; only {alive} of {r['instances']} instances alive"
            found.append({"kind": "service", "name": r["service"], "state": r["state"], "detail": detail,
                          "stop": SERVICE.stop_command(r["service"])})
    up = board.running()
    if up:
        found.append({"kind": "tensorboard", "name": up["name"], "state": up["state"],
                      "detail": f"{up.get('url') or ''} over {', '.join(up['jobs']) or 'every job'}",
                      "stop": TENSORBOARD.stop_command(up["name"])})
    return found


def disk_use() -> dict:
    """Bytes each area of the workspace takes (a hard-linked file counts once, in the first
    area that holds it), the total, and where the workspace is."""
    home = workspace.home()
    used, _ = workspace.disk_bytes([home / area for area in AREAS])
    return {"home": str(home), "areas": dict(zip(AREAS, used)), "total_bytes": sum(used)}
