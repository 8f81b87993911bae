"""How long the test suite takes here, where the time goes and what it covers: `make test-fast`
(the tests not marked slow) and `make test` (everything, nbval on the lessons included), each
timed from start to end with its outcome, its 30 slowest tests (pytest's ``--durations``) and the
line and branch coverage of ``labkit/`` (coverage.py through pytest-cov, in every Python process
the tests start: ``[tool.coverage.run]`` in pyproject.toml). The README quotes them.

    .venv/bin/python bench/bench_tests.py [--only fast|full] [--no-coverage]

Coverage costs time of its own: a run with it is timed as such (``coverage`` in the figure).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import figure, save

ROOT = Path(__file__).resolve().parent.parent
SUITES = {"fast": ["-m", "not slow", "tests"], "full": []}
SLOWEST = 30
# pytest's --durations lines: "12.34s call     tests/test_x.py::test_y[case]"
DURATION = re.compile(r"^(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(\S.*)$")


def slowest(output: str) -> list[dict]:
    """The --durations table of a pytest run's output, slowest first."""
    rows = [DURATION.match(line) for line in output.splitlines()]
    return [{"seconds": float(m[1]), "phase": m[2], "test": m[3]} for m in rows if m]


def coverage_totals(report: Path) -> dict:
    """Line and branch coverage from coverage.py's JSON report."""
    totals = json.loads(report.read_text())["totals"]
    return {"lines": round(100 * totals["covered_lines"] / totals["num_statements"], 2),
            "branches": round(100 * totals["covered_branches"] / max(totals["num_branches"], 1), 2),
            "statements": totals["num_statements"], "branch_count": totals["num_branches"]}


def run(name: str, coverage: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="labkit-bench-tests-") as scratch:
        Path(scratch).chmod(0o1777)   # the room's tests run processes as other users: their data lands here too
        report = Path(scratch) / "coverage.json"
        measure = ["--cov=labkit", "--cov-branch", f"--cov-report=json:{report}"] if coverage else []
        # every process the tests start writes its coverage data beside this run's, wherever its cwd
        env = {**os.environ, "COVERAGE_FILE": str(Path(scratch) / ".coverage")}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--durations={SLOWEST}", *measure, *SUITES[name]],
                              cwd=ROOT, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        covered = coverage_totals(report) if coverage and report.exists() else None
    lines = [ln for ln in done.stdout.strip().splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    summary = lines[-1] if lines else done.stderr[-300:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    print(f"{name}: {summary} ({seconds / 60:.1f} min)" + (f", coverage {covered}" if covered else ""), flush=True)
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)
    return figure(f"tests.{name}", f"the {name} test suite, start to end", seconds, "s", returncode=done.returncode,
                  coverage=covered, slowest=slowest(done.stdout)[:SLOWEST], failures=failures, **counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=tuple(SUITES))
    ap.add_argument("--no-coverage", action="store_true", help="time the suites alone, without coverage.py")
    args = ap.parse_args()
    figures = [run(name, not args.no_coverage) for name in SUITES if args.only in (None, name)]
    save("tests", figures, arguments=vars(args))
    sys.exit(max(f["returncode"] for f in figures))


if __name__ == "__main__":
    main()
