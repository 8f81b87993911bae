"""The room's page: a JupyterHub service (the recipe registers it as ``labkit-room``) that shows
``labkit room status`` to the hub's admins, through the hub at ``/services/labkit-room/``, and
refreshes itself. English or Chinese: ``?lang=zh-CN``, else the browser's language.

JupyterHub's OAuth lets in only users granted ``access:services!service=labkit-room``: admins
have it, learners do not (403). The service runs as the hub's user (root), which
``learners.room`` needs to read each workspace as its owner.
"""
from __future__ import annotations

import html
import json
import os
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import ioloop, web

from labkit.i18n import LANGUAGES, word
from labkit.room import learners
from labkit.workspace import size_text

REFRESH_S = 20
HOMES_ENV = "LABKIT_ROOM_HOMES"   # the layout of the room's workspaces, when not the recipe's


def homes() -> str:
    return os.environ.get(HOMES_ENV) or learners.HOMES


class Reading:
    """The room as read at most ``REFRESH_S`` ago: every open page asks each ``REFRESH_S``, and one
    reading (a child per learner, waited for in the service's one thread) serves them all."""

    def __init__(self, clock=time.monotonic):
        self.clock, self.read_at, self.found = clock, None, []

    def __call__(self) -> list[dict]:
        if self.read_at is None or self.clock() - self.read_at >= REFRESH_S:
            self.found, self.read_at = learners.room(homes()), self.clock()
        return self.found


room = Reading()


class Room(HubOAuthenticated, web.RequestHandler):
    def language(self) -> str:
        asked = self.get_argument("lang", None)
        if asked in LANGUAGES:
            return asked
        return "zh-CN" if self.request.headers.get("Accept-Language", "").lower().startswith("zh") else "en"

    @web.authenticated
    def get(self):
        self.write(render(room(), self.language(), datetime.now(timezone.utc)))


class RoomJson(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(room(), ensure_ascii=False))


def _ago(stamp: str | None, now: datetime, language: str) -> str:
    if not stamp:
        return ""
    minutes = max(0, int((now - datetime.fromisoformat(stamp)).total_seconds() // 60))
    return word("minutes ago", language, minutes=minutes)


def render(found: list[dict], language: str, now: datetime) -> str:
    """The page: one row per learner."""
    w = lambda key, **fields: html.escape(word(key, language, **fields))  # noqa: E731
    head = "".join(f"<th>{w(k)}</th>" for k in ("learner", "lesson", "stage", "jobs", "conversions", "services",
                                                   "disk", "last error", "last change"))
    rows = []
    for e in found:
        if "error" in e:
            rows.append(f"<tr><td>{html.escape(e['learner'])}</td><td colspan=8 class=error>{html.escape(e['error'])}</td></tr>")
            continue
        stage = w(f"stage {e['stage']}") if e["stage"] else w("not started")
        cells = [html.escape(e["learner"]), html.escape(e["lesson"] or ""), stage,
                 "<br>".join(html.escape(learners.job_text(j)) for j in e["jobs"]),
                 "<br>".join(html.escape(f"{c['task']} {c['state']}") for c in e["conversions"]),
                 "<br>".join(html.escape(f"{s['service']} {s['state']}") for s in e["services"]),
                 size_text(e["disk_bytes"]), f"<span class=error>{html.escape(e['last_error'] or '')}</span>",
                 _ago(e["last_change"], now, language)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    running = sum(len(e.get("running", [])) for e in found)
    disk = size_text(sum(e.get("disk_bytes", 0) for e in found))
    summary = w("room summary", learners=len(found), running=running, disk=disk, time=now.strftime("%H:%M:%S UTC"))
    return f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_S}">
<title>{w("room")}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}} .error{{color:#b00}}
td:nth-child(3),td:nth-child(7),td:nth-child(9){{white-space:nowrap}}</style>
</head><body><h1>{w("room")}</h1><p>{summary}</p>
<table><tr>{head}</tr>
{"".join(rows)}
</table><p><code>{w("give pack")}</code></p></body></html>
"""


def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]   # /services/labkit-room/, given by the hub
    where = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = web.Application([(prefix, Room), (prefix + "json", RoomJson),
                           (prefix + "oauth_callback", HubOAuthCallbackHandler)],
                          cookie_secret=os.urandom(32))
    app.listen(where.port, where.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
