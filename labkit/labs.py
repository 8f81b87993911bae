"""Labs: recipes (``notebooks/labs/*.yaml``) that run the stage notebooks in order with
papermill, into ``runs/LAB/<timestamp>/``: executed notebooks, an HTML copy of each, and
``run.json`` (versions, parameters, what each stage reported, wall time per stage).

A notebook reports its results for ``run.json`` with ``labkit.labs.report(key=value)``.
"""
from __future__ import annotations

import functools
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from labkit import cpu, lessons, profiles, workspace
from labkit.doctor import package_versions
from labkit.errors import LabkitError
from labkit.lessons import NOTEBOOKS
from labkit.train import timing

RUN_DIR_ENV = "LABKIT_RUN_DIR"


def recipes() -> dict[str, dict]:
    import yaml

    found = {}
    for path in sorted((NOTEBOOKS / "labs").glob("*.yaml")):
        with open(path, encoding="utf-8") as f:
            recipe = yaml.safe_load(f)
        found[recipe["name"]] = recipe
    return found


def recipe(name: str) -> dict:
    known = recipes()
    if name not in known:
        raise LabkitError(f"no lab named {name!r}", f"`labkit labs list` shows them: {', '.join(known)}")
    return known[name]


# A later stage works on what an earlier stage of the same run made, not on "the latest one":
# the ghostnet lab trains a from-scratch comparison job after its transfer job.
CHAINED = {"JOB": "job", "MODEL": "model"}   # notebook parameter -> key of results.json
# Choices that hold for a whole lab run (`labkit run LAB --data real --pretrained imagenet`): each
# stage notebook that declares the parameter gets it. The default keeps a lab offline.
OPTIONS = {"DATA": ("generated", "real"), "PRETRAINED": ("none", "imagenet")}


def check_options(options: dict) -> dict:
    for key, value in options.items():
        if value not in OPTIONS.get(key, ()):
            raise LabkitError(f"{key}={value!r} is not a lab option", f"{key} takes {' or '.join(OPTIONS.get(key, ()))}")
    return options


def stage_parameters(stage: dict, profile: str, results: dict | None = None, declared=(),
                     options: dict | None = None) -> dict:
    """A stage's parameters under ``profile``: the common ones, then the profile's, then the run's
    ``options`` (``OPTIONS``), then what earlier stages reported for the parameters the notebook
    declares and the recipe leaves open."""
    params = {**stage.get("parameters", {}), **stage.get("profiles", {}).get(profile, {})}
    params.update({k: v for k, v in (options or {}).items() if k in declared})
    for name, key in CHAINED.items():
        if name in declared and name not in params and (results or {}).get(key):
            params[name] = results[key]
    return params


@functools.cache  # labs list asks for every lab: read each notebook's parameters once
def _declared(notebook: str) -> dict:
    """A stage notebook's parameters and their defaults, as its parameters cell writes them."""
    import ast

    import papermill as pm

    return {k: ast.literal_eval(v["default"]) for k, v in pm.inspect_notebook(str(NOTEBOOKS / notebook)).items()}


