"""Training jobs for real: subprocesses, both engines, tiny sizes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from helpers import labkit_cli, quiet, TINY
from labkit import catalog, data, records, train
from labkit.algorithms.reports import TIMES
from labkit.errors import LabkitError
from labkit.train import jobs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def flowers(ws):
    data.make("flowers", name="fl", count=25, size=32, seed=0)
    return "fl@" + data.publish("fl")["version"]


@pytest.fixture
def crowd(ws):
    data.make("crowd", name="cr", count=12, size=64, seed=0)
    return "cr@" + data.publish("cr")["version"]


@pytest.mark.slow
def test_pytorch_job_runs_to_completion_and_leaves_everything(flowers):
    rec = train.create("ResNet50", "pytorch", flowers, "job", {**TINY, "learning_rate_strategy": "1:0.01,2:0.001"},
                       wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", train.logs("job")
    assert list(rec["timestamps"]) == ["CREATING", "RUNNING", "COMPLETED"]
    assert rec["peak_memory_mb"] > 50 and rec["cpu_seconds"] > 0
    out = train.output_dir("job")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pth", "epoch_001.pth", "epoch_002.pth"]
    rows = train.metrics("job")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["lr"] == 0.001
    report = json.loads((out / "eval.json").read_text())
    assert report["samples"] == 5 and len(report["confusion"]) == 5 and 0 <= report["accuracy"] <= 1
    assert rec["metrics"]["accuracy"] == report["accuracy"]
    info = json.loads((out / "model.json").read_text())
    assert info["labels"] == ["daisy", "dandelion", "roses", "sunflowers", "tulips"] and info["image_size"] == 32
    assert catalog.is_subscribed("ResNet50", "pytorch")
    again = train.create("ResNet50", "pytorch", flowers, "job", {**TINY, "learning_rate_strategy": "1:0.01"},
                         wait=True, log=quiet)
    assert again["version"] == "V002" and train.show("job@V001")["versions"] == ["V001", "V002"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["mindspore", "pytorch"])
def test_mcnn_counting_job_reports_mae_against_the_mean(crowd, engine):
    rec = train.create("MCNN", engine, crowd, f"mcnn-{engine}",
                       {"image_size": "64", "batch_size": "2", "epoch_size": "2", "lr": "0.0001"}, wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", train.logs(f"mcnn-{engine}")
    report = json.loads((train.output_dir(f"mcnn-{engine}") / "eval.json").read_text())
    assert {"mae", "rmse", "mean_baseline_mae"} <= set(report) and len(report["predicted"]) == report["samples"]
    assert {"val_mae", "val_rmse"} <= set(train.metrics(f"mcnn-{engine}")[0])


@pytest.mark.slow
def test_mindspore_classification_job(flowers):
    rec = train.create("ResNet50", "mindspore", flowers, "ms", {**TINY, "learning_rate_strategy": "1:0.01"},
                       wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", train.logs("ms")
    assert (train.output_dir("ms") / "checkpoints" / "best.ckpt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["pytorch", "mindspore"])
def test_the_same_job_twice_gives_the_same_data_and_the_same_numbers(ws, engine):
    """Determinism on one machine: seeded data, split, shuffling, augmentation and fixed threads."""
    made = []
    for name in ("a", "b"):
        data.make("flowers", name=name, count=25, size=32, seed=3)
        made.append(data.publish(name, seed=3))
    assert made[0]["checksum"] == made[1]["checksum"]
    assert (data.version_dir("a@V001") / "val.jsonl").read_text() == (data.version_dir("b@V001") / "val.jsonl").read_text()
    runs = []
    for name in ("once", "twice"):
        rec = train.create("ResNet50", engine, "a@V001", name, {**TINY, "learning_rate_strategy": "1:0.02,2:0.005"},
                           wait=True, log=quiet)
        assert rec["state"] == "COMPLETED", train.logs(name)
        runs.append([{k: v for k, v in row.items() if k not in TIMES} for row in train.metrics(name)])
    assert len(runs[0]) == 2 and runs[0] == runs[1]
    assert train.evaluation("once")["confusion"] == train.evaluation("twice")["confusion"]


@pytest.mark.parametrize("hp,message", [
    ({"no_such": "1"}, "has no hyper-parameter no_such"),
    ({"batch_size": "eight"}, "must be int"),
    ({"batch_size": "0"}, "out of range"),
    ({"learning_rate_strategy": "fast"}, "is not EPOCHS:LR"),
    ({"pretrained_weight": "nowhere.pth"}, "neither a job nor a checkpoint"),
])
def test_bad_hyper_parameters_fail_before_anything_starts(flowers, ws, hp, message):
    with pytest.raises(LabkitError, match=message):
        train.create("ResNet50", "pytorch", flowers, "bad", hp, log=quiet)
    assert not (ws / "jobs" / "bad").exists() or not list((ws / "jobs" / "bad").glob("V*"))


@pytest.mark.slow
def test_max_epochs_ends_a_job_early_with_the_rates_of_the_whole_schedule(flowers, monkeypatch):
    monkeypatch.setenv("LABKIT_MAX_EPOCHS", "1")  # as `labkit run LAB --max-epochs 1` sets it for the kernels
    rec = train.create("ResNet50", "pytorch", flowers, "cut", {**TINY, "learning_rate_strategy": "1:0.01,3:0.001"},
                       wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", train.logs("cut")
    assert rec["hyper"]["max_epochs"] == 1
    assert [(r["epoch"], r["lr"]) for r in train.metrics("cut")] == [(1, 0.01)]
    assert (train.output_dir("cut") / "eval.json").exists()
    from labkit import plots

    for ax in plots.learning_curves(train.metrics("cut")).axes:  # whole epochs: no 0.96 / 1.04 ticks
        lo, hi = ax.get_xlim()
        assert [t for t in ax.get_xticks() if lo <= t <= hi] == [1]
    from labkit.algorithms.schedules import Schedule

    whole = Schedule({"epoch_size": 8, "lr": 1e-3})
    cut = Schedule({"epoch_size": 8, "lr": 1e-3, "max_epochs": 2})
    assert (whole.stop, cut.stop, cut.epochs) == (8, 2, 8) and cut(1.5) == whole(1.5)
    monkeypatch.setenv("LABKIT_MAX_EPOCHS", "0")
    with pytest.raises(LabkitError, match="LABKIT_MAX_EPOCHS='0' is not a number of epochs"):
        train.create("ResNet50", "pytorch", flowers, "cut", TINY, log=quiet)


def test_missing_device_and_wrong_task_are_clear_errors(flowers, crowd):
    with pytest.raises(LabkitError, match="no NVIDIA GPU|CPU build"):
        train.create("ResNet50", "pytorch", flowers, "g", TINY, device="gpu", log=quiet)
    with pytest.raises(LabkitError, match="no Ascend NPU"):
        train.create("ResNet50", "mindspore", flowers, "a", TINY, device="ascend", log=quiet)
    with pytest.raises(LabkitError, match="is for crowd_counting"):
        train.create("MCNN", "pytorch", flowers, "t", {}, log=quiet)
    with pytest.raises(LabkitError, match="does not run on"):
        catalog.subscribe("ResNet50", "tensorflow")


def wait_for_epoch(job, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if train.metrics(job):
            return
        assert train.show(job)["state"] in ("CREATING", "RUNNING"), train.logs(job)
        time.sleep(0.3)
    raise AssertionError(f"{job} never finished an epoch")


def tree(pid):
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


@pytest.mark.slow
def test_stop_ends_the_process_tree(flowers):
    train.create("ResNet50", "pytorch", flowers, "long", {**TINY, "learning_rate_strategy": "200:0.01"}, log=quiet)
    wait_for_epoch("long")
    procs = tree(train.show("long")["pid"])
    assert len(procs) >= 2  # the supervisor and the training script
    stopped = train.stop("long")
    assert stopped["state"] == "STOPPED"
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert train.show("long")["state"] == "STOPPED"


@pytest.mark.slow
def test_a_job_being_stopped_is_stopped_whoever_sees_it_end_first(flowers):
    """`train stop` in one terminal, `train create --wait` in another: the waiter may look after
    the tree died but before stop wrote STOPPED. It must not call the job FAILED."""
    train.create("ResNet50", "pytorch", flowers, "race", {**TINY, "learning_rate_strategy": "200:0.01"}, log=quiet)
    wait_for_epoch("race")
    run = train.show("race")
    records.update(jobs._run_dir("race"), stop_reason=records.STOPPED_BY_USER)  # what stop writes first
    os.killpg(run["pid"], signal.SIGKILL)  # then the tree ends, before anyone writes a state
    psutil.Process(run["pid"]).wait(timeout=10)
    seen = train.show("race")  # the waiter's look
    assert (seen["state"], seen["reason"]) == ("STOPPED", "stopped by the user")
    assert train.stop("race")["state"] == "STOPPED"


@pytest.mark.slow
def test_a_killed_job_is_failed_at_the_next_look_and_resumes(flowers):
    train.create("ResNet50", "pytorch", flowers, "victim", {**TINY, "learning_rate_strategy": "3:0.01"}, log=quiet)
    wait_for_epoch("victim")
    for p in tree(train.show("victim")["pid"]):
        p.send_signal(signal.SIGKILL)
    time.sleep(0.5)
    failed = train.show("victim")
    assert failed["state"] == "FAILED" and "died" in failed["reason"]
    done_epochs = len(train.metrics("victim"))
    resumed = train.resume("victim", wait=True, log=quiet)
    assert resumed["state"] == "COMPLETED", train.logs("victim")
    assert "resumed from" in train.logs("victim")
    epochs = [int(r["epoch"]) for r in train.metrics("victim")]
    assert epochs == [1, 2, 3] and done_epochs >= 1
    with pytest.raises(LabkitError, match="only a FAILED or STOPPED"):
        train.resume("victim", log=quiet)


@pytest.mark.slow
def test_a_job_whose_supervisor_was_killed_leaves_nothing_running(flowers):
    train.create("ResNet50", "pytorch", flowers, "orphan", {**TINY, "learning_rate_strategy": "200:0.01"}, log=quiet)
    wait_for_epoch("orphan")
    supervisor, *script = tree(train.show("orphan")["pid"])
    assert script  # the training script, the supervisor's child
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait(5)
    assert train.show("orphan")["state"] == "FAILED"  # the next look ends the script it had started
    psutil.wait_procs(script, timeout=5)
    assert not [p for p in script if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.slow
def test_transfer_learning_loads_the_backbone_and_reinitialises_the_head(ws, flowers):
    first = train.create("GhostNet", "pytorch", flowers, "base", {**TINY, "epochs": "1", "warmup_epochs": "0"},
                         wait=True, log=quiet)
    assert first["state"] == "COMPLETED", train.logs("base")
    data.make("digits", name="dg", count=40, size=32)
    digits = "dg@" + data.publish("dg")["version"]
    second = train.create("GhostNet", "pytorch", digits, "transfer",
                          {**TINY, "epochs": "1", "warmup_epochs": "0", "pretrained_weight": "base", "num_classes": "10"},
                          wait=True, log=quiet)
    assert second["state"] == "COMPLETED", train.logs("transfer")
    assert second["hyper"]["pretrained_weight"].endswith("base/V001/output/checkpoints/best.pth")
    log = train.logs("transfer")
    assert "skipped 2: classifier.bias, classifier.weight" in log


@pytest.mark.slow   # a real job of a custom algorithm
def test_custom_algorithm_follows_the_convention(ws, flowers):
    catalog.create_custom("mean-color", ROOT / "data" / "custom_algorithm", "train.py", "pytorch", ["thumb:int:4"])
    assert catalog.card("mean-color").custom
    rec = train.create("mean-color", "pytorch", flowers, "mine", {"thumb": "6"}, wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", train.logs("mine")
    assert "--thumb=6" in rec["command"] and not any(a.startswith("--device") for a in rec["command"])
    assert (train.output_dir("mine") / "class_means.npy").exists() and "accuracy" in rec["metrics"]
    with pytest.raises(LabkitError, match="already exists"):
        catalog.create_custom("mean-color", ROOT / "data" / "custom_algorithm", "train.py", "pytorch")
    with pytest.raises(LabkitError, match="NAME:TYPE:DEFAULT"):
        catalog.create_custom("x", ROOT / "data" / "custom_algorithm", "train.py", "pytorch", ["lr=0.1"])


@pytest.mark.slow   # a real job, failing
def test_failing_algorithm_is_failed_with_the_reason(ws, flowers, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "boom.py").write_text("import sys\nprint('loading data...')\nsys.exit('error: out of cheese')\n")
    with pytest.raises(LabkitError, match="contains the workspace"):
        catalog.create_custom("boom", tmp_path, "code/boom.py", "pytorch")
    catalog.create_custom("boom", tmp_path / "code", "boom.py", "pytorch")
    rec = train.create("boom", "pytorch", flowers, "boom", wait=True, log=quiet)
    assert rec["state"] == "FAILED" and "out of cheese" in rec["reason"] and rec["exit_code"] == 1
    with pytest.raises(LabkitError, match="is FAILED: exit code 1: error: out of cheese") as e:
        train.evaluation("boom")
    assert "labkit train logs boom" in e.value.hint


@pytest.mark.slow
def test_train_cli(ws, flowers):
    env = {"LABKIT_HOME": str(ws)}
    out = labkit_cli("train", "create", "--algorithm", "ResNet50", "--engine", "pytorch", "--dataset", flowers,
                     "--name", "cli", "--hp", "image_size=32", "batch_size=8", "learning_rate_strategy=1:0.01",
                     "--wait", env=env)
    assert "job cli@V001: COMPLETED" in out.stdout
    assert "epoch 1/1  loss " in out.stderr and "done: " in out.stderr  # not a terminal: plain progress lines
    assert "cli@V001" in labkit_cli("train", "list", env=env).stdout
    assert "epoch   1:" in labkit_cli("train", "show", "cli", env=env).stdout
    log = labkit_cli("train", "logs", "cli", "--follow", env=env).stdout
    assert "epoch 1/1  loss " in log and "LABKIT-PROGRESS" not in log
    raw = [json.loads(line) for line in labkit_cli("train", "logs", "cli", "--json", env=env).stdout.splitlines()]
    assert [e["event"] for e in raw if e["event"] != "first_step"] == ["start", "epoch", "done"]
    stopped = json.loads(labkit_cli("train", "stop", "cli", "--json", env=env).stdout)  # a finished job stays as it is
    assert (stopped["job"], stopped["version"], stopped["state"]) == ("cli", "V001", "COMPLETED")
    bad = labkit_cli("train", "create", "--algorithm", "ResNet50", "--engine", "pytorch", "--dataset", flowers,
                     "--name", "x", "--hp", "batch_size", env=env, check=False)
    assert bad.returncode == 1 and "KEY=VALUE" in bad.stderr
    assert "ResNet50" in labkit_cli("algo", "list", env=env).stdout
    assert "learning_rate_strategy" in labkit_cli("algo", "show", "ResNet50", env=env).stdout


def test_ranks_get_disjoint_equal_shards():
    from labkit.algorithms.inputs import shard

    a, b = shard(11, 0, 2), shard(11, 1, 2)
    assert len(a) == len(b) == 5 and not set(a) & set(b)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["pytorch", "mindspore"])
def test_data_parallel_job_ends_with_identical_weights_on_every_rank(flowers, engine, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(os.sys.executable).parent) + os.pathsep + os.environ["PATH"])  # msrun
    rec = train.create("ResNet50", engine, flowers, f"ddp-{engine}", {**TINY, "learning_rate_strategy": "1:0.01"},
                       device_num=2, wait=True, log=quiet)
    assert rec["state"] == "COMPLETED", train.logs(f"ddp-{engine}")
    assert rec["device_num"] == 2 and rec["ranks"] == {"world": 2, "here": [0, 1], "identical_weights": True}


def on_two_machines(tmp_path, monkeypatch, engine, start, master_addr, port) -> None:
    """Two "machines": two workspaces, each running its part of one job (the same name and
    dataset, node ranks 0 and 1, machine 0's address) as a labkit job of its own; ``start(node,
    argv)`` runs ``labkit train create ...argv`` on that machine. Both must end with the same weights."""
    for node in (0, 1):
        home = tmp_path / f"machine{node}"
        labkit_cli("data", "make", "flowers", "--name", "fl", "--count", 25, "--size", 32, env={"LABKIT_HOME": str(home)})
        labkit_cli("data", "publish", "fl", env={"LABKIT_HOME": str(home)})  # on shared storage, on real machines
        start(node, ["train", "create", "--algorithm", "ResNet50", "--engine", engine, "--dataset", "fl@V001",
                     "--name", "two", "--hp", "image_size=32", "batch_size=8", "learning_rate_strategy=1:0.01",
                     "--nnodes", "2", "--node-rank", str(node), "--master-addr", master_addr, "--master-port", str(port)])
    done = []
    for node in (0, 1):
        monkeypatch.setenv("LABKIT_HOME", str(tmp_path / f"machine{node}"))
        done.append(train.wait("two"))
        assert done[-1]["state"] == "COMPLETED", train.logs("two")[-3000:]
        assert done[-1]["world"] == {"size": 2, "nnodes": 2, "node_rank": node, "master_addr": master_addr,
                                     "master_port": port}
        assert done[-1]["ranks"]["world"] == 2 and len(done[-1]["ranks"]["here"]) == 1
    digests = [json.loads(next(Path(r["train_url"]).glob("rank*.json")).read_text()) for r in done]
    assert {d["rank"] for d in digests} == {0, 1}
    assert digests[0]["weights_sha256"] == digests[1]["weights_sha256"]   # the same weights on both machines
    assert done[0]["metrics"] == done[1]["metrics"]                         # each machine has its own report


@pytest.mark.slow
def test_two_pytorch_machines_of_one_process_each_end_with_the_same_weights(tmp_path, monkeypatch):
    """torchrun's rendezvous works between two processes of one host: both "machines" on 127.0.0.1."""
    from labkit.train.jobs import _free_port

    def start(node, argv):
        labkit_cli(*argv, env={"LABKIT_HOME": str(tmp_path / f"machine{node}")})

    on_two_machines(tmp_path, monkeypatch, "pytorch", start, "127.0.0.1", _free_port())
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "machine0"))
    with pytest.raises(LabkitError, match="--node-rank must be 0 to 1"):
        train.create("ResNet50", "pytorch", "fl@V001", "bad", nnodes=2, node_rank=2, master_addr="127.0.0.1", log=quiet)
    with pytest.raises(LabkitError, match="--master-addr"):
        train.create("ResNet50", "pytorch", "fl@V001", "bad", nnodes=2, node_rank=1, log=quiet)


