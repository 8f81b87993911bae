import contextlib
import os
import subprocess
import sys
import tempfile

import pytest

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
    fixtures train."""
    for item in items:
        if item.path.suffix == ".ipynb" or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_tests_start_no_process(request, monkeypatch):
    """A test outside `slow` starts no job, conversion, service or TensorBoard (they all start
    through ``records.spawn``): one that does fails, saying so, and the mark cannot drift."""
    if request.node.get_closest_marker("slow"):
        return
    from labkit import records

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


@contextlib.contextmanager
def labkit_home(home):
    """``LABKIT_HOME`` set to ``home`` while a fixture wider than a test (which monkeypatch cannot
    serve) makes its workspace."""
    old = os.environ["LABKIT_HOME"]
    os.environ["LABKIT_HOME"] = str(home)
    try:
        yield home
    finally:
        os.environ["LABKIT_HOME"] = old


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A fresh, empty workspace for one test."""
    home = tmp_path / "workspace"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    return home


def val_images(home, dataset, n=6):
    """The bytes of the first ``n`` validation images of ``dataset``@V001 in workspace ``home``."""
    import json

    version = home / "datasets" / dataset / "versions" / "V001"
    rows = [json.loads(line) for line in (version / "val.jsonl").read_text().splitlines()][:n]
    return [(version / r["source"]).read_bytes() for r in rows]


def labkit_cli(*args, env=None, check=True):
    """Run the real `labkit` command in a child process; return the CompletedProcess."""
    proc = subprocess.run([sys.executable, "-m", "labkit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"labkit {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


# Chinese class names, "category/name" as in seed 004's 美食/凉皮: the shared models carry them
# through import, training, conversion, the registry and the service.
COLOURS = {"颜色/红": (200, 40, 40), "颜色/绿": (40, 170, 60), "颜色/蓝": (40, 60, 200), "颜色/黄": (220, 210, 50),
           "颜色/紫": (150, 50, 190)}


def colour_manifest(folder, per_class=40, size=32, seed=0):
    """A ModelArts manifest (``folder/colours.manifest``, images beside it) of classes that differ
    by colour (with pixel noise and brightness jitter): easy data, on which a briefly trained
    ResNet-50 becomes confident. Its conversions then agree with it by construction, on any CPU,
    and pass the parity gate with evidence."""
    import json

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    lines = []
    for k, (name, rgb) in enumerate(COLOURS.items()):
        for i in range(per_class):
            pixels = np.asarray(rgb) * rng.uniform(0.8, 1.2) + rng.normal(0, 12, (size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / "images" / f"{k}_{i:03d}.png")
            lines.append(json.dumps({"source": f"images/{k}_{i:03d}.png",
                                     "annotation": [{"name": name, "type": "modelarts/image_classification"}]},
                                    ensure_ascii=False))
    (folder / "colours.manifest").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "colours.manifest"


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


def members(path) -> dict:
    """Every plain file of a .tar.gz, name -> bytes, in order."""
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def write_archive(path, files, manifest: dict | None = None, links=(), specials=()):
    """A .tar.gz of ``files`` (name -> bytes, or (name, bytes) pairs where a name may come twice)
    after ``manifest.json``, plus symlink members ((name, target) pairs) and other members
    ((name, tarfile type) pairs: a hard link names the first file)."""
    import io
    import json
    import tarfile

    pairs = list(files.items()) if isinstance(files, dict) else list(files)
    with tarfile.open(path, "w:gz") as tar:
        first = [("manifest.json", json.dumps(manifest, ensure_ascii=False).encode())] if manifest else []
        for name, payload in first + pairs:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for name, target in [*links, *specials]:
            info = tarfile.TarInfo(name)
            if (name, target) in links:
                info.type, info.linkname = tarfile.SYMTYPE, target
            else:
                info.type, info.linkname = target, pairs[0][0] if target == tarfile.LNKTYPE else ""
            tar.addfile(info)
    return path


def resign(manifest: dict, files: dict) -> dict:
    """The manifest with every file's size and sha256 made to match ``files`` again, as an attacker
    who rewrites a pack would: only what is inside the records can give a tampered pack away."""
    import hashlib

    for i, part in enumerate(manifest.get("parts", [])):
        prefix = f"parts/{i}/"
        part["files"] = {name[len(prefix):]: {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
                         for name, payload in files.items() if name.startswith(prefix)}
    return manifest


def listing(root) -> dict:
    """Every file under ``root`` (but locks) with its sha256: a workspace before and after."""
    import hashlib
    from pathlib import Path

    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "link"
            for p in sorted(root.rglob("*")) if (p.is_file() or p.is_symlink()) and p.name != ".lock"}


class FileServer:
    """A real HTTP server on 127.0.0.1 (a thread of the test) publishing ``files`` (name -> bytes)
    under ``/NAME``, as a download site or a room's mirror does: it honours ``Range`` (unless
    ``ranges`` is off, like ``python -m http.server``), can drop the connection after
    ``drop_after`` bytes of a response, and logs each request's path and Range header."""

    def __init__(self):
        import http.server
        import threading

        self.files, self.requests, self.ranges, self.drop_after = {}, [], True, None
        self.answers = []  # statuses to answer first, one per request (503: busy; 206: a range not asked for)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                if server.answers:
                    status = server.answers.pop(0)
                    self.send_response(status)
                    if status == 206:
                        self.send_header("Content-Range", f"bytes 7-{len(body) - 1}/{len(body)}")
                        self.send_header("Content-Length", str(len(body) - 7))
                        self.end_headers()
                        self.wfile.write(body[7:])
                    else:
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    return
                wanted = self.headers.get("Range")
                if wanted and server.ranges:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.drop_after is not None:  # once: the connection breaks mid-file, as Wi-Fi does
                    cut, server.drop_after = server.drop_after, None
                    self.wfile.write(body[start:start + cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


def remote_for(server: FileServer, name: str, payload: bytes, **kw):
    """A ``downloads.Remote`` of ``payload`` published by ``server`` as ``name``."""
    import hashlib

    from labkit.downloads import Remote

    server.files[name] = payload
    return Remote(url=f"{server.url}/{name}", sha256=kw.pop("sha256", hashlib.sha256(payload).hexdigest()),
                  size=kw.pop("size", len(payload)), licence=kw.pop("licence", "test"), source="the test's server")