def training_jobs(lab: dict, profile: str, options: dict | None = None) -> list[dict]:
    """The training jobs a lab's stage 2 starts, with their image counts: its job, and with
    ``TRANSFER_FROM`` a base job before it and the same job from scratch after (notebook 02);
    with ``PRETRAINED=imagenet`` the fine-tuning job after it."""
    stages = [{**_declared(s["notebook"]), **stage_parameters(s, profile, declared=_declared(s["notebook"]),
                                                             options=options)} for s in lab["stages"]]
    data = next((p for p in stages if "TRAIN_RATIO" in p), {})   # notebook 01
    train = next((p for p in stages if "ALGORITHM" in p), None)  # notebook 02
    if train is None:
        return []

    def job(kind: str, ratio: float, count: int | None, hyper: dict) -> dict:
        if train.get("DATA") == "real":
            from labkit.data.public import for_kind

            count = for_kind(kind).images
        count = count or profiles.data_defaults(kind, profile)["count"]
        n_train = round(count * ratio)
        return {"algorithm": train["ALGORITHM"], "engine": train["ENGINE"], "n_train": n_train,
                "n_val": count - n_train, "hyper": hyper, "device_num": train["DEVICE_NUM"]}

    kind, ratio = train["DATASET_KIND"] or data["DATASET_KIND"], data.get("TRAIN_RATIO", 0.8)
    if train.get("PRETRAINED", "none") != "none":
        from labkit import catalog

        card = catalog.card(train["ALGORITHM"])
        if train["TRANSFER_FROM"]:
            raise LabkitError(f"this lab's job starts from its own base job (TRANSFER_FROM={train['TRANSFER_FROM']}): "
                              "--pretrained would start it from two places", "run it without --pretrained")
        if train["PRETRAINED"] not in card.weights:
            raise LabkitError(f"{card.name} has no published {train['PRETRAINED']} weights in labkit",
                              "run this lab without --pretrained; the flowers and food labs take it")
        features = job(kind, ratio, data.get("COUNT"), {**train["HYPER"], "pretrained": train["PRETRAINED"]})
        tuned = {**train["HYPER"], **card.transfer_step("fine_tune", profile)}
        return [features] + ([job(kind, ratio, data.get("COUNT"), tuned)] if train.get("FINE_TUNE") else [])
    main = job(kind, ratio, data.get("COUNT"), train["HYPER"])
    if not train["TRANSFER_FROM"]:
        return [main]
    import inspect

    from labkit.data.versions import publish

    published = inspect.signature(publish).parameters["train_ratio"].default  # what ensure_version uses
    return [job(train["TRANSFER_FROM"], published, None, train["HYPER"]), main, main]


def estimate(name: str, profile: str | None = None, log=print, options: dict | None = None) -> float:
    """Seconds lab ``name`` should take on this machine in ``profile``: its training jobs
    (calibrated, ``labkit.train.timing``) and the other stages' share, measured per stage."""
    lab, profile = recipe(name), profiles.profile(profile)
    jobs = training_jobs(lab, profile, options)
    seconds = sum(timing.job_seconds(j["algorithm"], j["engine"], j["n_train"], j["n_val"], j["hyper"], profile,
                                  j["device_num"], log) for j in jobs)
    return seconds + timing.OTHER_STAGE_SECONDS[profile] * (len(lab["stages"]) - 1)


