"""labkit eval: result.json from per-image result files and a label file (seed 003's format)."""
import json

import pytest

from helpers import labkit_cli
from labkit import eval as evaluation
from labkit.errors import LabkitError


@pytest.fixture
def results(tmp_path):
    out = tmp_path / "result"
    out.mkdir()
    # image -> (true class, ranked predictions)
    cases = {"a": (0, "0 1 2 3 4"), "b": (1, "0 1 2 3 4"), "c": (2, "3 4 0 1 2"), "d": (1, "1 0 2 3 4")}
    for stem, (_, ranked) in cases.items():
        (out / f"{stem}_1.txt").write_text(ranked + "\n")
    labels = tmp_path / "val_label.txt"
    labels.write_text("".join(f"{stem}.jpg {label}\n" for stem, (label, _) in cases.items()) + "e.jpg 0\n")
    return out, labels


def test_classification_result_json(results, tmp_path):
    out, labels = results
    r = evaluation.classification(out, labels, tmp_path / "result.json", class_names=list("vwxyz"))
    assert (r["top1"], r["top2"], r["top5"]) == (0.5, 0.75, 1.0)
    assert r["missing_results"] == ["e"]
    assert {"key": "Top1 accuracy", "value": "50.00%"} in r["value"]
    assert r["confusion"][1] == [1, 1, 0, 0, 0]
    per_class = {c["class"]: c for c in r["per_class"]}
    assert per_class["w"]["recall"] == 0.5 and per_class["v"]["precision"] == 0.5
    assert json.loads((tmp_path / "result.json").read_text())["top1"] == 0.5


def test_counting_and_the_cli(tmp_path):
    out = tmp_path / "counts"
    out.mkdir()
    for stem, count in (("x", "10.0"), ("y", "4.0")):
        (out / f"{stem}_1.txt").write_text(count + "\n")
    labels = tmp_path / "gt.txt"
    labels.write_text("x.jpg 12\ny.jpg 4\n")
    r = evaluation.counting(out, labels)
    assert r["mae"] == 1.0 and r["rmse"] == pytest.approx(2 ** 0.5)
    proc = labkit_cli("eval", "counting", out, labels, "--out", tmp_path / "r.json")
    assert "MAE 1.000" in proc.stdout and (tmp_path / "r.json").exists()
    record = json.loads(labkit_cli("eval", "counting", out, labels, "--out", tmp_path / "r.json", "--json").stdout)
    assert record == json.loads((tmp_path / "r.json").read_text())


def test_nothing_to_score_is_a_clear_error(results, tmp_path):
    _, labels = results
    with pytest.raises(LabkitError, match="none of the 5 labelled images"):
        evaluation.classification(tmp_path, labels)
    (tmp_path / "bad.txt").write_text("only-a-name\n")
    with pytest.raises(LabkitError, match="is not '<image name> <label>'"):
        evaluation.counting(tmp_path, tmp_path / "bad.txt")


def test_stage_5_scores_against_a_dataset_version(ws, tmp_path):
    from pathlib import Path

    from labkit import data, plots

    data.make("crowd", name="c", count=10, size=64, seed=1)
    data.publish("c", seed=0)
    val, train = data.manifest("c@V001", "val"), data.manifest("c@V001", "train")
    out = tmp_path / "counts"
    out.mkdir()
    for row in val:  # every prediction one head too many
        (out / f"{Path(row['source']).stem}_1.txt").write_text(f"{row['annotation'][0]['count'] + 1}\n")
    r = evaluation.against_dataset(out, "c@V001", tmp_path / "c")
    truth = [row["annotation"][0]["count"] for row in val]
    mean = sum(row["annotation"][0]["count"] for row in train) / len(train)
    assert r["mae"] == pytest.approx(1.0) and r["train_mean_count"] == pytest.approx(mean)
    assert r["mean_baseline_mae"] == pytest.approx(sum(abs(t - mean) for t in truth) / len(truth))
    assert (tmp_path / "c" / "val_label.txt").exists() and (tmp_path / "c" / "result.json").exists()
    assert plots.evaluation(r).axes[0].get_title().startswith("MAE 1.0")

    data.make("flowers", name="f", count=25, size=32)
    data.publish("f", seed=0)
    classes = data.show("f@V001")["classes"]
    out = tmp_path / "classes"
    out.mkdir()
    for row in data.manifest("f@V001", "val"):  # every prediction right
        (out / f"{Path(row['source']).stem}_1.txt").write_text(f"{classes.index(row['annotation'][0]['name'])}\n")
    r = evaluation.against_dataset(out, "f@V001", tmp_path / "f")
    assert r["top1"] == 1.0 and r["labels"] == classes
    assert plots.evaluation(r).axes[0].get_title() == "validation accuracy 100.0%"
    assert plots.dataset_balance("f").axes[0].get_title() == "f: images per class"
    assert "heads" in plots.dataset_balance("c").axes[0].get_title()
