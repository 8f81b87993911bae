"""Time estimates before a job or a lab starts: the arithmetic on controlled speeds, the jobs
each lab's training stage starts, and a real calibration, measured once per machine."""
import json

import pytest

from labkit import labs
from labkit.errors import LabkitError
from labkit.tasks import COUNTING
from labkit.train import timing
from labkit.train.timing import Speed, epochs_seconds


def test_a_jobs_time_is_its_start_up_and_its_epochs():
    s = Speed(startup=10.0, train_image=0.02, eval_image=0.005, checkpoint=0.5)
    assert epochs_seconds(s, 18, 800, 200) == pytest.approx(10 + 18 * (800 * 0.02 + 200 * 0.005 + 0.5))
    # two processes share the training images; each evaluates every validation image
    assert epochs_seconds(s, 10, 240, 60, device_num=2) == pytest.approx(10 + 10 * (120 * 0.02 + 60 * 0.005 + 0.5))
    assert timing.minutes_text(45) == "about 45 s" and timing.minutes_text(7 * 60 + 10) == "about 7 min"


def test_each_lab_names_the_jobs_its_training_stage_starts():
    crowd = labs.training_jobs(labs.recipe("crowd-mcnn-mindspore"), "workshop")
    assert crowd == [{"algorithm": "MCNN", "engine": "mindspore", "n_train": 240, "n_val": 60,
                      "hyper": {"epoch_size": 8, "batch_size": 2}, "device_num": 2}]
    food = labs.training_jobs(labs.recipe("food-resnet50"), "quick")
    assert [(j["n_train"], j["n_val"], j["hyper"]) for j in food] == [(96, 24, {"learning_rate_strategy": "2:0.001"})]
    # transfer learning: a base job on glyphs, the job on digits, the same job from scratch
    ghost = labs.training_jobs(labs.recipe("ghostnet-transfer-pytorch"), "workshop")
    assert [(j["algorithm"], j["n_train"], j["n_val"]) for j in ghost] == [
        ("GhostNet", 1248, 312), ("GhostNet", 1438, 359), ("GhostNet", 1438, 359)]


def test_max_epochs_cuts_the_estimate_to_the_epochs_that_run(monkeypatch):
    s = Speed(startup=10.0, train_image=0.02, eval_image=0.005, checkpoint=0.5)
    monkeypatch.setattr(timing, "speed", lambda *args, **kw: s)  # the arithmetic, not the calibration
    whole = timing.job_seconds("MCNN", "pytorch", 240, 60, profile="workshop")
    monkeypatch.setenv("LABKIT_MAX_EPOCHS", "1")  # `labkit run LAB --max-epochs 1`
    assert timing.job_seconds("MCNN", "pytorch", 240, 60, profile="workshop") == pytest.approx(epochs_seconds(s, 1, 240, 60))
    assert whole == pytest.approx(epochs_seconds(s, 16, 240, 60))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    return tmp_path / "speed.json"


@pytest.mark.slow
def test_a_calibration_times_the_real_loop_once_per_machine(cache, monkeypatch):
    monkeypatch.setattr(timing, "BUSY_SHARE", 1.0)  # kept whatever else this machine does meanwhile
    said = []
    s = timing.speed("pytorch", "mcnn", COUNTING, 32, 2, log=said.append)
    assert said and "timing mcnn (pytorch, 32 px, batch 2)" in said[0]
    assert s.startup > 0 and s.train_image > 0 and s.eval_image > 0 and s.checkpoint > 0
    assert s.train_image > s.eval_image  # a train step also goes backward and updates the weights
    # each layout PyTorch offers is timed; the figures are the chosen one's
    assert set(s.layouts) == {"nchw", "channels_last"} and s.layouts[s.layout] == [s.train_image, s.eval_image]
    ((machine, shape),) = [json.loads(key) for key in json.loads(cache.read_text())]
    machine = json.loads(machine)   # what the calibration holds for: the shape, the CPU, its cores, the engines
    assert shape == ["pytorch", "mcnn", COUNTING, 32, 2, "all", "fp32", 1] and machine["cpu"] and machine["cores"] >= 1
    assert machine["engines"]["torch"]

    def no_calibration(shape):
        raise AssertionError("measured again")

    monkeypatch.setattr(timing, "_calibrate", no_calibration)
    assert timing.speed("pytorch", "mcnn", COUNTING, 32, 2, log=said.append) == s   # read from the cache
    assert len(said) == 1
    cache.write_text("{ damaged")
    with pytest.raises(AssertionError, match="measured again"):   # a damaged cache is measured again
        timing.speed("pytorch", "mcnn", COUNTING, 32, 2)


