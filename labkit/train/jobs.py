"""Training jobs: ``jobs/NAME/V00N/`` holds a run's record (``run.json``), its log
(``train.log``) and its output (``output/``, the ``--train_url``). Creating a job that
exists makes its next version.

A job is started as ``python -m labkit.train.supervisor RUN_DIR`` in a new session, so that
``stop`` can end the whole process tree (torchrun and msrun start more processes).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from labkit import artifacts, catalog, profiles, records, workspace
from labkit.algorithms import DEVICES, PROGRESS, checkpoint
from labkit.algorithms.configs import FP32, NCHW
from labkit.boundary import printable
from labkit.errors import LabkitError
from labkit.tasks import SAMPLE_DATA
from labkit.train import speedups, supervisor

_DECODER = json.JSONDecoder()  # raw_decode: one event at the start of a piece of the log


JOBS = records.Kind(artifacts.JOB, "training job", "create one with `labkit train create`",
                    "the job's process died (killed, crashed or the machine restarted); "
                    "`labkit train resume` continues from the last checkpoint")

_run_dir = JOBS.dir  # ``JOB`` (its latest version) or ``JOB@V002`` -> the run directory
refresh, show, list_jobs = JOBS.refresh, JOBS.show, JOBS.list


def output_dir(ref: str) -> Path:
    """A run's ``--train_url``: checkpoints, metrics.csv, eval.json, model.json."""
    return _run_dir(ref) / "output"


# --- create ------------------------------------------------------------------------------

def check_device(device: str, engine: str) -> None:
    """A device that is not there is an error here, before anything starts: no silent fallback."""
    if device not in DEVICES:
        raise LabkitError(f"unknown device {device!r}", f"use one of {', '.join(DEVICES)}")
    if device == "gpu":
        if not shutil.which("nvidia-smi"):
            raise LabkitError("--device gpu, but this machine has no NVIDIA GPU (nvidia-smi not found)",
                              "use --device cpu")
        if engine == "pytorch":
            probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                                   capture_output=True, text=True)
            if probe.stdout.strip() != "True":
                raise LabkitError("--device gpu, but this PyTorch is a CPU build",
                                  "install a CUDA build of torch 2.13.0, or use --device cpu")
    if device == "ascend" and not shutil.which("npu-smi"):
        raise LabkitError("--device ascend, but this machine has no Ascend NPU (npu-smi not found)",
                          "use --device cpu")


def _imagenet(card, hp: dict, log) -> str:
    """The published ImageNet weights of the card's network, fetched once per machine
    (``LABKIT_MIRROR``: from the room's server)."""
    from labkit.algorithms import pretrained

    if hp.get("pretrained_weight"):
        raise LabkitError("pretrained=imagenet and pretrained_weight name two starting points",
                          "keep one: the ImageNet weights, or a job / checkpoint of yours")
    pretrained.check_hyper(card.arch, hp)
    return str(pretrained.fetch(card.arch, log=log))