def report(**results) -> None:
    """Record results of the running notebook in its lab run (no-op outside ``labkit run``)."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    path = Path(run_dir) / "results.json"
    with workspace.locked(path.parent):
        current = workspace.read_json(path) if path.exists() else {}
        current.update(results)
        workspace.write_json(path, current)


def run(name: str, profile: str | None = None, out: str | Path = "runs", log=print, follow_jobs: bool = False,
        language: str = lessons.ENGLISH, max_epochs: int | None = None, options: dict | None = None) -> dict:
    """Execute lab ``name`` with the lessons in ``language``; return the run record (also written
    to ``run.json``). With ``follow_jobs``, the progress of each job the lab starts is shown on stderr;
    with ``max_epochs``, every training job stops after that many epochs; ``options`` (``OPTIONS``:
    ``{"DATA": "real"}`` ...) go to every stage that takes them."""
    import threading

    from labkit.train.follow import watch_new_jobs

    lab = recipe(name)
    profile = profiles.profile(profile)
    options = check_options(dict(options or {}))
    training_jobs(lab, profile, options)  # options the lab cannot take fail before anything runs
    lessons.notebook(lab["stages"][0]["notebook"], language)  # an unknown language fails before anything runs
    if max_epochs is not None and max_epochs < 1:
        raise LabkitError(f"--max-epochs {max_epochs}: a job needs at least one epoch", "use --max-epochs 1 or more")
    run_dir = Path(out).resolve() / name / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=False)
    # The kernels inherit these: the lab's profile, and one workspace however the notebooks are started.
    kernel_env = {"LABKIT_PROFILE": profile, "LABKIT_HOME": str(workspace.home()), RUN_DIR_ENV: str(run_dir)}
    if max_epochs is not None:
        kernel_env[profiles.MAX_EPOCHS_ENV] = str(max_epochs)
    saved_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        expected = round(estimate(name, profile, log, options))
        log(f"[{name}] {len(lab['stages'])} stages, {profile} profile: {timing.minutes_text(expected)} on this machine")
    except LabkitError as exc:  # advice only: the lab runs without it
        expected = None
        log(f"[{name}] no time estimate: {exc.message}")
    record = {"lab": name, "profile": profile, "language": language, "options": options,
              "max_epochs": profiles.env_hyper().get("max_epochs"),
              "started": workspace.now(), "status": "RUNNING",
              "versions": package_versions(), "cpu": cpu.describe(), "estimate_seconds": expected,
              "stages": []}
    started = time.perf_counter()
    finished, sockets = threading.Event(), tempfile.TemporaryDirectory(prefix="labkit-kernel-")
    if follow_jobs:
        threading.Thread(target=watch_new_jobs, args=(record["started"], finished), daemon=True).start()
    try:
        for i, stage in enumerate(lab["stages"], 1):
            entry = {"notebook": stage["notebook"]}
            record["stages"].append(entry)
            _run_stage(name, f"stage {i}/{len(lab['stages'])}", stage, entry, profile, language, run_dir, sockets, log,
                       options)
        record["status"] = "COMPLETED"
    except BaseException:
        record["status"] = "FAILED"
        raise
    finally:
        finished.set()
        sockets.cleanup()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # Whatever happened, no service (nor TensorBoard) the lab started keeps running (a failed
        # stage never reached the deploy notebook's clean-up cell).
        record["stopped_services"] = _stop_services_since(record["started"], log)
        record["finished"] = workspace.now()
        record["seconds"] = round(time.perf_counter() - started, 1)
        record["results"] = _results(run_dir)
        workspace.write_json(run_dir / "run.json", record)
        record["path"] = str(run_dir)
    return record


def _run_stage(name: str, step: str, stage: dict, entry: dict, profile: str, language: str, run_dir: Path,
               sockets: tempfile.TemporaryDirectory, log, options: dict) -> None:
    """Execute one stage notebook into ``run_dir`` (and an HTML copy), filling in ``entry``:
    its parameters, seconds and status; a failing cell is a LabkitError that names it."""
    import papermill as pm
    from nbconvert import HTMLExporter

    nb, source = stage["notebook"], lessons.notebook(stage["notebook"], language)
    entry["parameters"] = stage_parameters(stage, profile, _results(run_dir), pm.inspect_notebook(str(source)), options)
    log(f"[{name}] {step}: {nb} ({profile}, {language}) ...")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(source, run_dir / nb, parameters=entry["parameters"], kernel_name="python3",
                            progress_bar=False, cwd=str(source.parent), config=_local_kernel(sockets))
    except pm.PapermillExecutionError as exc:
        entry.update(status="FAILED", failed_cell=exc.exec_count, error=f"{exc.ename}: {exc.evalue}")
        raise LabkitError(f"lab {name} failed in {nb}, cell {exc.exec_count}: {exc.ename}: {exc.evalue}",
                          f"open {run_dir / nb} to see the failing cell and its output") from None
    finally:
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        if (run_dir / nb).exists():
            html, _ = HTMLExporter().from_filename(str(run_dir / nb))
            (run_dir / nb).with_suffix(".html").write_text(html, encoding="utf-8")
    entry["status"] = "COMPLETED"
    log(f"[{name}] {step}: {nb} done in {entry['seconds']:.0f} s")


def _local_kernel(sockets: tempfile.TemporaryDirectory):
    """Kernels reached over Unix sockets in a private directory rather than TCP on localhost:
    nothing else on the machine can talk to them (and they do not warn about TCP)."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets.name, "kernel")}})


def _results(run_dir: Path) -> dict:
    """What the run's notebooks reported so far (``labs.report``)."""
    path = run_dir / "results.json"
    return workspace.read_json(path) if path.exists() else {}


def _stop_services_since(since: str, log) -> list[str]:
    """Stop the services, and the TensorBoard, started since ``since``: their names."""
    from labkit.serve import services
    from labkit.train import board

    stopped = []
    for r in services.list_services():
        if r["state"] in services.LIVE and r["timestamps"].get("DEPLOYING", "") >= since:
            services.stop(r["service"])
            log(f"stopped service {r['service']}, which the lab left running")
            stopped.append(r["service"])
    up = board.running()
    if up and up["timestamps"].get("STARTING", "") >= since:
        board.stop()
        log("stopped TensorBoard, which the lab left running")
        stopped.append(up["name"])
    return stopped
