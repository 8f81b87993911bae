"""Figures for the notebooks (matplotlib). Each function returns a closed Figure, so the
notebook shows it exactly once, as the cell's result, and a script can ``savefig`` it."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from labkit.i18n import word
from labkit.tasks import COUNTING

FONT = Path(__file__).parent / "fonts" / "DroidSansFallbackFull.ttf"  # CJK (fonts/README.md)


@functools.cache
def _pyplot():
    """matplotlib's pyplot, drawing Latin text in DejaVu Sans and CJK (Chinese class names and
    labels) in the font shipped with labkit: matplotlib falls back from one family to the next."""
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(FONT))
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", font_manager.FontProperties(fname=FONT).get_name()]
    return plt


def setup_fonts() -> None:
    """Draw CJK text in every matplotlib figure from now on, labkit's or not."""
    _pyplot()


def _figure(rows: int, cols: int, cell: float = 1.6):
    plt = _pyplot()
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
            axes[0, col].set_title(word("heads in image", count=entry["count"]), fontsize=9)
            axes[1, col].imshow(image)
            axes[1, col].imshow(density, cmap="jet", alpha=0.55)
            axes[1, col].set_title(word("density sum", value=density.sum()), fontsize=9)
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


def class_balance(table: pd.DataFrame, title: str | None = None):
    """A stacked bar chart of a ``split_table`` (train and val per class)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(table) + 2), 3))
    plt.close(fig)
    columns = [c for c in ("train", "val") if c in table]
    shown = table[columns].rename(columns=word) if columns else table[["count"]]
    shown.plot.bar(stacked=True, ax=ax, color=["#4c72b0", "#dd8452"][: len(shown.columns)], rot=0,
                   legend=bool(columns))
    ax.set_title(title or word("images per class"))
    ax.set_xlabel("")
    ax.set_ylabel(word("images"))
    if columns:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    return fig


def split_balance(version: dict):
    """Train and val images per class of a published version; None for crowd scenes (no classes)."""
    if "per_class" not in version["counts"]["train"]:
        return None
    ref = f"{version['dataset']}@{version['version']}"
    return class_balance(split_table(version), title=word("split title", name=ref))


def dataset_balance(name: str):
    """What dataset ``name`` holds: heads per image for crowd scenes, images per class otherwise."""
    from labkit import data

    record = data.show(name)
    if record["task"] == COUNTING:
        return count_histogram(name)
    return class_balance(pd.DataFrame({"count": record["class_counts"]}), title=word("dataset title", name=name))


def count_histogram(name: str, bins: int = 20):
    """How many heads the crowd scenes of dataset ``name`` hold."""
    from labkit.data import datasets

    counts = [e["count"] for e in datasets.items(name)]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    plt.close(fig)
    ax.hist(counts, bins=bins, color="#4c72b0")
    ax.set_xlabel(word("heads per image"))
    ax.set_ylabel(word("images"))
    ax.set_title(word("scenes title", name=name, scenes=len(counts), heads=sum(counts)))
    fig.tight_layout()
    return fig


def _epoch_axis(ax) -> None:
    """Epochs are whole numbers: no 0.96 / 1.04 ticks on a one-epoch run (--max-epochs 1)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(word("epoch"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def learning_curves(rows: list[dict], title: str = ""):
    """Loss and the validation metric per epoch, from ``labkit.train.metrics``."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    plt.close(fig)
    epochs = [r["epoch"] for r in rows]
    left.plot(epochs, [r["loss"] for r in rows], "o-", color="#4c72b0")
    _epoch_axis(left)
    left.set_ylabel(word("training loss"))
    if rows and rows[0].get("val_acc") is not None:
        right.plot(epochs, [r["train_acc"] for r in rows], "o-", label=word("train"), color="#4c72b0")
        right.plot(epochs, [r["val_acc"] for r in rows], "o-", label=word("validation"), color="#dd8452")
        right.set_ylabel(word("accuracy"))
        right.set_ylim(0, 1)
    elif rows:
        right.plot(epochs, [r["val_mae"] for r in rows], "o-", label=word("val MAE"), color="#dd8452")
        right.plot(epochs, [r["val_rmse"] for r in rows], "o-", label=word("val RMSE"), color="#55a868")
        right.set_ylabel(word("heads"))
    _epoch_axis(right)
    right.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def evaluation(report: dict):
    """The figure of an evaluation: a job's ``eval.json`` or stage 5's ``result.json`` --
    predicted against true counts for counting, the confusion matrix for classification."""
    return counts_scatter(report) if "mae" in report else confusion_matrix(report)


def confusion_matrix(report: dict):
    """The confusion matrix of an ``eval.json`` or a ``result.json`` (rows: truth, columns: prediction)."""
    plt = _pyplot()
    matrix, labels = np.array(report["confusion"]), report["labels"]
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(labels), 0.8 + 0.6 * len(labels)))
    plt.close(fig)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel(word("predicted"))
    ax.set_ylabel(word("true"))
    accuracy = report["accuracy"] if "accuracy" in report else report["top1"]  # eval.json or result.json
    ax.set_title(word("validation accuracy of", value=accuracy))
    fig.tight_layout()
    return fig


def counts_scatter(report: dict):
    """Predicted against true head counts of an ``eval.json`` or a ``result.json`` scored with the
    training mean, with the predict-the-mean baseline."""
    plt = _pyplot()
    truth, pred = np.array(report["truth"]), np.array(report["predicted"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    plt.close(fig)
    top = max(1.0, truth.max(initial=0), pred.max(initial=0)) * 1.05
    ax.plot([0, top], [0, top], "--", color="gray", label=word("perfect"))
    ax.axhline(report["train_mean_count"], color="#c44e52", lw=1, label=word("predict the mean"))
    ax.scatter(truth, pred, color="#4c72b0", label="MCNN")
    ax.set_xlabel(word("true count"))
    ax.set_ylabel(word("predicted count"))
    ax.set_title(word("mae title", mae=report["mae"], baseline=report["mean_baseline_mae"]))
    ax.legend()
    fig.tight_layout()
    return fig


def predictions(images: np.ndarray, predicted: np.ndarray, truth: np.ndarray, labels: list[str] | None = None):
    """Images with what a network predicted: with ``labels``, the class (green when right, red
    when not) and the true one; without, the head count against the true count."""
    cols = min(4, len(images))
    fig, axes = _figure(-(-len(images) // cols), cols, cell=2.2)
    for ax, image, guess, true in zip(axes.flat, images, predicted, truth):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        if labels is None:
            ax.set_title(word("count of", predicted=float(guess), true=float(true)), fontsize=9)
        else:
            ax.set_title(word("label of", predicted=labels[guess], true=labels[true]), fontsize=9,
                         color="#2a7d3a" if guess == true else "#c44e52")
    fig.tight_layout()
    return fig


def conversion_chart(rows: list[dict]):
    """Size, batch-1 latency and best throughput of each model of conversion reports
    (rows of ``report["models"]``, possibly from several reports)."""
    plt = _pyplot()
    names = [r["model"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.6 + 0.45 * len(rows)), sharey=True)
    plt.close(fig)
    for ax, (key, label) in zip(axes, (("size_mb", "file size"), ("latency_ms", "latency"),
                                       ("throughput", "best throughput")), strict=True):
        values = [r.get(key) or 0.0 for r in rows]
        bars = ax.barh(range(len(rows)), values, color=["#8c8c8c" if i < 2 else "#4c72b0" for i in range(len(rows))])
        ax.bar_label(bars, labels=[_short(v) for v in bars.datavalues], padding=2)
        ax.set_xlabel(word(label))
        ax.set_xlim(0, max(values, default=1) * 1.25 or 1)
    axes[0].set_yticks(range(len(rows)), names)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def prediction(image, answer: dict, title: str = "", via: str = ""):
    """An image and the service's answer: the top-k scores as bars, or the density map over
    the image with the count. ``image``: a path, bytes or an array; ``via``: the URL that answered
    a path's image (the title then names both)."""
    import io

    from PIL import Image

    plt = _pyplot()
    if via:
        title = word("through", image=Path(image).name, url=via)
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
        right.set_xlabel(word("probability"))
        left.set_title(word("predicted label", label=answer["predicted_label"]))
    else:
        density = np.array(answer["density_map"])
        right.imshow(pixels, alpha=0.6)
        right.imshow(density, cmap="jet", alpha=0.5, extent=(0, pixels.shape[1], pixels.shape[0], 0))
        right.axis("off")
        right.set_title(word("density map"))
        left.set_title(word("count", count=answer["count"]))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def pipeline_timings(stats: dict):
    """Mean and p99 time of each plugin of a pipeline run, and end to end."""
    plt = _pyplot()
    rows = [(word("end to end"), stats["e2e"]), *stats["plugins"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.4 * len(rows)))
    plt.close(fig)
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["mean_ms"] for _, r in rows], 0.4, label=word("mean"), color="#4c72b0")
    ax.barh(y + 0.2, [r["p99_ms"] for _, r in rows], 0.4, label="p99", color="#dd8452")
    ax.set_yticks(y, [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel(word("milliseconds per image"))
    ax.set_title(word("pipeline title", stream=stats["stream"], images=stats["images"]))
    ax.legend()
    fig.tight_layout()
    return fig


def compare_curves(comparison: dict):
    """The learning curves of several jobs on one figure, one colour per job: the training loss,
    and the validation metric that picks each job's best epoch (``train.compare``'s result)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    plt.close(fig)
    metric = comparison["jobs"][0]["metric"]
    for job in comparison["jobs"]:
        epochs = [r["epoch"] for r in job["curves"]]
        left.plot(epochs, [r["loss"] for r in job["curves"]], "o-", label=job["job"])
        right.plot(epochs, [r.get(job["metric"]) for r in job["curves"]], "o-", label=job["job"])
    for ax in (left, right):
        _epoch_axis(ax)
    left.set_ylabel(word("training loss"))
    right.set_ylabel(word("validation accuracy" if metric == "val_acc" else "validation MAE"))
    if metric == "val_acc":
        right.set_ylim(0, 1)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