HOSTS = ("10.213.0.1", "10.213.0.2")   # inside the test's own network namespaces only


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair: two "machines" on this host, each with an
    address of its own. msrun needs them: it starts its scheduler on every machine that holds the
    master's address, so two msrun nodes on one address collide."""
    tag = f"lk{os.getpid() % 100000}"
    names = [f"{tag}a", f"{tag}b"]

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    try:
        for name in names:
            ip("netns", "add", name)
        ip("link", "add", names[0], "netns", names[0], "type", "veth", "peer", "name", names[1], "netns", names[1])
        for name, host in zip(names, HOSTS):
            ip("-n", name, "addr", "add", f"{host}/24", "dev", name)
            ip("-n", name, "link", "set", name, "up")
            ip("-n", name, "link", "set", "lo", "up")
    except (OSError, subprocess.CalledProcessError) as exc:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        pytest.skip(f"no network namespaces here ({getattr(exc, 'stderr', '') or exc}): needs root and iproute2")
    yield names
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.mark.slow
def test_two_mindspore_machines_of_one_process_each_end_with_the_same_weights(tmp_path, two_hosts, monkeypatch):
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]  # msrun

    def start(node, argv):   # `labkit train create` on that machine: its network, and a host name of its own
        here = ["ip", "netns", "exec", two_hosts[node], "unshare", "--uts", "sh", "-c",
                f'hostname machine{node} && exec "$@"', "-"]   # MindSpore groups ranks into machines by host name
        proc = subprocess.run([*here, sys.executable, "-m", "labkit.cli", *argv],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PATH": path, "LABKIT_HOME": str(tmp_path / f"machine{node}")})
        assert proc.returncode == 0, proc.stderr

    on_two_machines(tmp_path, monkeypatch, "mindspore", start, HOSTS[0], 8118)


def test_progress_survives_ranks_writing_on_one_line(monkeypatch, tmp_path):
    # seen in CI: two msrun ranks' first_step events on one line of the shared log
    (tmp_path / "train.log").write_text(
        'LABKIT-PROGRESS {"event": "first_step", "t": 1}LABKIT-PROGRESS {"event": "first_step", "t": 2}\n'
        'LABKIT-PROGRESS {"event": "ep\nLABKIT-PROGRESS {"event": "epoch", "epoch": 1}\nLABKIT-PROGRESS {"ev')
    from labkit.train import jobs
    monkeypatch.setattr(jobs, "_run_dir", lambda ref: tmp_path)
    events, offset = jobs.progress("job")
    assert [e["event"] for e in events] == ["first_step", "first_step", "epoch"]
    assert offset == len((tmp_path / "train.log").read_bytes()) - len('LABKIT-PROGRESS {"ev')


def test_the_log_reads_as_lines_a_person_follows():
    from labkit.train.follow import readable

    log = ('resumed from best.pth after epoch 2\n'
           'LABKIT-PROGRESS {"event": "start", "epochs": 4, "start_epoch": 2, "rank": 0, "world": 2, "train": 40, "val": 10}'
           'LABKIT-PROGRESS {"event": "start", "epochs": 4, "start_epoch": 2, "rank": 1, "world": 2, "train": 40, "val": 10}\n'
           'LABKIT-PROGRESS {"event": "first_step", "t": 1}\n'
           'LABKIT-PROGRESS {"event": "epoch", "epochs": 4, "epoch": 3, "loss": 0.51234, "val_acc": 0.8, "lr": 0.001, '
           '"seconds": 12.345}\n'
           'some output LABKIT-PROGRESS {"event": "ep\n'
           'LABKIT-PROGRESS {"event": "done", "accuracy": 0.8}\n')
    assert readable(log).splitlines() == [
        "resumed from best.pth after epoch 2",
        "training epochs 3 to 4: 40 training and 10 validation images, 2 processes",
        "epoch 3/4  loss 0.5123  val_acc 0.8  lr 0.001  (12.3 s)",
        "some output",
        "done: accuracy 0.8"]


def test_the_launchers_get_this_machines_part_of_the_job(tmp_path):
    from labkit.train.jobs import launcher_command, machines

    nodes = machines("mindspore", nnodes=2, node_rank=1, master_addr="10.0.0.1")
    msrun = launcher_command(Path("train.py"), "mindspore", 2, tmp_path, ["--x=1"], "job", nodes)
    assert {"--worker_num=4", "--local_worker_num=2", "--master_addr=10.0.0.1", "--master_port=8118",
            "--node_rank=1"} <= set(msrun)
    torchrun = launcher_command(Path("train.py"), "pytorch", 2, tmp_path, ["--x=1"], "job",
                                machines("pytorch", nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29500))
    assert {"--nnodes=2", "--node_rank=1", "--rdzv_backend=c10d", "--rdzv_endpoint=10.0.0.1:29500", "--rdzv_id=job",
            "--nproc_per_node=2"} <= set(torchrun) and "--standalone" not in torchrun
    assert machines("pytorch") is None
    with pytest.raises(LabkitError, match="--nnodes"):
        machines("pytorch", node_rank=1)
