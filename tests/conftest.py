import os
import tempfile

import pytest

from helpers import FileServer, colour_manifest, labkit_home

# MindSpore's generated protobuf modules need the pure-Python protobuf, and choose it only when
# mindspore is imported before anything else uses protobuf (onnx, tritonclient): this test
# process imports them all, in collection order.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")


# This session's temporary directories. A labkit process working in one of them is this
# session's; another pytest session on the machine (a CI run in the background) has its own.
SESSION_DIRS: list[str] = []


# Every temporary folder of the suite (workspaces, runs, imports, packs, mirrors) lies under a
# folder named as learners name theirs: Chinese characters, spaces and other letters. A path that
# an engine or a tool refuses then fails the tests that use it (tests/test_engine_paths.py checks
# the name holds).
LEARNER_FOLDER = f"学员 张三 Zoë Ünal-{os.getuid()}"


def learner_temp_root() -> str:
    root = os.path.join(tempfile.gettempdir(), LEARNER_FOLDER)
    os.makedirs(root, mode=0o700, exist_ok=True)
    return root


def pytest_configure(config):
    # pytest's tmp_path folders under the learner's folder (its documented setting for their root)
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", learner_temp_root())
    # Notebooks (nbval) and subprocesses inherit these: the quick profile, a throwaway workspace.
    os.environ["LABKIT_PROFILE"] = "quick"
    os.environ["LABKIT_HOME"] = tempfile.mkdtemp(prefix="labkit-test-ws-", dir=learner_temp_root())
    SESSION_DIRS.append(os.environ["LABKIT_HOME"])
    # time calibrations (labkit.train.timing) of this session: measured by this code, not read from a user's cache
    os.environ["LABKIT_CACHE"] = os.path.join(os.environ["LABKIT_HOME"], ".cache")


# Fixtures that train, convert and pack for real, or run labs: a test that uses one (directly or through
# another fixture) is slow whatever its file says, so the mark cannot drift.
SLOW_FIXTURES = {"trained_home", "instructor", "rates_home", "crowd_job_with_epochs", "lessons"}


def pytest_collection_modifyitems(items):
    """Mark `slow` what `make test-fast` leaves out: the lessons (nbval) and every test whose
    fixtures train or run labs."""
    for item in items:
        if item.path.suffix == ".ipynb" or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_tests_start_no_process(request, monkeypatch):
    """A test outside `slow` starts no job, conversion, service or TensorBoard (they all start
    through ``records.spawn``): one that does fails, saying so, and the mark cannot drift."""
    if request.node.get_closest_marker("slow"):
        return
    from labkit import records   # not at the top: labkit is imported after pytest_configure sets its environment

    def refused(run, argv, *_):
        pytest.fail(f"a test outside `slow` started {argv[2]}: mark it slow, or use a slow fixture")
    monkeypatch.setattr(records, "spawn", refused)


@pytest.fixture(scope="session", autouse=True)
def session_temporary_directory(tmp_path_factory):
    SESSION_DIRS.append(str(tmp_path_factory.getbasetemp()))


LABKIT_PROCESSES = ("labkit.serve.server", "labkit.train.supervisor", "labkit.convert.worker", "labkit/algorithms/",
                    "labkit.train.board", "tensorboard_data_server")


