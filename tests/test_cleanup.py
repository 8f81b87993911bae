"""Workspace hygiene: delete verbs that refuse what is in use, gc of epoch checkpoints, disk
use, stopping a conversion, starting a stopped service. Real jobs, conversions and services
(MCNN in PyTorch: 128K parameters, so its checkpoints are small)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from helpers import labkit_cli, quiet
from labkit import cleanup, convert, data, packs, registry, train
from labkit.errors import LabkitError
from labkit.serve import services
from labkit.status import disk_use

MCNN = {"image_size": "64", "batch_size": "2", "epoch_size": "3"}


@pytest.fixture
def crowd_job(ws, instructor):
    """This test's workspace holding an MCNN job "mc" on crowd scenes "cr": the instructor's,
    trained once a session, unpacked from its pack."""
    packs.unpack(instructor[1] / "job.tar.gz", log=quiet)
    assert train.show("mc@V001")["state"] == "COMPLETED"
    return ws


@pytest.fixture
def crowd_job_with_epochs(ws):
    """An MCNN job trained here, with every epoch's checkpoint (a pack keeps the best alone)."""
    data.make("crowd", name="cr", count=8, size=64, seed=0)
    data.publish("cr")
    rec = train.create("MCNN", "pytorch", "cr@V001", "mc", MCNN, wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", rec.get("reason")
    return ws


def frozen(pgid: int, until=lambda: True) -> threading.Thread:
    """Stop a process group where it is (SIGSTOP), so that it cannot finish while the test looks
    at it; the thread returned, once started, lets it go on (SIGCONT) when ``until()`` holds."""
    os.killpg(pgid, signal.SIGSTOP)

    def go():
        while not until():
            time.sleep(0.05)
        os.killpg(pgid, signal.SIGCONT)

    return threading.Thread(target=go, daemon=True)


def test_a_delete_refuses_what_is_used_and_frees_what_it_deletes(crowd_job):
    registry.import_model("crowd", from_job="mc", log=quiet)
    with pytest.raises(LabkitError, match=r"(?s)dataset cr@V001 is used by job mc@V001.*delete those first, or add --force"):
        cleanup.delete("dataset", "cr@V001")
    with pytest.raises(LabkitError, match="job mc is used by model crowd@0.0.1"):
        cleanup.delete("job", "mc")

    service = services.deploy("crowd", log=quiet)
    try:  # a running service's model is not deleted, forced or not
        with pytest.raises(LabkitError, match=r"(?s)used by service crowd, which is running.*labkit service stop crowd"):
            cleanup.delete("model", "crowd@0.0.1", force=True)
        assert registry.show("crowd")["state"] == "NORMAL"
    finally:
        services.stop(service["service"])
    with pytest.raises(LabkitError, match="used by service crowd"):  # stopped, it can be started again
        cleanup.delete("model", "crowd")
    gone = cleanup.delete("model", "crowd", force=True, log=quiet)
    assert gone["deleted"] == ["crowd@0.0.1"] and gone["freed_bytes"] > 0
    assert not (crowd_job / "models" / "crowd").exists()
    with pytest.raises(LabkitError, match="no model named 'crowd'"):
        registry.show("crowd")

    job_dir = crowd_job / "jobs" / "mc" / "V001"
    before = disk_use()
    cli = json.loads(labkit_cli("train", "delete", "mc@V001", "--json", env={"LABKIT_HOME": str(crowd_job)}).stdout)
    assert cli["deleted"] == ["mc@V001"] and not job_dir.exists() and not job_dir.parent.exists()
    after = disk_use()
    assert before["areas"]["jobs"] - after["areas"]["jobs"] == cli["freed_bytes"] > 0
    assert after["areas"]["datasets"] == before["areas"]["datasets"]

    freed = cleanup.delete("dataset", "cr@V001", log=quiet)  # nothing names it now
    assert freed["freed_bytes"] > 0  # its density maps; its images are links to the dataset's
    assert data.show("cr")["versions"] == [] and data.show("cr")["count"] == 8
    assert not [p for p in (crowd_job / "datasets" / "cr" / "versions").iterdir() if p.name.startswith(".staging")]


def test_disk_use_counts_a_hard_linked_image_once(ws):
    data.make("flowers", name="fl", count=20, size=32)
    images = sum(p.stat().st_size for p in (ws / "datasets" / "fl").rglob("*.jpg"))
    made = disk_use()["areas"]["datasets"]
    data.publish("fl")  # the version links the images: only its manifests are new
    grown = disk_use()["areas"]["datasets"] - made
    assert made > images > 0 and 0 < grown < images / 2
    status = json.loads(labkit_cli("status", "--json", env={"LABKIT_HOME": str(ws)}).stdout)
    assert status["running"] == [] and status["disk"]["areas"]["datasets"] == made + grown
    assert "datasets " in labkit_cli("status", env={"LABKIT_HOME": str(ws)}).stdout


def test_gc_keeps_each_jobs_best_and_last_checkpoint(crowd_job_with_epochs):
    crowd_job = crowd_job_with_epochs
    folder = crowd_job / "jobs" / "mc" / "V001" / "output" / "checkpoints"
    epochs = sorted(folder.glob("epoch_*"))
    best = next(folder.glob("best.*")).stat().st_ino
    keep = {epochs[-1].name} | {p.name for p in epochs if p.stat().st_ino == best}
    assert len(epochs) == 3

    dry = cleanup.gc(dry_run=True, log=quiet)
    assert sorted(p.name for p in folder.glob("epoch_*")) == [p.name for p in epochs]  # nothing deleted
    assert {os.path.basename(r["file"]) for r in dry["removed"]} == {p.name for p in epochs} - keep
    done = json.loads(labkit_cli("gc", "--json", env={"LABKIT_HOME": str(crowd_job)}).stdout)
    assert {p.name for p in folder.glob("epoch_*")} == keep and next(folder.glob("best.*")).stat().st_ino == best
    assert done["freed_bytes"] == dry["freed_bytes"] == sum(r["bytes"] for r in dry["removed"])
    assert cleanup.gc(log=quiet)["removed"] == []  # a second gc finds nothing


def test_a_running_job_is_not_deleted(crowd_job):
    rec = train.create("MCNN", "pytorch", "cr@V001", "mc", {**MCNN, "epoch_size": "50"}, log=quiet)
    resume = frozen(rec["pid"])
    try:
        with pytest.raises(LabkitError, match=r"(?s)job mc@V002 is still running.*labkit train stop mc@V002"):
            cleanup.delete("job", "mc")
        with pytest.raises(LabkitError, match=r"(?s)dataset cr is used by job mc@V002, which is running"):
            cleanup.delete("dataset", "cr", force=True)
    finally:
        resume.start()
        train.stop("mc@V002")
    assert train.show("mc@V002")["state"] == "STOPPED"
    assert cleanup.delete("job", "mc", force=True, log=quiet)["deleted"] == ["mc@V001", "mc@V002"]


def test_convert_stop_ends_a_running_conversion_and_keeps_nothing(crowd_job):
    env = {**os.environ, "LABKIT_HOME": str(crowd_job)}
    proc = subprocess.Popen([sys.executable, "-m", "labkit.cli", "convert", "create", "--job", "mc",
                             "--template", "onnx-ort-int8", "--name", "slow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = crowd_job / "conversions" / "slow" / "V001"
    deadline = time.monotonic() + 60
    while not ((run / "run.json").exists() and "pid" in json.loads((run / "run.json").read_text())):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "no pid"
        time.sleep(0.05)
    resume = frozen(json.loads((run / "run.json").read_text())["pid"],
                    until=lambda: json.loads((run / "run.json").read_text())["state"] == "STOPPED")
    assert convert.show("slow")["state"] not in train.TERMINAL
    resume.start()
    stopped = json.loads(labkit_cli("convert", "stop", "slow", "--json", env=env).stdout)
    assert stopped["state"] == "STOPPED" and stopped["reason"] == "stopped by the user"
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "conversion slow@V001: STOPPED" in out
    assert not (run / "model.onnx").exists()
    with pytest.raises(LabkitError, match="STOPPED"):
        convert.model_path("slow")
    assert convert.stop("slow")["state"] == "STOPPED"  # a second stop changes nothing
    assert cleanup.delete("conversion", "slow@V001", log=quiet)["deleted"] == ["slow@V001"]


def test_a_stopped_service_starts_again_at_its_url(crowd_job):
    registry.import_model("crowd", from_job="mc", log=quiet)
    first = services.deploy("crowd", name="counter", log=quiet)
    services.stop("counter")
    with pytest.raises(httpx.TransportError):
        httpx.get(first["url"] + "/health", timeout=2)
    again = json.loads(labkit_cli("service", "start", "counter", "--json", env={"LABKIT_HOME": str(crowd_job)}).stdout)
    try:
        assert again["state"] == "RUNNING" and again["url"] == first["url"] and again["model"] == "crowd@0.0.1"
        assert httpx.get(again["url"] + "/health", timeout=5).status_code == 200
        with pytest.raises(LabkitError, match="already running"):
            services.start("counter")
    finally:
        services.stop("counter")
    assert services.show("counter")["state"] == "STOPPED"
