"""``labkit status``: everything labkit started that is still running — training jobs,
conversions, services — and the command that stops each (the seeds' "make sure nothing is
still billing"). A record whose process died is reported as such, never as running."""
from __future__ import annotations

from labkit import convert, train
from labkit.serve import services


def running() -> list[dict]:
    found = []
    for r in train.list_jobs():
        if r["state"] not in train.TERMINAL:
            found.append({"kind": "job", "name": f"{r['job']}@{r['version']}", "state": r["state"],
                          "detail": f"{r['algorithm']} on {r['engine']}", "stop": f"labkit train stop {r['job']}"})
    for r in convert.list_tasks():
        if r["state"] not in train.TERMINAL:
            found.append({"kind": "conversion", "name": f"{r['task']}@{r['version']}", "state": r["state"],
                          "detail": r["options"]["template"], "stop": f"kill {r.get('pid')} (it keeps nothing)"})
    for r in services.list_services():
        if r["state"] in services.LIVE:
            alive = r.get("instances_alive", r["instances"])
            detail = f"{r.get('url', '')} serving {r['model']}"
            if alive < r["instances"]:
                detail += f"; only {alive} of {r['instances']} instances alive"
            found.append({"kind": "service", "name": r["service"], "state": r["state"], "detail": detail,
                          "stop": f"labkit service stop {r['service']}"})
    return found
