"""Following a job as it trains. The training script writes progress events into its log
(``LABKIT-PROGRESS {json}`` lines); here they become what a person reads: one line per epoch,
or a tqdm bar with the time left on a terminal. ``labkit train logs --json`` keeps them raw."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

from labkit.algorithms import PROGRESS
from labkit.records import TERMINAL
from labkit.train import jobs

METRICS = ("loss", "train_acc", "val_acc", "val_mae", "val_rmse")  # in the order a line shows them


def tail(ref: str, follow: bool = True, since: int = 0, poll: float = 0.5) -> Iterator[str]:
    """The job's log from byte ``since`` on (a resumed job appends to the log of its first run),
    in pieces of whole lines as they are written, until the job ends; at once without ``follow``."""
    offset = since
    while True:
        done = jobs.show(ref)["state"] in TERMINAL  # before reading: the last lines are not lost
        text = jobs.logs(ref, offset)
        if not done:  # whole lines only: a line still being written comes in the next piece
            text = text[: text.rfind("\n") + 1]
        offset += len(text.encode())
        yield text
        if done or not follow:
            return
        time.sleep(poll)


def events(ref: str, poll: float = 0.5, since: int = 0) -> Iterator[dict]:
    """The job's progress events from byte ``since`` of its log on, as they come, until it ends."""
    for text in tail(ref, since=since, poll=poll):
        yield from jobs.parse_events(text)


def describe(event: dict) -> str | None:
    """One readable line for an event; None for those a person need not see (the script
    prints what pre-trained weights it loaded itself; ``first_step`` is for bench/)."""
    kind = event.get("event")
    if kind == "start":
        if event.get("rank", 0):
            return None  # every process starts; one line says it
        world = f", {event['world']} processes" if event.get("world", 1) > 1 else ""
        return (f"training epochs {event['start_epoch'] + 1} to {event['epochs']}: {event['train']} training and "
                f"{event['val']} validation images{world}")
    if kind == "epoch":
        shown = "  ".join(f"{k} {event[k]:.4g}" for k in METRICS if k in event)
        pace = f", {event['images_per_second']:.0f} images/s" if event.get("images_per_second") else ""
        return f"epoch {event['epoch']}/{event['epochs']}  {shown}  lr {event['lr']:.3g}  ({event['seconds']:.1f} s{pace})"
    if kind == "done":
        return "done: " + ", ".join(f"{k} {v:.4g}" for k, v in event.items() if k != "event")
    return None


def readable(text: str) -> str:
    """A piece of the log with its event lines rendered by ``describe`` (other lines as they are)."""
    lines = []
    for line in text.splitlines(keepends=True):
        if PROGRESS not in line:
            lines.append(line)
            continue
        before, _, _ = line.partition(PROGRESS)
        if before.strip():  # another process's output, cut by an event: keep it
            lines.append(before.rstrip() + "\n")
        lines += [f"{shown}\n" for shown in map(describe, jobs.parse_events(line)) if shown]
    return "".join(lines)


def watch(ref: str, out=None, bar: bool | None = None, on_epoch=None, poll: float = 0.5, since: int = 0) -> None:
    """Show a job's progress until it ends: a tqdm bar over its epochs (loss, the validation
    metric, time left) -- by default on a terminal only -- else one plain line per event, so that
    a file stays readable. ``on_epoch(event)`` runs after each epoch (a notebook redraws its plot)."""
    from tqdm.auto import tqdm

    out = out or sys.stderr
    bar = out.isatty() if bar is None else bar
    epochs = None  # the tqdm bar, once the job says how many epochs it runs
    for event in events(ref, poll, since):
        if event["event"] == "epoch" and on_epoch:
            on_epoch(event)
        if not bar:
            shown = describe(event)
            if shown:
                print(shown, file=out, flush=True)
        elif event["event"] == "start" and epochs is None:
            epochs = tqdm(total=event["epochs"], initial=event["start_epoch"], desc=ref, unit="epoch", file=out)
        elif event["event"] == "epoch" and epochs is not None:
            epochs.update(1)
            epochs.set_postfix({k: round(event[k], 3) for k in METRICS if k in event})
    if epochs is not None:
        epochs.close()


def watch_new_jobs(since: str, done: threading.Event, out=None, poll: float = 1.0) -> None:
    """Show the progress of each training job created after ``since`` (a workspace timestamp),
    one after the other as they come, until ``done`` is set: what ``labkit run`` shows while a
    notebook trains (the notebook's own output goes to the executed copy, not the terminal)."""
    followed = set()
    while not done.is_set():
        for record in jobs.list_jobs():
            ref = f"{record['job']}@{record['version']}"
            if record["timestamps"]["CREATING"] >= since and ref not in followed:
                followed.add(ref)
                watch(ref, out=out, poll=poll)
        done.wait(poll)
