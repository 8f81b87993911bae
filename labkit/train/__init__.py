"""Stage 2b, training jobs: the algorithm runs as a subprocess with states, logs, metrics,
checkpoints and output versions, like a ModelArts training job.

    from labkit import train
    job = train.create("ResNet50", "pytorch", "flowers@V001", name="flowers-resnet", wait=True)
    train.show("flowers-resnet")["state"]       # COMPLETED
    train.compare(["flowers-resnet@*"])         # its versions side by side
    train.tensorboard()                          # TensorBoard over every job; train.stop_tensorboard()
"""
from labkit.records import TERMINAL
from labkit.train.jobs import (DEVICES, create, parse_events, ensure_job, evaluation, list_jobs, logs, metrics,
                               output_dir, progress, resume, show, stop, wait)
from labkit.train.board import start as tensorboard, stop as stop_tensorboard
from labkit.train.compare import compare, rows as compare_table
from labkit.train.timing import expected_time, for_dataset as estimate
from labkit.train.transfer import fine_tune, pretrain, versus_scratch

__all__ = ["TERMINAL", "DEVICES", "create", "ensure_job", "evaluation", "list_jobs", "logs", "metrics", "output_dir",
           "parse_events", "progress", "resume", "show", "stop", "wait", "pretrain", "fine_tune", "versus_scratch", "estimate",
           "expected_time", "compare", "compare_table", "tensorboard", "stop_tensorboard"]
