"""`labkit run`: real papermill runs of the stage notebooks, into runs/LAB/<timestamp>/."""
import json
import os
import shutil

import nbformat
import pytest

from helpers import labkit_cli
from labkit import lessons as lesson_files
from labkit.labs import recipes, stage_parameters

@pytest.fixture(scope="module")
def lessons(tmp_path_factory):
    """The lessons in a folder named as a learner names theirs (a clone in their home, beside the
    workspaces and runs folders of the suite): every lab here runs from it (``run_lab`` checks),
    so every test that runs a lab uses this fixture, and is `slow` by it (tests/conftest.py)."""
    folder = tmp_path_factory.mktemp("课程 lessons") / "笔记 notebooks"
    shutil.copytree(lesson_files.NOTEBOOKS, folder)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LABKIT_NOTEBOOKS", str(folder))
        yield folder


@pytest.mark.slow   # the estimates time each lab's training on this machine
def test_five_labs_are_listed():
    assert set(recipes()) == {"flowers-resnet50-mindspore", "flowers-resnet50-pytorch", "crowd-mcnn-mindspore",
                              "ghostnet-transfer-pytorch", "food-resnet50"}
    out = labkit_cli("labs", "list").stdout   # the quick profile: the tests' LABKIT_PROFILE
    assert "QUICK HERE" in out.splitlines()[0]
    assert all(" about " in line for line in out.splitlines()[1:]) and "crowd-mcnn-mindspore" in out
    out = labkit_cli("labs", "list", "--no-estimate").stdout
    assert "HERE" not in out and "crowd-mcnn-mindspore" in out


def test_later_stages_take_what_earlier_stages_of_the_run_made():
    stage = {"parameters": {"TEMPLATES": ["onnx-ort-fp32"]}, "profiles": {"full": {"JOB": "chosen@V002"}}}
    made = {"job": "made@V001", "model": "m@0.0.1"}
    assert stage_parameters(stage, "quick", made, declared=("JOB", "TEMPLATES"))["JOB"] == "made@V001"
    assert stage_parameters(stage, "full", made, declared=("JOB",))["JOB"] == "chosen@V002"   # the recipe wins
    assert "MODEL" not in stage_parameters(stage, "quick", made, declared=("JOB",))   # not a parameter there
    assert "JOB" not in stage_parameters(stage, "quick", {}, declared=("JOB",))   # nothing made yet


def run_lab(lab, ws, out, language="en", *more):
    proc = labkit_cli("run", lab, "--profile", "quick", "--lang", language, "--out", out, "--json", *more,
                      env={"LABKIT_HOME": str(ws)})
    printed = json.loads(proc.stdout)
    (run_dir,) = (out / lab).iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert (printed["lab"], printed["status"], printed["stages"]) == (record["lab"], record["status"], record["stages"])
    # progress, piped: plain lines per stage and per epoch of the lab's job, no bars, no kernel noise
    assert "stage 2/5: 02_subscribe_and_train.ipynb done in" in proc.stderr and "\r" not in proc.stderr
    assert "epoch 1/" in proc.stderr and "without encryption" not in proc.stderr
    assert "quick profile: about " in proc.stderr and record["estimate_seconds"] > 0   # said before it started
    executed = nbformat.read(run_dir / "01_data_prep.ipynb", as_version=4)   # from the learner's folder of lessons
    assert executed.metadata.papermill.input_path.startswith(os.environ["LABKIT_NOTEBOOKS"])
    return run_dir, record


def test_a_lab_runs_headless_and_records_what_it_made(tmp_path, lessons):
    # a MindSpore lab in the Chinese lessons, for the learners who name their folders in Chinese
    run_dir, record = run_lab("crowd-mcnn-mindspore", tmp_path / "ws", tmp_path / "runs", "zh-CN")
    assert record["status"] == "COMPLETED" and record["profile"] == "quick"
    assert record["versions"]["labkit"] and record["stages"][0]["seconds"] > 0
    assert record["cpu"]["model"] and "features" in record["cpu"]  # results depend on the CPU: it is on record
    assert record["results"]["dataset"] == "crowd-quick@V001"
    assert [s["notebook"] for s in record["stages"]] == ["01_data_prep.ipynb", "02_subscribe_and_train.ipynb",
                                                          "03_convert_model.ipynb", "04_import_model.ipynb",
                                                          "05_deploy_service.ipynb"]
    results = record["results"]
    assert results["job"] == "mcnn-mindspore-quick@V001" and "mae" in results["job_metrics"]
    assert {c["state"] for c in results["conversions"].values()} == {"COMPLETED"}
    assert results["model"] == "crowd-mcnn@0.0.1" and results["model_state"] == "NORMAL"
    assert results["service"] == "crowd-mcnn" and results["service_metrics"]["mae"] >= 0
    executed = nbformat.read(run_dir / "01_data_prep.ipynb", as_version=4)
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the samples with density maps, the count histogram
    executed = nbformat.read(run_dir / "02_subscribe_and_train.ipynb", as_version=4)
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the learning curves, predicted against true counts
    executed = nbformat.read(run_dir / "05_deploy_service.ipynb", as_version=4)
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the density map over the image, the pipeline timings, predicted against true counts
    assert (run_dir / "01_data_prep.html").stat().st_size > 10_000
    status = labkit_cli("status", env={"LABKIT_HOME": str(tmp_path / "ws")}).stdout
    assert "nothing is running" in status


