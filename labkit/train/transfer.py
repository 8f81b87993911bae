"""Transfer learning, as seed 003 teaches it: train on one dataset, fine-tune the same
architecture on another from those weights, and see what it gained over training from scratch."""
from __future__ import annotations

from labkit import catalog
from labkit.errors import LabkitError
from labkit.tasks import HEADLINE
from labkit.train import jobs

# The hyper-parameters that make a job start from weights trained elsewhere, and freeze them
FROM_ELSEWHERE = ("pretrained", "pretrained_weight", "train_layers")


def pretrain(algorithm: str, engine: str, kind: str, name: str, num_classes: int, hyper: dict | None = None,
             device: str = "cpu", profile: str | None = None, log=print) -> dict:
    """Train ``algorithm`` as job ``name`` on the sample dataset of ``kind`` (made and published
    if there is none) and return the hyper-parameters that fine-tune from it: ``hyper`` with
    ``pretrained_weight`` (that job) and ``num_classes`` (of the dataset to fine-tune on)."""
    from labkit import data

    base_data = data.ensure_version(kind, profile=profile, log=log)
    base = jobs.create(algorithm, engine, base_data, name, hyper, device=device, profile=profile, wait=True, log=log)
    if base["state"] != "COMPLETED":
        raise LabkitError(f"the pre-training job {name}@{base['version']} is {base['state']}: {base.get('reason')}",
                          f"see `labkit train logs {name}`, or set TRANSFER_FROM = None to train from scratch")
    log(f"pre-trained {name}@{base['version']} on {base_data}: {base.get('metrics', {})}")
    return {**(hyper or {}), "pretrained_weight": name, "num_classes": num_classes}


def fine_tune(ref: str, name: str | None = None, log=print) -> dict:
    """The second step of the transfer lesson: job ``ref`` (trained from published weights with a
    frozen backbone) trained on as ``NAME-tuned`` with its last stage too, at a lower rate (the
    card's ``fine_tune`` recipe); the same data and sizes. Returns the new job's record, ended."""
    job = jobs.show(ref)
    card = catalog.card(job["algorithm"])
    hyper = {k: v for k, v in job["hyper"].items() if k not in (*FROM_ELSEWHERE, "max_epochs")}
    hyper.update(card.transfer_step("fine_tune", job["profile"]), pretrained_weight=job["job"])
    return jobs.create(job["algorithm"], job["engine"], job["dataset"], name or f"{job['job']}-tuned", hyper,
                       device=job["device"], device_num=job["device_num"], profile=job["profile"], wait=True, log=log)


def versus_scratch(ref: str, log=print) -> dict:
    """Train job ``ref`` again as ``NAME-scratch`` with the same hyper-parameters but no
    pre-trained weights; return both jobs and their headline validation metric."""
    job = jobs.show(ref)
    hyper = {k: v for k, v in job["hyper"].items() if k not in FROM_ELSEWHERE}
    scratch = jobs.create(job["algorithm"], job["engine"], job["dataset"], f"{job['job']}-scratch", hyper,
                          device=job["device"], profile=job["profile"], wait=True, log=log)
    metric = HEADLINE[catalog.card(job["algorithm"]).task]
    return {"metric": metric, "transfer": f"{job['job']}@{job['version']}", "scratch": f"{scratch['job']}@{scratch['version']}",
            "values": {"transfer": job.get("metrics", {}).get(metric),
                       "from scratch": scratch.get("metrics", {}).get(metric)}}
