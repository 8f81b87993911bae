"""Seeing and comparing runs: every job's TensorBoard event files (both engines), TensorBoard
itself over the workspace, read back through its own HTTP API, and `labkit train compare`."""
import io
import json
import os
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import labkit_cli, labkit_home, TINY
from labkit import data, i18n, labs, status, train
from labkit.algorithms.reports import TIMES
from labkit.algorithms.summaries import EVENTS, FINAL
from labkit.errors import LabkitError
from labkit.train import board, supervisor



def events(home, ref: str) -> EventAccumulator:
    name, version = ref.split("@")
    found = EventAccumulator(str(home / "jobs" / name / version / "output" / EVENTS), size_guidance={"images": 0})
    found.Reload()
    return found


@pytest.mark.parametrize("ref, columns, final", [
    ("rn@V001", ["loss", "train_acc", "val_acc"], ["accuracy", "top5"]),  # PyTorch
    ("mc@V001", ["loss", "val_mae", "val_rmse"], ["mae", "rmse", "mean_baseline_mae"]),  # MindSpore
])
def test_every_job_writes_its_epochs_hyper_parameters_and_figures_for_tensorboard(jobs, ref, columns, final):
    rows = train.metrics(ref)
    found = events(jobs, ref)
    tags = found.Tags()
    assert set(tags["scalars"]) == {*columns, "lr", *TIMES, *(FINAL + k for k in final)}
    for column in [*columns, "lr", *TIMES]:  # one value per epoch, metrics.csv's
        assert [(s.step, round(s.value, 4)) for s in found.Scalars(column)] == \
            [(r["epoch"], round(r[column], 4)) for r in rows], column
    assert all(r["images_per_second"] > 0 for r in rows)
    best = train.evaluation(ref)
    assert [(s.step, round(s.value, 4)) for s in found.Scalars(FINAL + final[0])] == \
        [(best["best_epoch"], round(best[final[0]], 4))]
    assert sorted(tags["images"]) == ["evaluation", "predictions"]
    for tag in tags["images"]:
        image = Image.open(io.BytesIO(found.Images(tag)[-1].encoded_image_string))
        colours = image.getcolors(1 << 16)  # None: more than that many
        assert image.width > 200 and (colours is None or len(colours) > 10)  # a drawing, not a blank
    # the hyper-parameters, for the HParams dashboard
    hparams = found.summary_metadata["_hparams_/session_start_info"].plugin_data
    assert hparams.plugin_name == "hparams" and b"image_size" in hparams.content
    # the Chinese class names of the PyTorch fixture drew in a CJK font, not as boxes
    assert "missing from font" not in (jobs / "jobs" / ref.replace("@", "/") / "train.log").read_text()


def test_a_job_draws_its_figures_in_the_lessons_language():
    i18n.use("zh-CN")
    try:
        assert supervisor.child_env()[i18n.LANGUAGE_ENV] == "zh-CN"
    finally:
        i18n.use("en")
    said = subprocess.run([sys.executable, "-c", "from labkit import i18n; print(i18n.language())"], text=True,
                          capture_output=True, env={**os.environ, i18n.LANGUAGE_ENV: "zh-CN"}, check=True)
    assert said.stdout.strip() == "zh-CN"


@pytest.fixture(scope="module")
def rates_home(tmp_path_factory):
    """A workspace with two versions of job "lr" that differ in one hyper-parameter, the
    learning-rate strategy (trained once for this file's tests)."""
    home = tmp_path_factory.mktemp("rates") / "workspace"
    with labkit_home(home):
        data.make("flowers", name="fl", count=25, size=32, seed=0)
        dataset = "fl@" + data.publish("fl")["version"]
        for strategy in ("2:0.01", "2:0.05"):
            rec = train.create("ResNet50", "pytorch", dataset, "lr", {**TINY, "learning_rate_strategy": strategy},
                               wait=True, log=lambda *_: None)
            assert rec["state"] == "COMPLETED", rec.get("reason")
    return home


@pytest.fixture
def rates(rates_home, monkeypatch):
    """That workspace, as this test's: its dataset version."""
    monkeypatch.setenv("LABKIT_HOME", str(rates_home))
    return "fl@V001"


