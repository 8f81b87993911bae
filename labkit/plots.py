"""Figures for the notebooks (matplotlib). Each function returns a closed Figure, so the
notebook shows it exactly once, as the cell's result, and a script can ``savefig`` it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.tasks import COUNTING


def _figure(rows: int, cols: int, cell: float = 1.6):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell, rows * cell), squeeze=False)
    plt.close(fig)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def sample_grid(name: str, per_class: int = 6, seed: int = 0):
    """A few images of dataset ``name``: a row per class, or for crowd data a row of
    scenes and a row of their density maps laid over them, with the head counts."""
    from PIL import Image

    from labkit.data import datasets

    root, entries = datasets.path(name), datasets.items(name)
    rng = np.random.default_rng(seed)
    if datasets.record(name)["task"] == COUNTING:
        from labkit.data.crowd import density_map, read_ground_truth

        picked = [entries[i] for i in sorted(rng.choice(len(entries), min(per_class, len(entries)), replace=False))]
        fig, axes = _figure(2, len(picked), cell=2.2)
        for col, entry in enumerate(picked):
            image = Image.open(root / entry["file"]).convert("RGB")
            heads = read_ground_truth(root / entry["ground_truth"])
            density = density_map(heads, image.height, image.width, downsample=1)
            axes[0, col].imshow(image)
            axes[0, col].set_title(f"{entry['count']} heads", fontsize=9)
            axes[1, col].imshow(image)
            axes[1, col].imshow(density, cmap="jet", alpha=0.55)
            axes[1, col].set_title(f"density sum {density.sum():.1f}", fontsize=9)
        return fig
    labels = sorted({e["label"] for e in entries})
    fig, axes = _figure(len(labels), per_class)
    for row, label in enumerate(labels):
        members = [e for e in entries if e["label"] == label]
        for col, i in enumerate(sorted(rng.choice(len(members), min(per_class, len(members)), replace=False))):
            axes[row, col].imshow(Image.open(root / members[i]["file"]).convert("RGB"))
        axes[row, 0].set_title(label, fontsize=9, loc="left")
    return fig


def split_table(version: dict) -> pd.DataFrame:
    """Per class (or, for crowd data, per split) counts of a published version."""
    counts = version["counts"]
    if "per_class" not in counts["train"]:
        return pd.DataFrame({s: {"images": counts[s]["images"], "heads": counts[s]["heads"]} for s in ("train", "val")}).T
    table = pd.DataFrame({s: counts[s]["per_class"] for s in ("train", "val")}).fillna(0).astype(int)
    table["total"] = table["train"] + table["val"]
    table["val share"] = (table["val"] / table["total"]).round(2)
    return table


def _short(value: float) -> str:
    """Three significant digits, never in exponent notation: 0.154, 25.8, 1,330."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def class_balance(table: pd.DataFrame, title: str = "images per class"):
    """A stacked bar chart of a ``split_table`` (train and val per class)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(table) + 2), 3))
    plt.close(fig)
    columns = [c for c in ("train", "val") if c in table] or ["count"]
    table[columns].plot.bar(stacked=True, ax=ax, color=["#4c72b0", "#dd8452"][: len(columns)], rot=0)
    ax.set_title(title)
    ax.set_ylabel("images")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    return fig


def dataset_balance(name: str):
    """What dataset ``name`` holds: heads per image for crowd scenes, images per class otherwise."""
    from labkit import data

    record = data.show(name)
    if record["task"] == COUNTING:
        return count_histogram(name)
    return class_balance(pd.DataFrame({"count": record["class_counts"]}), title=f"{name}: images per class")


def count_histogram(name: str, bins: int = 20):
    """How many heads the crowd scenes of dataset ``name`` hold."""
    import matplotlib.pyplot as plt

    from labkit.data import datasets

    counts = [e["count"] for e in datasets.items(name)]
    fig, ax = plt.subplots(figsize=(5, 3))
    plt.close(fig)
    ax.hist(counts, bins=bins, color="#4c72b0")
    ax.set_xlabel("heads per image")
    ax.set_ylabel("images")
    ax.set_title(f"{name}: {len(counts)} scenes, {sum(counts)} heads")
    fig.tight_layout()
    return fig


def learning_curves(rows: list[dict], title: str = "training"):
    """Loss and the validation metric per epoch, from ``labkit.train.metrics``."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    plt.close(fig)
    epochs = [r["epoch"] for r in rows]
    left.plot(epochs, [r["loss"] for r in rows], "o-", color="#4c72b0")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    if rows and rows[0].get("val_acc") is not None:
        right.plot(epochs, [r["train_acc"] for r in rows], "o-", label="train", color="#4c72b0")
        right.plot(epochs, [r["val_acc"] for r in rows], "o-", label="validation", color="#dd8452")
        right.set_ylabel("accuracy")
        right.set_ylim(0, 1)
    elif rows:
        right.plot(epochs, [r["val_mae"] for r in rows], "o-", label="val MAE", color="#dd8452")
        right.plot(epochs, [r["val_rmse"] for r in rows], "o-", label="val RMSE", color="#55a868")
        right.set_ylabel("heads")
    right.set_xlabel("epoch")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def evaluation(report: dict):
    """The figure of an evaluation: a job's ``eval.json`` or stage 5's ``result.json`` --
    predicted against true counts for counting, the confusion matrix for classification."""
    return counts_scatter(report) if "mae" in report else confusion_matrix(report)