def leftover_processes() -> list:
    """labkit's processes (services, jobs, conversions) that this session's tests started, still
    running: those whose workspace is in one of the session's temporary directories."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if not any(mark in cmd for mark in LABKIT_PROCESSES) or proc.pid == os.getpid():
            continue
        try:
            home = proc.environ().get("LABKIT_HOME", "")
        except psutil.Error:
            continue
        if any(home == d or home.startswith(d + os.sep) for d in SESSION_DIRS):
            found.append(proc)
    return found


def pytest_sessionfinish(session, exitstatus):
    """The suite leaves nothing running (a labkit process still alive here fails the run), and
    no workspace behind: a run makes gigabytes of checkpoints, and a machine that runs the suite
    again and again would fill its disk (pytest removes its own tmp_path directories as well:
    tmp_path_retention_policy in pyproject.toml)."""
    import shutil

    left = leftover_processes()
    if left:
        for proc in left:
            print(f"\nleft running after the tests: pid {proc.pid}: {' '.join(proc.info['cmdline'])[:200]}")
            proc.kill()
        session.exitstatus = 1
    shutil.rmtree(os.environ["LABKIT_HOME"], ignore_errors=True)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A fresh, empty workspace for one test."""
    home = tmp_path / "workspace"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory):
    """A workspace with a PyTorch ResNet-50 job trained channels-last ("rn", 5 colour classes with Chinese names at 32 px,
    imported from a manifest, 100 validation images: enough for the parity gate to pass a model) and a
    MindSpore MCNN job ("mc", 64 px),
    trained briefly on tiny data; the conversion, registry and service tests share it (use the
    ``jobs`` fixture)."""
    from labkit import data, train

    home = tmp_path_factory.mktemp("trained") / "workspace"
    with labkit_home(home):
        data.import_dataset(colour_manifest(tmp_path_factory.mktemp("colours") / "colours"), "fl")
        flowers = "fl@" + data.publish("fl", train_ratio=0.5)["version"]
        data.make("crowd", name="cr", count=12, size=64, seed=0)
        crowd = "cr@" + data.publish("cr")["version"]
        # channels-last: the conversions, the registry and the services below get such a job's model
        # (FP32 on every CPU: auto would be bf16 where native, and the fixture the same everywhere)
        pt = train.create("ResNet50", "pytorch", flowers, "rn",
                          {"image_size": "32", "batch_size": "8", "learning_rate_strategy": "3:0.01",
                           "layout": "channels_last", "precision": "fp32"}, wait=True, log=lambda *_: None)
        ms = train.create("MCNN", "mindspore", crowd, "mc", {"image_size": "64", "batch_size": "2", "epoch_size": "1"},
                          wait=True, log=lambda *_: None)
        assert pt["state"] == ms["state"] == "COMPLETED", (pt.get("reason"), ms.get("reason"))
        assert (pt["hyper"]["layout"], pt["hyper"]["precision"], ms["hyper"]["layout"]) == ("channels_last", "fp32", "nchw")
        assert train.evaluation("rn")["accuracy"] == 1.0, "the colour classes are easy: the fixture's model must learn them"
    return home


@pytest.fixture
def jobs(trained_home, monkeypatch):
    """The shared trained workspace, as this test's workspace."""
    monkeypatch.setenv("LABKIT_HOME", str(trained_home))
    return trained_home


@pytest.fixture(scope="session")
def models(trained_home):
    """Imported models: the float ResNet from its job, and an INT8 one taking uint8 pixels."""
    from labkit import convert, registry

    with labkit_home(trained_home):
        rec = convert.create("rn", "onnx-ort-int8", "rn-serve-int8", preprocess="auto", calibration_images=16,
                             log=lambda *_: None)
        assert rec["state"] == "COMPLETED", rec.get("reason")
        registry.import_model("flowers", from_job="rn", log=lambda *_: None)
        registry.import_model("flowers", from_conversion="rn-serve-int8", log=lambda *_: None)
        registry.import_model("crowd", from_job="mc", log=lambda *_: None)
    return trained_home


# --- packs: an instructor's workspace, and archives taken apart and put together again ----------

@pytest.fixture(scope="session")
def instructor(tmp_path_factory):
    """The instructor's workspace and its packs (``out``): ``job.tar.gz`` (a PyTorch MCNN job on
    crowd scenes, with its dataset version), ``conversion.tar.gz`` (its FP32 conversion, with the
    job and the dataset version), ``model.tar.gz`` (the model imported from the job) and
    ``flowers.tar.gz`` (a classification dataset version alone)."""
    from labkit import convert, data, packs, registry, train

    home = tmp_path_factory.mktemp("instructor") / "workspace"
    out = home.parent / "packs"
    with labkit_home(home):
        data.make("crowd", name="cr", count=8, size=64, seed=0)
        data.publish("cr")
        job = train.create("MCNN", "pytorch", "cr@V001", "mc", {"image_size": "64", "batch_size": "2", "epoch_size": "2",
                                                                "precision": "fp32"}, wait=True, log=lambda *_: None)
        assert job["state"] == "COMPLETED", job.get("reason")
        registry.import_model("crowd", from_job="mc", log=lambda *_: None)
        conversion = convert.create("mc", "onnx-ort-fp32", "mc-fp32", log=lambda *_: None)
        assert conversion["state"] == "COMPLETED", conversion.get("reason")
        data.make("flowers", name="fl", count=10, size=32, seed=0)
        data.publish("fl")
        packs.pack("mc", out / "job.tar.gz", log=lambda *_: None)
        packs.pack("crowd@0.0.1", out / "model.tar.gz", log=lambda *_: None)
        packs.pack("mc-fp32", out / "conversion.tar.gz", log=lambda *_: None)
        packs.pack("fl@V001", out / "flowers.tar.gz", log=lambda *_: None)
    return home, out


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()
