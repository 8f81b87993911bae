"""Stage 2b, training jobs: the algorithm runs as a subprocess with states, logs, metrics,
checkpoints and output versions, like a ModelArts training job.

    from labkit import train
    job = train.create("ResNet50", "pytorch", "flowers@V001", name="flowers-resnet", wait=True)
    train.show("flowers-resnet")["state"]       # COMPLETED
"""
from labkit.records import TERMINAL
from labkit.train.jobs import (DEVICES, create, parse_events, ensure_job, evaluation, list_jobs, logs, metrics,
                               output_dir, progress, resume, show, stop, wait)
from labkit.train.timing import expected_time, for_dataset as estimate
from labkit.train.transfer import fine_tune, pretrain, versus_scratch

__all__ = ["TERMINAL", "DEVICES", "create", "ensure_job", "evaluation", "list_jobs", "logs", "metrics", "output_dir",
           "parse_events", "progress", "resume", "show", "stop", "wait", "pretrain", "fine_tune", "versus_scratch", "estimate",
           "expected_time"]