def _pretrained(value: str, engine: str) -> str:
    """A job name -> that job's best checkpoint; a file -> its absolute path."""
    if (JOBS.root() / value).is_dir() and workspace.versions(JOBS.root() / value):
        run = _run_dir(value)
        record = records.read(run)
        best = checkpoint(run / "output", record["engine"])
        if record["engine"] != engine:
            raise LabkitError(f"job {value} was trained with {record['engine']}, this job uses {engine}",
                              f"use a {engine} job or checkpoint as pretrained_weight")
        if not best.exists():
            raise LabkitError(f"job {value} has no best checkpoint yet (state {record['state']})",
                              "wait for it to complete, or name a checkpoint file")
        return str(best)
    path = Path(value).expanduser()
    if not path.is_file():
        raise LabkitError(f"pretrained_weight {value!r} is neither a job nor a checkpoint file",
                          "name a training job (labkit train list) or a .pth/.ckpt file")
    return str(path.resolve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MASTER_PORTS = {"pytorch": 29400, "mindspore": 8118}   # torchrun's c10d rendezvous and msrun's defaults


def machines(engine: str, nnodes: int = 1, node_rank: int = 0, master_addr: str | None = None,
             master_port: int | None = None) -> dict | None:
    """This machine's part of a job over ``nnodes`` machines (None: a job of this machine alone)."""
    if nnodes == 1:
        if node_rank or master_addr or master_port:
            raise LabkitError("--node-rank, --master-addr and --master-port are for a job over several machines",
                              "add --nnodes M (the number of machines), or leave them out")
        return None
    if not 2 <= nnodes <= 64:
        raise LabkitError(f"--nnodes must be between 1 and 64 (got {nnodes})", "count the machines taking part")
    if not 0 <= node_rank < nnodes:
        raise LabkitError(f"--node-rank must be 0 to {nnodes - 1} (got {node_rank})", "number the machines from 0")
    if not master_addr:
        raise LabkitError("a job over several machines needs --master-addr",
                          "give the address of machine 0, which every machine can reach")
    port = master_port or MASTER_PORTS[engine]
    if not 1 <= port <= 65535:
        raise LabkitError(f"--master-port {port} is not a port", "use 1024-65535")
    return {"nnodes": nnodes, "node_rank": node_rank, "master_addr": master_addr, "master_port": port}


def launcher_command(boot: Path, engine: str, device_num: int, out: Path, args: list[str], name: str,
                     nodes: dict | None) -> list[str]:
    """The job's command line: the boot file, or under torchrun / msrun for data parallel on this
    machine (``device_num`` processes) and across machines (``nodes``)."""
    if device_num == 1 and not nodes:
        return [sys.executable, str(boot), *args]
    if engine == "pytorch":
        where = (["--standalone"] if not nodes else
                 [f"--nnodes={nodes['nnodes']}", f"--node_rank={nodes['node_rank']}", "--rdzv_backend=c10d",
                  f"--rdzv_endpoint={nodes['master_addr']}:{nodes['master_port']}", f"--rdzv_id={name}"])
        return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={device_num}", str(boot), *args]
    msrun = shutil.which("msrun", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if not msrun:
        raise LabkitError("msrun (MindSpore's launcher) is not on PATH", "put the venv's bin directory first on PATH")
    where = ([f"--master_port={_free_port()}"] if not nodes else
             [f"--master_addr={nodes['master_addr']}", f"--master_port={nodes['master_port']}",
              f"--node_rank={nodes['node_rank']}"])
    return [msrun, f"--worker_num={device_num * (nodes['nnodes'] if nodes else 1)}", f"--local_worker_num={device_num}",
            *where, f"--log_dir={out / 'msrun'}", "--join=True", str(boot), *args]


def create(algorithm: str, engine: str, dataset: str, name: str, hyper: dict | None = None, device: str = "cpu",
           device_num: int = 1, wait: bool = False, profile: str | None = None, log=print, nnodes: int = 1,
           node_rank: int = 0, master_addr: str | None = None, master_port: int | None = None) -> dict:
    """Validate everything, start the job, return its record (with ``wait``, once it has ended).
    With ``nnodes`` > 1 the job is this machine's part of a job over several machines: each runs
    ``labkit train create`` with the same name and dataset, its own ``node_rank``, and machine 0's
    address; every machine ends with the same weights in its own job."""
    from labkit import data

    card = catalog.card(algorithm)
    catalog.check_engine(card, engine)
    workspace.check_name(name, "job name")
    profile = profiles.profile(profile)
    hp = card.resolve(dict(hyper or {}), profile)
    if not card.custom:
        from labkit.algorithms.schedules import Schedule

        Schedule(hp)  # a malformed learning_rate_strategy fails here, not in the subprocess
    check_device(device, engine)
    if not 1 <= device_num <= 64:
        raise LabkitError(f"--device-num must be between 1 and 64 (got {device_num})", "use 1 for one process")
    hp = speedups.settle(card, engine, hp, device, device_num, log, nnodes)
    nodes = machines(engine, nnodes, node_rank, master_addr, master_port)
    data_url = data.version_dir(dataset)
    version = json.loads((data_url / "version.json").read_text())
    if version["task"] != card.task:
        raise LabkitError(f"{card.name} is for {card.task}, but {dataset} is {version['task']}",
                          "pick an algorithm of the dataset's task (labkit algo list)")
    if hp.get("pretrained") == "imagenet":
        hp["pretrained_weight"] = _imagenet(card, hp, log)
    if hp.get("pretrained_weight"):
        hp["pretrained_weight"] = _pretrained(hp["pretrained_weight"], engine)
    if not catalog.is_subscribed(card.name, engine):
        catalog.subscribe(card.name, engine)
        log(f"subscribed to {card.name} ({engine}) on first use")

    job_dir = JOBS.root() / name
    workspace.remove_stale_staging(job_dir)
    staged = workspace.staging_dir(job_dir)
    out = staged / "output"
    out.mkdir()
    record = {
        "job": name, "algorithm": card.name, "engine": engine, "dataset": f"{version['dataset']}@{data_url.name}",
        "data_url": str(data_url), "hyper": hp, "profile": profile, "device": device, "device_num": device_num,
        "world": {"size": device_num * (nodes["nnodes"] if nodes else 1), "nnodes": 1, "node_rank": 0, **(nodes or {})},
        "state": "CREATING", "timestamps": {"CREATING": workspace.now()},
    }
    workspace.write_json(staged / "run.json", record)
    run = job_dir / workspace.publish_version(staged, job_dir)
    record = records.update(run, version=run.name, train_url=str(run / "output"))
    records.update(run, command=command(run, record))  # what the supervisor will run, for the record
    _start(run)
    log(f"job {name}@{run.name} started: {card.name} on {engine}/{device}, dataset {record['dataset']}")
    return wait_for(run) if wait else records.read(run)


def command(run: Path, record: dict, resume: Path | None = None) -> list[str]:
    """The command line of job ``run``, composed here from the catalog card, the engine, the
    dataset version in this workspace and the hyper-parameters checked against the card again.
    A record is data (it may have come in a pack): the command it stores is never what runs."""
    from labkit import data

    card = catalog.card(record["algorithm"])
    engine = catalog.check_engine(card, record["engine"])
    check_device(record["device"], engine)
    # a record made before jobs chose a layout and precision computed in NCHW and FP32
    hyper = {**({} if card.custom else {"layout": NCHW, "precision": FP32}), **record["hyper"]}
    hp = speedups.precision(card, engine, card.resolve(hyper, "full"), record["device"])
    world = record["world"]
    nodes = machines(engine, world["nnodes"], world["node_rank"], world.get("master_addr"), world.get("master_port"))
    args = [f"--data_url={data.version_dir(record['dataset'])}", f"--train_url={run / 'output'}",
            *(f"--{k}={v}" for k, v in {**card.fixed_args(record["device"]), **hp}.items()),
            *([f"--resume={resume}"] if resume else [])]
    return launcher_command(card.boot(engine), engine, record["device_num"], run / "output", args, run.parent.name, nodes)


def _start(run: Path) -> None:
    records.spawn(run, [sys.executable, "-m", "labkit.train.supervisor", str(run)], "supervisor.log",
                  supervisor.child_env())


# --- look --------------------------------------------------------------------------------

def metrics(ref: str) -> list[dict]:
    """The per-epoch rows of ``metrics.csv`` (the epoch an int, the rest floats)."""
    path = output_dir(ref) / "metrics.csv"
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in csv.DictReader(f)]
        return [{**row, "epoch": int(row["epoch"])} for row in rows]
    except (ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError) as exc:
        raise LabkitError(f"{path} is damaged: {printable(str(exc))}", "one row of numbers per epoch, as the job "
                          "wrote it; restore the file, or remove it to show the job without it") from None


def evaluation(ref: str) -> dict:
    """The final evaluation (``eval.json``) of a COMPLETED run; a clear error otherwise."""
    record = show(ref)
    path = output_dir(ref) / "eval.json"
    if record["state"] != "COMPLETED" or not path.exists():
        hint = (f"read `labkit train logs {record['job']}`; `labkit train resume {record['job']}` continues it"
                if record["state"] in ("FAILED", "STOPPED") else f"wait for it: `labkit train logs {record['job']} --follow`")
        raise LabkitError(f"job {record['job']}@{record['version']} is {record['state']}"
                          + (f": {record['reason']}" if record.get("reason") else "") + ", so it has no evaluation", hint)
    return json.loads(path.read_text())


def logs(ref: str, offset: int = 0) -> str:
    """The job's log from byte ``offset`` on (``--follow`` reads only what is new)."""
    path = _run_dir(ref) / "train.log"
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def progress(ref: str, offset: int = 0) -> tuple[list[dict], int]:
    """Progress events written since byte ``offset`` of the log, and the new offset."""
    path = _run_dir(ref) / "train.log"
    if not path.exists():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    return parse_events(complete.decode(errors="replace")), offset + len(complete)


def parse_events(text: str) -> list[dict]:
    """The progress events in whole lines of log ``text``. Under msrun/torchrun the ranks share
    the log: two events can land on one line, or one be cut by another process's output."""
    events = []
    for piece in text.split(PROGRESS)[1:]:
        try:
            events.append(_DECODER.raw_decode(piece)[0])
        except json.JSONDecodeError:
            continue  # a cut event: the next one carries on
    return events


def wait_for(run: Path, poll: float = 0.5) -> dict:
    while True:
        record = refresh(run)
        if record["state"] in records.TERMINAL:
            return record
        time.sleep(poll)


def wait(ref: str) -> dict:
    """Block until the run ends; its final record."""
    return wait_for(_run_dir(ref))


def ensure_job(algorithm: str = "ResNet_v1_50", engine: str = "pytorch", log=print) -> str:
    """``JOB@VERSION`` of the most recently completed built-in job; when there is none, train
    ``algorithm`` in the quick profile on the default dataset of its task and say so. This is
    what lets the stage notebooks after training run on their own."""
    latest = JOBS.latest_completed(lambda r: (output_dir(f"{r['job']}@{r['version']}") / "model.json").exists())
    if latest:
        return f"{latest['job']}@{latest['version']}"
    from labkit import data

    card = catalog.card(algorithm)
    dataset = data.ensure_version(SAMPLE_DATA[card.task], profile="quick", log=log)
    name = f"{algorithm.lower()}-{engine}-quick"
    log(f"no trained model yet: training {algorithm} ({engine}, quick profile) on {dataset} as job {name}")
    record = create(algorithm, engine, dataset, name, profile="quick", wait=True, log=log)
    if record["state"] != "COMPLETED":
        raise LabkitError(f"the fallback job {name} ended {record['state']}: {record.get('reason')}",
                          f"see `labkit train logs {name}`")
    return f"{name}@{record['version']}"


# --- stop and resume ---------------------------------------------------------------------

def stop(ref: str) -> dict:
    """End the job's whole process tree (TERM, then KILL after a grace period); STOPPED."""
    return JOBS.stop(_run_dir(ref))


def last_checkpoint(run: Path) -> Path | None:
    found = sorted(p for p in (run / "output" / "checkpoints").glob("epoch_*") if p.is_file() and not p.is_symlink())
    return found[-1] if found else None


def resume(ref: str, wait: bool = False, log=print) -> dict:
    """Continue a FAILED or STOPPED run from its last checkpoint, in the same version."""
    run = _run_dir(ref)
    record = refresh(run)
    if record["state"] not in ("FAILED", "STOPPED"):
        raise LabkitError(f"job {record['job']}@{record['version']} is {record['state']}: only a FAILED or STOPPED "
                          "job can be resumed", "create a new version with `labkit train create` instead")
    ckpt = last_checkpoint(run)
    if ckpt is None:
        raise LabkitError(f"job {record['job']}@{record['version']} has no checkpoint to resume from",
                          "it ended before its first epoch: create it again")
    argv = command(run, record, resume=ckpt)  # checked before the record changes
    with workspace.locked(run):
        record = records.read(run)
        for key in ("stop_reason", "reason", "exit_code"):
            record.pop(key, None)
        record.update(state="CREATING", command=argv, resumed_from=str(ckpt))
        record["timestamps"]["CREATING"] = workspace.now()
        workspace.write_json(run / "run.json", record)
    _start(run)
    log(f"job {record['job']}@{record['version']} resumed from {ckpt.name}")
    return wait_for(run) if wait else records.read(run)
