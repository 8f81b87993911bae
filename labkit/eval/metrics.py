"""Evaluation from files, as seed 003's ``classification_task_metric.py`` does it: a directory of
per-image result files and a label file in, ``result.json`` out.

- result files: ``<image stem>_1.txt``; for classification the first line holds the predicted
  class indices, best first (top-5), separated by spaces; for counting, the predicted count.
- label file: one ``<image file name> <label>`` per line (the class index, or the true count).

Classification writes top-1 to top-5 accuracy (the seed's "Overall statistical evaluation"),
plus per-class precision and recall and the confusion matrix; counting writes MAE and RMSE
(what the crowd-counting literature calls MSE).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from labkit import workspace
from labkit.errors import LabkitError
from labkit.tasks import COUNTING


def read_labels(label_file: Path) -> dict[str, str]:
    try:
        lines = Path(label_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabkitError(f"cannot read the label file {label_file}: {getattr(exc, 'strerror', None) or exc}",
                          "give a UTF-8 text file of '<image name> <label>' lines, one per image") from None
    found = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise LabkitError(f"{label_file}:{n}: {line!r} is not '<image name> <label>'", "fix that line")
        found[Path(parts[0]).stem] = parts[1]
    return found


def _matched(result_dir: Path, label_file: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(image stem, first line of its result file, its label) for every labelled image that
    has a result file, and the stems of those that have none."""
    labels = read_labels(label_file)
    if not labels:
        raise LabkitError(f"{label_file} has no labels", "one '<image name> <label>' per line")
    pairs, missing = [], []
    for stem, label in labels.items():
        path = Path(result_dir) / f"{stem}_1.txt"
        if path.is_file():
            try:
                first = path.read_text(encoding="utf-8").split("\n")[0].strip()
            except UnicodeDecodeError:
                raise LabkitError(f"the result file {path} is not UTF-8 text",
                                  "result files hold class indices or a count, one per line") from None
            pairs.append((stem, first, label))
        else:
            missing.append(stem)
    if not pairs:
        raise LabkitError(f"none of the {len(labels)} labelled images has a result file in {result_dir}",
                          "result files are named <image stem>_1.txt")
    return pairs, missing


def classification(result_dir: Path, label_file: Path, out: Path | None = None,
                   class_names: list[str] | None = None) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    pairs, missing = _matched(result_dir, label_file)
    truth, ranked = [], []
    for stem, line, label in pairs:
        try:
            ranked.append([int(v) for v in line.split()][:5])
            truth.append(int(label))
        except ValueError:
            raise LabkitError(f"{stem}: result or label is not a class index ({line!r}, {label!r})",
                              "results hold class indices, best first; labels one index per image") from None
    classes = max(max(truth), max(max(r) for r in ranked if r)) + 1
    if class_names:
        classes = max(classes, len(class_names))
    top = np.full((len(ranked), 5), -1)
    for i, r in enumerate(ranked):
        top[i, :len(r)] = r
    y = np.array(truth)
    accuracy = {f"top{k}": float((top[:, :k] == y[:, None]).any(1).mean()) for k in range(1, 6)}
    answered = top[:, 0] >= 0  # an image without a result counts against top-k, not in the matrix
    confusion = confusion_matrix(y[answered], top[answered, 0], labels=range(classes))
    precision, recall, _, _ = precision_recall_fscore_support(y[answered], top[answered, 0], labels=range(classes),
                                                              zero_division=0)
    names = class_names or [str(i) for i in range(classes)]
    result = {
        "title": "Overall statistical evaluation",
        "value": [{"key": "Number of images", "value": str(len(y))},
                  {"key": "Number of classes", "value": str(classes)},
                  *({"key": f"Top{k} accuracy", "value": f"{100 * accuracy[f'top{k}']:.2f}%"} for k in range(1, 6))],
        **accuracy,
        "per_class": [{"class": names[c], "precision": float(precision[c]), "recall": float(recall[c]),
                       "support": int(confusion[c].sum())} for c in range(classes)],
        "confusion": confusion.tolist(), "labels": names, "missing_results": missing,
    }
    if out:
        workspace.write_json(Path(out), result)
    return result


def counting(result_dir: Path, label_file: Path, out: Path | None = None, train_mean: float | None = None) -> dict:
    """MAE and RMSE of the counts; with ``train_mean`` (the training split's mean count), also the
    MAE of predicting that mean for every image: the baseline a counting model must beat."""
    pairs, missing = _matched(result_dir, label_file)
    pred, truth = [], []
    for stem, line, label in pairs:
        try:
            pred.append(float(line.split()[0]))
            truth.append(float(label))
        except (ValueError, IndexError):
            raise LabkitError(f"{stem}: result or label is not a count ({line!r}, {label!r})",
                              "result files hold the predicted count; labels the true count") from None
    err = np.array(pred) - np.array(truth)
    result = {"title": "Overall statistical evaluation",
              "value": [{"key": "Number of images", "value": str(len(err))},
                        {"key": "MAE", "value": f"{np.abs(err).mean():.3f}"},
                        {"key": "MSE (RMSE)", "value": f"{np.sqrt((err ** 2).mean()):.3f}"}],
              "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
              "predicted": [round(p, 3) for p in pred], "truth": truth, "missing_results": missing}
    if train_mean is not None:
        baseline = float(np.abs(np.array(truth) - train_mean).mean())
        result["value"].append({"key": "MAE of predicting the training mean", "value": f"{baseline:.3f}"})
        result.update(train_mean_count=float(train_mean), mean_baseline_mae=baseline)
    if out:
        workspace.write_json(Path(out), result)
    return result


def against_dataset(result_dir: Path, dataset: str, out_dir: Path) -> dict:
    """Score result files against a dataset version's validation split, as stage 5 does: writes
    ``val_label.txt`` and ``result.json`` in ``out_dir``. Classes are named as in the version;
    counting also gets the baseline of predicting the training split's mean count."""
    from labkit import data

    version = data.show(dataset)
    labels = write_label_file(dataset, Path(out_dir) / "val_label.txt")
    if version["task"] == COUNTING:
        train_mean = float(np.mean([row["annotation"][0]["count"] for row in data.manifest(dataset, "train")]))
        return counting(result_dir, labels, Path(out_dir) / "result.json", train_mean=train_mean)
    return classification(result_dir, labels, Path(out_dir) / "result.json", class_names=version["classes"])


def write_label_file(dataset: str, out: Path, split: str = "val") -> Path:
    """The label file of a dataset version's split (``image name`` and class index or count)."""
    from labkit import data

    version = data.version_dir(dataset)
    meta = json.loads((version / "version.json").read_text(encoding="utf-8"))
    names = (version / "labels.txt").read_text(encoding="utf-8").split("\n")[:-1] if meta["task"] != COUNTING else []
    lines = []
    for row in data.manifest(dataset, split):
        ann = row["annotation"][0]
        label = names.index(ann["name"]) if names else ann["count"]
        lines.append(f"{Path(row['source']).name} {label}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(out)