def printed(run_dir, notebook):
    """What the code cells of an executed notebook printed (stdout and stderr)."""
    executed = nbformat.read(run_dir / notebook, as_version=4)
    return "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)


def test_the_food_lab_in_chinese_carries_chinese_labels_through_every_stage(tmp_path, lessons):
    """The food lab runs whole once, in the Chinese lessons (the English twins hold the same code:
    tests/test_i18n.py)."""
    zh_dir, record = run_lab("food-resnet50", tmp_path / "ws", tmp_path / "runs", language="zh-CN")
    assert record["language"] == "zh-CN" and record["results"]["job"] == "resnet50-pytorch-quick@V001"
    assert record["results"]["dataset_checksum"] and record["results"]["job_metrics"]
    # the Chinese lessons ran, and seed 004's Chinese class names went through every stage
    lesson = nbformat.read(zh_dir / "02_subscribe_and_train.ipynb", as_version=4)
    assert lesson.cells[0].source.startswith("# 实验阶段 2")
    deploy = printed(zh_dir, "05_deploy_service.ipynb")
    assert "epoch checkpoint(s) of" in deploy   # the food lab ends with labkit gc
    assert '"predicted_label": "美食/' in deploy   # curl's answer, printed as UTF-8
    assert "missing from font" not in deploy + printed(zh_dir, "01_data_prep.ipynb")
    result = json.loads(next((tmp_path / "ws" / "results").glob("*/result.json")).read_text(encoding="utf-8"))
    assert result["labels"] == ["美食/凉皮", "美食/柿子饼", "美食/灌汤包", "美食/肉夹馍"]


def test_a_failing_stage_names_the_cell(tmp_path, lessons):
    # The crowd generator cannot make 1-pixel images: the notebook fails in a known cell.
    lab = recipes()["food-resnet50"]
    lab["name"] = "broken"
    lab["stages"][0]["parameters"]["IMAGE_SIZE"] = 1
    path = lessons / "labs" / "broken.yaml"
    import yaml

    path.write_text(yaml.safe_dump(lab))
    try:
        proc = labkit_cli("run", "broken", "--profile", "quick", "--out", tmp_path / "runs",
                          env={"LABKIT_HOME": str(tmp_path / "ws")}, check=False)
    finally:
        path.unlink()
    assert proc.returncode == 1
    assert "failed in 01_data_prep.ipynb, cell" in proc.stderr and "--size must be between" in proc.stderr
    (run_dir,) = (tmp_path / "runs" / "broken").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "FAILED" and record["stages"][0]["status"] == "FAILED"


def broken_lab(tmp_path, lessons, name, stages):
    """Write a temporary recipe and run it; returns (process, run.json)."""
    import yaml

    path = lessons / "labs" / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "title": "a broken lab", "stages": stages}))
    try:
        proc = labkit_cli("run", name, "--profile", "quick", "--out", tmp_path / "runs",
                          env={"LABKIT_HOME": str(tmp_path / "ws")}, check=False)
    finally:
        path.unlink()
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return proc, json.loads((run_dir / "run.json").read_text())


def test_a_lab_failing_after_deploying_still_stops_its_service(tmp_path, lessons):
    proc, record = broken_lab(tmp_path, lessons, "broken-deploy", [
        {"notebook": "05_deploy_service.ipynb", "parameters": {"SERVICE_NAME": "left-behind",
                                                              "PIPELINE": "/no/such/pipeline.json"}}])
    assert proc.returncode == 1 and "05_deploy_service.ipynb" in proc.stderr and "pipeline" in proc.stderr
    assert record["status"] == "FAILED" and record["stopped_services"] == ["left-behind"]
    assert "nothing is running" in labkit_cli("status", env={"LABKIT_HOME": str(tmp_path / "ws")}).stdout


