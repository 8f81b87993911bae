"""How long the test suite takes here: `make test-fast` (the tests not marked slow) and
`make test` (everything, nbval on the lessons included), each timed from start to end with
its outcome. The README quotes both.

    .venv/bin/python bench/bench_tests.py [--only fast|full]
"""
import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from results import figure, save

ROOT = Path(__file__).resolve().parent.parent
SUITES = {"fast": ["-m", "not slow", "tests"], "full": []}


def run(name: str) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *SUITES[name]], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    print(f"{name}: {summary} ({seconds / 60:.1f} min)", flush=True)
    return figure(f"tests.{name}", f"the {name} test suite, start to end", seconds, "s", returncode=done.returncode,
                  **counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=tuple(SUITES))
    args = ap.parse_args()
    figures = [run(name) for name in SUITES if args.only in (None, name)]
    save("tests", figures, arguments=vars(args))
    sys.exit(max(f["returncode"] for f in figures))


if __name__ == "__main__":
    main()