@pytest.mark.slow
def test_a_calibration_on_a_busy_cpu_is_used_once_but_not_kept(cache):
    import subprocess
    import sys

    import psutil

    said = []
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(psutil.cpu_count() or 1)]
    try:
        s = timing.speed("pytorch", "mcnn", COUNTING, 32, 2, log=said.append)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert s.train_image > 0 and "this estimate is rough; the next one measures again" in said[-1]
    assert not cache.exists() or json.loads(cache.read_text()) == {}


@pytest.mark.slow
def test_a_data_parallel_job_is_timed_as_it_runs_under_its_launcher(cache, monkeypatch):
    # torchrun starts two processes that exchange gradients; rank 0 reports
    monkeypatch.setattr(timing, "BUSY_SHARE", 1.0)
    s = timing.speed("pytorch", "mcnn", COUNTING, 32, 2, device_num=2, log=lambda _: None)
    assert s.startup > 0 and s.train_image > 0 and s.eval_image > 0
    shapes = [json.loads(key)[1] for key in json.loads(cache.read_text())]
    assert shapes == [["pytorch", "mcnn", COUNTING, 32, 2, "all", "fp32", 2]]


@pytest.mark.slow
def test_a_calibration_that_cannot_run_says_so(cache):
    with pytest.raises(LabkitError, match="timing nosuch in pytorch failed") as err:
        timing.speed("pytorch", "nosuch", COUNTING, 32, 2, log=lambda _: None)
    assert "KeyError" in str(err.value) and "labkit doctor" in err.value.hint
    assert not cache.exists() or json.loads(cache.read_text()) == {}


def test_without_an_estimate_the_job_is_told_why_and_nothing_stops(ws, cache):
    said = timing.expected_time("ResNet50", "pytorch", "no-such-data@V001")
    assert said.startswith("no time estimate: ") and "no-such-data" in said


def test_a_lab_with_real_photos_and_imagenet_weights_names_its_two_jobs():
    """`labkit run LAB --data real --pretrained imagenet`: the published photos (3,670, split 0.8),
    the feature-extraction job with the card's recipe, then the fine-tuning job."""
    jobs = labs.training_jobs(labs.recipe("flowers-resnet50-pytorch"), "workshop",
                              {"DATA": "real", "PRETRAINED": "imagenet"})
    assert [(j["n_train"], j["n_val"]) for j in jobs] == [(2936, 734), (2936, 734)]
    assert jobs[0]["hyper"] == {"pretrained": "imagenet"}
    assert jobs[1]["hyper"] == {"train_layers": "last", "learning_rate_strategy": "2:0.001"}
    assert len(labs.training_jobs(labs.recipe("flowers-resnet50-pytorch"), "workshop", {"DATA": "real"})) == 1


def test_lab_options_reach_the_stages_that_take_them_and_nothing_else():
    stage = {"parameters": {"DATASET_KIND": "flowers", "DATA": "generated"}}
    params = labs.stage_parameters(stage, "quick", {}, declared=("DATASET_KIND", "DATA"), options={"DATA": "real",
                                                                                                   "PRETRAINED": "imagenet"})
    assert params == {"DATASET_KIND": "flowers", "DATA": "real"}   # the run's choice wins; PRETRAINED is not declared
    with pytest.raises(LabkitError, match="DATA takes generated or real"):
        labs.check_options({"DATA": "photos"})
    with pytest.raises(LabkitError, match="no real photos for the crowd data"):
        labs.training_jobs(labs.recipe("crowd-mcnn-mindspore"), "workshop", {"DATA": "real"})


def test_options_a_lab_cannot_take_fail_before_it_runs(tmp_path):
    with pytest.raises(LabkitError, match="MCNN has no published imagenet weights"):
        labs.run("crowd-mcnn-mindspore", "quick", out=tmp_path, options={"PRETRAINED": "imagenet"})
    with pytest.raises(LabkitError, match="starts from its own base job"):
        labs.run("ghostnet-transfer-pytorch", "quick", out=tmp_path, options={"PRETRAINED": "imagenet"})
    with pytest.raises(LabkitError, match="no real photos for the crowd data"):
        labs.run("crowd-mcnn-mindspore", "quick", out=tmp_path, options={"DATA": "real"})
    assert not list(tmp_path.iterdir())   # no run folder
