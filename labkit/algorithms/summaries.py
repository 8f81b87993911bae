"""TensorBoard event files of a training run, in ``--train_url``/tensorboard/: a scalar per
epoch for each column of ``metrics.csv`` (loss, the metrics, learning rate, seconds, images
per second), the hyper-parameters and final metrics for the HParams dashboard, and at the
end the evaluation figure (confusion matrix, or predicted against true counts) and a few
validation images with their predictions. ``labkit tensorboard`` shows them.

Written with tensorboardX: NumPy in, no framework, the same files from either engine.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from labkit.algorithms import reports

EVENTS = "tensorboard"  # the folder in a run's output
SHOWN = 8  # validation images drawn with their predictions
FINAL = "final/"  # the tags of the final metrics, the HParams dashboard's columns


def _writer_class():
    """tensorboardX's SummaryWriter. It imports torch when it can (only to accept torch
    tensors); in a process that has not loaded torch (a MindSpore job) that would load a second
    framework and its OpenMP for nothing, so the import is hidden from it there."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter


def _counts(maps: np.ndarray) -> np.ndarray:
    return maps.reshape(len(maps), -1).sum(1)


class Board:
    """The event files of one run (of the process that writes its output)."""

    def __init__(self, train_url: Path):
        self.writer = _writer_class()(str(Path(train_url) / EVENTS), flush_secs=10)

    def epoch(self, row: dict) -> None:
        """One row of ``metrics.csv``: each value a scalar at step ``epoch``."""
        for tag, value in row.items():
            if tag != "epoch" and value is not None:
                self.writer.add_scalar(tag, float(value), row["epoch"])
        self.writer.flush()  # an epoch takes seconds to minutes: show it now

    def finish(self, hp: dict, report: dict, x_val: np.ndarray, t_val: np.ndarray, outputs: np.ndarray) -> None:
        """The hyper-parameters with the final metrics, and the figures, at the best epoch
        (``outputs``: the network's on the validation split then)."""
        from tensorboardX.summary import hparams

        from labkit import plots

        step = report["best_epoch"]
        final = {k: float(v) for k, v in report.items() if k not in reports.NOT_METRICS and isinstance(v, (int, float))}
        hyper = {k: v for k, v in hp.items() if isinstance(v, (bool, int, float, str))}
        # no experiment summary: TensorBoard then makes one from all the runs' (jobs differ in hyper-parameters)
        _, start, end = hparams(hyper, {FINAL + k: v for k, v in final.items()})
        self.writer.file_writer.add_summary(start)
        self.writer.file_writer.add_summary(end)
        for k, v in final.items():
            self.writer.add_scalar(FINAL + k, v, step)
        self.writer.add_figure("evaluation", plots.evaluation(report), step)
        shown = np.unique(np.linspace(0, len(x_val) - 1, min(SHOWN, len(x_val))).astype(int))  # across the classes
        if not len(shown):
            return
        if "labels" in report:
            predicted, truth, labels = outputs[shown].argmax(1), t_val[shown], report["labels"]
        else:  # density maps: their sums are the counts
            predicted, truth, labels = _counts(outputs[shown]), _counts(t_val[shown]), None
        self.writer.add_figure("predictions", plots.predictions(x_val[shown], predicted, truth, labels), step)

    def close(self) -> None:
        self.writer.close()