# flowers-resnet50-pytorch runs whole in test_a_lab_from_imagenet_weights_serves_the_fine_tuned_job
@pytest.mark.parametrize("lab", ["flowers-resnet50-mindspore", "ghostnet-transfer-pytorch"])
def test_every_other_lab_runs_in_the_quick_profile(tmp_path, lessons, lab):
    # the transfer lab's three jobs also show --max-epochs reaching every job the notebooks start
    cut = ("--max-epochs", "1") if lab == "ghostnet-transfer-pytorch" else ()
    run_dir, record = run_lab(lab, tmp_path / "ws", tmp_path / "runs", "en", *cut)
    assert record["status"] == "COMPLETED" and len(record["stages"]) == 5
    assert record["results"]["model_state"] == "NORMAL" and record["stopped_services"] == []
    if lab == "ghostnet-transfer-pytorch":
        assert set(record["results"]["transfer"]["accuracy"]) == {"transfer", "from scratch"}
        # the lab converts its transfer job, not the from-scratch comparison trained after it
        assert record["stages"][2]["parameters"]["JOB"] == record["results"]["job"] == "ghostnet-pytorch-quick@V001"
        conversion = json.loads((tmp_path / "ws" / "conversions" / "ghostnet-digits-fp32" / "V001" / "run.json").read_text())
        assert conversion["job"] == "ghostnet-pytorch-quick@V001"
        jobs = sorted((tmp_path / "ws" / "jobs").glob("*/V001/run.json"))
        assert len(jobs) == 3 and record["max_epochs"] == 1
        for job in jobs:  # the quick profile's 2 epochs, cut to 1
            assert json.loads(job.read_text())["hyper"]["max_epochs"] == 1
            assert (job.parent / "output" / "metrics.csv").read_text().count("\n") == 2  # a header and one epoch
    if lab == "flowers-resnet50-mindspore":
        assert (tmp_path / "ws" / "jobs" / "resnet50-mindspore-quick" / "V001" / "mindir" / "model.mindir").exists()


def test_a_lab_from_imagenet_weights_serves_the_fine_tuned_job(tmp_path, lessons, monkeypatch):
    """`--pretrained imagenet`: the feature-extraction job starts from the weights in this machine's
    cache (here a ResNet-50 of random weights, put where a download leaves them), the fine-tuning
    job from it, and the later stages convert, import and serve the fine-tuned job."""
    import numpy as np

    from labkit.algorithms import pretrained
    from labkit.algorithms.pytorch.models import build

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))   # this test's and its lab's
    weights = pretrained.converted_path("resnet50")
    weights.parent.mkdir(parents=True)
    np.savez(weights, **{k: v.numpy() for k, v in build("resnet50", 1000, {}).state_dict().items()})
    run_dir, record = run_lab("flowers-resnet50-pytorch", tmp_path / "ws", tmp_path / "runs", "en",
                              "--pretrained", "imagenet")
    assert record["status"] == "COMPLETED" and record["options"] == {"PRETRAINED": "imagenet"}
    assert record["stages"][1]["parameters"]["PRETRAINED"] == "imagenet"
    assert record["results"]["job"] == "resnet_v1_50-pytorch-quick-tuned@V001"
    assert record["results"]["model_state"] == "NORMAL" and record["stopped_services"] == []
    features = json.loads((tmp_path / "ws" / "jobs" / "resnet_v1_50-pytorch-quick" / "V001" / "run.json").read_text())
    assert features["hyper"]["train_layers"] == "head" and features["hyper"]["pretrained_weight"] == str(weights)
    log = (tmp_path / "ws" / "jobs" / "resnet_v1_50-pytorch-quick" / "V001" / "train.log").read_text()
    assert "skipped 2: fc.bias, fc.weight" in log
    tuned = json.loads((tmp_path / "ws" / "jobs" / "resnet_v1_50-pytorch-quick-tuned" / "V001" / "run.json").read_text())
    assert tuned["hyper"]["train_layers"] == "last" and tuned["hyper"]["pretrained_weight"].endswith("best.pth")


def test_a_lab_on_real_photos_without_the_internet_says_what_to_do(tmp_path, lessons):
    proc = labkit_cli("run", "flowers-resnet50-pytorch", "--profile", "quick", "--data", "real", "--out", tmp_path / "runs",
                      env={"LABKIT_HOME": str(tmp_path / "ws"), "LABKIT_CACHE": str(tmp_path / "cache"),
                           "LABKIT_MIRROR": "http://127.0.0.1:9"}, check=False)
    assert proc.returncode == 1 and "failed in 01_data_prep.ipynb" in proc.stderr
    assert "could not download http://127.0.0.1:9/flower_photos.tgz" in proc.stderr
    assert "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c" in proc.stderr and "Traceback" not in proc.stderr
    (run_dir,) = (tmp_path / "runs" / "flowers-resnet50-pytorch").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "FAILED" and record["options"] == {"DATA": "real"}
    assert not (tmp_path / "ws" / "datasets" / "flowers-photos").exists()