def confusion_matrix(report: dict):
    """The confusion matrix of an ``eval.json`` or a ``result.json`` (rows: truth, columns: prediction)."""
    import matplotlib.pyplot as plt

    matrix, labels = np.array(report["confusion"]), report["labels"]
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(labels), 0.8 + 0.6 * len(labels)))
    plt.close(fig)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = report["accuracy"] if "accuracy" in report else report["top1"]  # eval.json or result.json
    ax.set_title(f"validation accuracy {accuracy:.1%}")
    fig.tight_layout()
    return fig


def counts_scatter(report: dict):
    """Predicted against true head counts of an ``eval.json`` or a ``result.json`` scored with the
    training mean, with the predict-the-mean baseline."""
    import matplotlib.pyplot as plt

    truth, pred = np.array(report["truth"]), np.array(report["predicted"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    plt.close(fig)
    top = max(1.0, truth.max(initial=0), pred.max(initial=0)) * 1.05
    ax.plot([0, top], [0, top], "--", color="gray", label="perfect")
    ax.axhline(report["train_mean_count"], color="#c44e52", lw=1, label="predict the mean")
    ax.scatter(truth, pred, color="#4c72b0", label="MCNN")
    ax.set_xlabel("true count")
    ax.set_ylabel("predicted count")
    ax.set_title(f"MAE {report['mae']:.1f} (mean baseline {report['mean_baseline_mae']:.1f})")
    ax.legend()
    fig.tight_layout()
    return fig


def conversion_chart(rows: list[dict]):
    """Size, batch-1 latency and best throughput of each model of conversion reports
    (rows of ``report["models"]``, possibly from several reports)."""
    import matplotlib.pyplot as plt

    names = [r["model"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.6 + 0.45 * len(rows)), sharey=True)
    plt.close(fig)
    for ax, (key, label) in zip(axes, (("size_mb", "file size (MB)"), ("latency_ms", "batch-1 latency (ms)"),
                                       ("throughput", "best throughput (images/s)")), strict=True):
        values = [r.get(key) or 0.0 for r in rows]
        bars = ax.barh(range(len(rows)), values, color=["#8c8c8c" if i < 2 else "#4c72b0" for i in range(len(rows))])
        ax.bar_label(bars, labels=[_short(v) for v in bars.datavalues], padding=2)
        ax.set_xlabel(label)
        ax.set_xlim(0, max(values, default=1) * 1.25 or 1)
    axes[0].set_yticks(range(len(rows)), names)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def prediction(image, answer: dict, title: str = ""):
    """An image and the service's answer: the top-k scores as bars, or the density map over
    the image with the count. ``image``: a path, bytes or an array."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    elif not isinstance(image, np.ndarray):
        image = Image.open(image)
    pixels = np.asarray(image.convert("RGB")) if not isinstance(image, np.ndarray) else image
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    plt.close(fig)
    left.imshow(pixels)
    left.axis("off")
    if "scores" in answer:
        labels, scores = zip(*answer["scores"], strict=True)
        right.barh(range(len(labels)), scores, color=["#55a868"] + ["#8c8c8c"] * (len(labels) - 1))
        right.set_yticks(range(len(labels)), labels)
        right.invert_yaxis()
        right.set_xlim(0, 1)
        right.set_xlabel("probability")
        left.set_title(f"predicted: {answer['predicted_label']}")
    else:
        density = np.array(answer["density_map"])
        right.imshow(pixels, alpha=0.6)
        right.imshow(density, cmap="jet", alpha=0.5, extent=(0, pixels.shape[1], pixels.shape[0], 0))
        right.axis("off")
        right.set_title("density map over the image")
        left.set_title(f"count: {answer['count']:.1f}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def pipeline_timings(stats: dict):
    """Mean and p99 time of each plugin of a pipeline run, and end to end."""
    import matplotlib.pyplot as plt

    rows = [("end to end", stats["e2e"]), *stats["plugins"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.4 * len(rows)))
    plt.close(fig)
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["mean_ms"] for _, r in rows], 0.4, label="mean", color="#4c72b0")
    ax.barh(y + 0.2, [r["p99_ms"] for _, r in rows], 0.4, label="p99", color="#dd8452")
    ax.set_yticks(y, [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per image")
    ax.set_title(f"pipeline {stats['stream']}: {stats['images']} images")
    ax.legend()
    fig.tight_layout()
    return fig


def compare_curves(runs: dict[str, list[dict]]):
    """Validation accuracy (or MAE) per epoch of several jobs on one plot (``train.metrics``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    plt.close(fig)
    key = "val_acc"
    for name, rows in runs.items():
        key = "val_acc" if rows and rows[0].get("val_acc") is not None else "val_mae"
        ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], "o-", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy" if key == "val_acc" else "validation MAE")
    if key == "val_acc":
        ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    return fig
