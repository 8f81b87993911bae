"""A room on one server, timed: the real JupyterHub test (tests/test_room.py) runs the quick
food lab for one learner alone, then for three learners at once, each pinned to one core, and
this keeps the times. docs/HUB.md quotes them (`make docs`). Needs root, as the test does.

    .venv/bin/python bench/bench_hub.py
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from results import figure, save

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_room.py::test_a_room_of_three_learners_on_a_real_jupyterhub"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        times = Path(folder) / "times.json"
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", TEST], cwd=ROOT,
                              env={**os.environ, "LABKIT_HUB_TIMES": str(times)})
        if done.returncode or not times.exists():
            sys.exit(f"the hub test did not pass (exit {done.returncode}): nothing measured")
        seconds = json.loads(times.read_text())
    figures = [figure("hub.alone", "the quick food lab, one learner alone on one core", seconds.pop("alone"), "s")]
    figures += [figure(f"hub.{key}", f"the quick food lab, {key.split('.')[1]}, three learners at once on two cores",
                       value, "s", learner=key.split(".")[1]) for key, value in seconds.items()]
    save("hub", figures, profile="quick", arguments={"lab": "food-resnet50", "learners": 3, "cores_per_learner": 1})


if __name__ == "__main__":
    main()
