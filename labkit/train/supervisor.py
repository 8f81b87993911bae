"""The process that owns one training run: ``python -m labkit.train.supervisor RUN_DIR``.

``labkit train create`` starts it in a new session (so ``stop`` can end the whole process
tree) and returns. It marks the run RUNNING, starts the algorithm with its log redirected
to ``train.log``, waits, and records how it ended (COMPLETED, FAILED or STOPPED), its peak
memory and CPU time. If the supervisor itself dies, the next look at the job notices
(``jobs.refresh``) and marks it FAILED.
"""
from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
from pathlib import Path

from labkit import i18n, records, workspace
from labkit.algorithms import PROGRESS
from labkit.errors import LabkitError


def child_env() -> dict:
    """The algorithm's environment: ours, with this workspace's path (never a record's)."""
    env = dict(os.environ)
    env["LABKIT_HOME"] = str(workspace.home())
    # msrun and torchrun start `python` from PATH: make it this interpreter, venv or not
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env[i18n.LANGUAGE_ENV] = i18n.language()  # the lesson's, for the job's TensorBoard figures
    return env


def failure_reason(run: Path, code: int) -> str:
    """Why a run failed, in a line: the last meaningful log line and the exit code."""
    try:
        lines = [ln.strip() for ln in (run / "train.log").read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        lines = []
    last = next((ln for ln in reversed(lines) if not ln.startswith(PROGRESS)), "")
    signal = f" (killed by signal {-code})" if code < 0 else ""
    return f"exit code {code}{signal}: {last[:300]}" if last else f"exit code {code}{signal}"


def main(run_dir: str) -> int:
    from labkit.train import jobs

    run = Path(run_dir)
    record = records.read(run)
    with open(run / "train.log", "a", encoding="utf-8") as log:
        try:
            argv = jobs.command(run, record, resume=jobs.last_checkpoint(run) if record.get("resumed_from") else None)
        except LabkitError as exc:
            records.finish(run, "FAILED", reason=f"could not start the algorithm: {exc.message}")
            return 1
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        try:
            child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=run, env=child_env())
        except OSError as exc:
            records.finish(run, "FAILED", reason=f"could not start the algorithm: {exc}")
            return 1
        records.update(run, state="RUNNING", child_pid=child.pid)
        code = child.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = {"exit_code": code, "peak_memory_mb": round(usage.ru_maxrss / 1024, 1),
             "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1)}
    output = run / "output"
    digests = [json.loads(p.read_text()) for p in sorted(output.glob("rank*.json"))]
    if digests:
        # the ranks of this machine (a job over several machines has the others' on theirs)
        stats["ranks"] = {"world": digests[0]["world"], "here": [d["rank"] for d in digests],
                          "identical_weights": len({d["weights_sha256"] for d in digests}) == 1}
    if records.read(run).get("stop_reason"):
        records.finish(run, "STOPPED", **stats)
    elif code == 0:
        # eval.json is the built-in scripts' final evaluation; a custom algorithm may not write one.
        metrics = json.loads((output / "eval.json").read_text()) if (output / "eval.json").exists() else {}
        records.finish(run, "COMPLETED", metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))}, **stats)
    else:
        records.finish(run, "FAILED", reason=failure_reason(run, code), **stats)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