def test_compare_names_exactly_the_hyper_parameter_that_differs(rates_home, rates, tmp_path):
    env = {"LABKIT_HOME": str(rates_home)}
    found = json.loads(labkit_cli("train", "compare", "lr@*", "--json", env=env).stdout)
    assert found["differ"] == {"learning_rate_strategy": ["2:0.01", "2:0.05"]}
    assert found["same"]["batch_size"] == 8 and found["same"]["dataset"] == rates
    first, second = found["jobs"]
    assert (first["job"], second["job"]) == ("lr@V001", "lr@V002")
    for job in found["jobs"]:
        rows = train.metrics(job["job"])
        assert job["epochs"] == 2 and job["best"] == max(r["val_acc"] for r in rows) and job["final"] == rows[-1]["val_acc"]
        assert job["images_per_second"] > 0 and job["evaluation"]["accuracy"] == job["best"]
    shown = labkit_cli("train", "compare", "lr@V001", "lr", "--plot", tmp_path / "curves.png", env=env).stdout
    header = shown.splitlines()[0].split()
    assert header[:2] == ["JOB", "LEARNING_RATE_STRATEGY"] and "BEST" in header and "IMAGES_PER_SECOND" in header
    assert "lr@V002  2:0.05" in shown and "the same in all: " in shown
    with Image.open(tmp_path / "curves.png") as figure:
        assert figure.width > 600
    # what cannot be compared says why, without a traceback
    for refs, message in ((["lr@V001"], "a comparison needs two or more"), (["nope-*", "lr"], "no training job matches"),
                          (["lr@V009", "lr"], "has no version V009"),
                          (["lr@*", "--plot", tmp_path / "no" / "such.png"], "cannot write the figure"),
                          (["lr@*", "--plot", tmp_path / "curves.xyz"], "cannot write the figure")):
        bad = labkit_cli("train", "compare", *refs, env=env, check=False)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr


def test_refs_expand_globs_of_names_and_versions_in_the_order_asked(rates_home, rates):
    assert train.jobs.JOBS.refs(["lr"]) == ["lr@V002"]
    assert train.jobs.JOBS.refs(["lr@V002", "l?@*", "lr"]) == ["lr@V002", "lr@V001"]
    with pytest.raises(LabkitError, match="no training job matches 'x\\*'"):
        train.jobs.JOBS.refs(["x*"])


def runs(url: str, expected: set) -> list:
    """TensorBoard's runs once it has found ``expected`` (it scans the folder every few seconds)."""
    for _ in range(60):
        found = httpx.get(url + "data/runs").json()
        if set(found) == expected:
            return found
        time.sleep(0.5)
    return found


def test_tensorboard_shows_every_job_and_stops_like_a_service(rates_home, rates):
    env = {"LABKIT_HOME": str(rates_home)}
    record = json.loads(labkit_cli("tensorboard", "--json", env=env).stdout)
    try:
        assert record["state"] == "RUNNING" and record["url"].startswith("http://127.0.0.1:")
        assert sorted(runs(record["url"], {"lr@V001", "lr@V002"})) == ["lr@V001", "lr@V002"]
        scalars = httpx.get(record["url"] + "data/plugin/scalars/scalars", params={"run": "lr@V002", "tag": "val_acc"})
        assert [(step, round(value, 4)) for _, step, value in scalars.json()] == \
            [(r["epoch"], round(r["val_acc"], 4)) for r in train.metrics("lr@V002")]
        shown = status.running()
        assert [(r["kind"], r["stop"]) for r in shown] == [("tensorboard", "labkit tensorboard stop")]
        # a job created later shows up by itself
        train.create("ResNet50", "pytorch", rates, "late", {**TINY, "learning_rate_strategy": "1:0.01"}, wait=True,
                     log=lambda *_: None)
        assert sorted(runs(record["url"], {"lr@V001", "lr@V002", "late@V001"})) == ["late@V001", "lr@V001", "lr@V002"]
        # asked for other jobs, it starts again over those
        again = train.tensorboard(["l*@V001"], log=lambda *_: None)
        assert again["jobs"] == ["late@V001", "lr@V001"] and not psutil.pid_exists(record["pid"])
        assert sorted(runs(again["url"], {"late@V001", "lr@V001"})) == ["late@V001", "lr@V001"]
        tree = [psutil.Process(again["pid"]), *psutil.Process(again["pid"]).children(recursive=True)]
        assert any("tensorboard_data_server" in " ".join(p.cmdline()) for p in tree)  # its own data server
    finally:
        stopped = labkit_cli("tensorboard", "stop", env=env).stdout
    assert "STOPPED" in stopped and status.running() == []
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert "was not running" in labkit_cli("tensorboard", "stop", env=env).stdout
    bad = labkit_cli("tensorboard", "nope", env=env, check=False)
    assert bad.returncode == 1 and "no training job named 'nope'" in bad.stderr


def test_a_lab_stops_the_tensorboard_it_started(rates_home, rates):
    before = train.tensorboard(log=lambda *_: None)["timestamps"]["STARTING"]
    assert labs._stop_services_since(before, log=lambda *_: None) == [board.NAME]
    assert board.running() is None and status.running() == []
