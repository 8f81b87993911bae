import json
import multiprocessing as mp
import os

import pytest

from labkit import data, workspace
from labkit.data.versions import count_bins, split
from labkit.errors import LabkitError


def test_publish_makes_a_self_contained_stratified_version(ws):
    data.make("flowers", name="f", count=50, size=32)
    v = data.publish("f", train_ratio=0.8, seed=0)
    assert v["version"] == "V001"
    assert v["counts"]["train"]["per_class"] == {c: 8 for c in ("daisy", "dandelion", "roses", "sunflowers", "tulips")}
    vdir = data.version_dir("f@V001")
    train, val = data.manifest("f@V001", "train"), data.manifest("f@V001", "val")
    assert len(train) == 40 and len(val) == 10
    assert not {m["source"] for m in train} & {m["source"] for m in val}
    for m in train + val:  # every file the manifests name is inside the version
        assert (vdir / m["source"]).is_file()
    assert (vdir / "labels.txt").read_text().split() == v["classes"]


def test_same_data_and_seed_give_the_same_split_and_checksum(ws, tmp_path, monkeypatch):
    data.make("food", name="a", count=40, size=32, seed=5)
    va = data.publish("a", seed=7)
    val_a = data.manifest("a@V001", "val")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "other"))
    data.make("food", name="a", count=40, size=32, seed=5)
    vb = data.publish("a", seed=7)
    vc = data.publish("a", seed=8)
    assert va["checksum"] == vb["checksum"]
    assert data.manifest("a@V001", "val") == val_a
    assert vc["checksum"] != vb["checksum"]
    assert {m["source"] for m in data.manifest("a@V002", "val")} != {m["source"] for m in data.manifest("a@V001", "val")}


def test_split_is_stratified_per_class():
    entries = [{"file": f"{c}/{i}.jpg", "label": c} for c, n in (("a", 10), ("b", 5), ("c", 2)) for i in range(n)]
    sides = split(entries, [e["label"] for e in entries], 0.8, seed=0)
    for label, n_train in (("a", 8), ("b", 4), ("c", 1)):
        assert sum(s == "train" for e, s in zip(entries, sides) if e["label"] == label) == n_train


def test_crowd_split_covers_every_density_band(ws):
    data.make("crowd", name="c", count=40, size=64, seed=0)
    v = data.publish("c", seed=0)
    assert v["density"] == {"sigma": 4.0, "downsample": 4}
    bins = count_bins([e["annotation"][0]["count"] for e in data.manifest("c@V001", "train") + data.manifest("c@V001", "val")])
    assert len(set(bins)) >= 3
    for m in data.manifest("c@V001", "val"):
        import numpy as np

        density = np.load(data.version_dir("c@V001") / m["annotation"][0]["density_map"])
        assert density.shape == (16, 16)
        assert density.sum() == pytest.approx(m["annotation"][0]["count"], abs=1e-3)


def test_versions_are_immutable(ws):
    data.make("digits", name="d", count=40, size=16)
    v1 = data.publish("d", seed=0)
    before = (data.version_dir("d@V001") / "val.jsonl").read_text()
    data.publish("d", train_ratio=0.5, seed=1)
    assert (data.version_dir("d@V001") / "val.jsonl").read_text() == before
    assert data.show("d@V001")["checksum"] == v1["checksum"]
    assert data.show("d")["versions"] == ["V001", "V002"]


def _publish_in_child(home, q):
    os.environ["LABKIT_HOME"] = home
    q.put(data.publish("f", seed=0)["version"])


def test_concurrent_publishes_get_distinct_versions_and_valid_records(ws):
    data.make("flowers", name="f", count=30, size=32)
    q = mp.get_context("spawn").Queue()
    procs = [mp.get_context("spawn").Process(target=_publish_in_child, args=(str(ws), q)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    got = sorted(q.get(timeout=5) for _ in procs)
    assert got == [f"V{i:03d}" for i in range(1, 9)]
    checksums = {json.loads((data.version_dir(f"f@{v}") / "version.json").read_text())["checksum"] for v in got}
    assert len(checksums) == 1  # same data, same seed: every version identical in content
    assert not list((ws / "datasets" / "f" / "versions").glob(".staging-*"))


def test_a_killed_publish_leaves_no_version(ws):
    data.make("flowers", name="f", count=10, size=32)
    vroot = ws / "datasets" / "f" / "versions"
    vroot.mkdir()
    dead = vroot / ".staging-999999999-abc"  # as a publish killed mid-way leaves it
    (dead / "images").mkdir(parents=True)
    assert data.show("f")["versions"] == []
    assert data.publish("f")["version"] == "V001"
    assert not dead.exists()


def test_atomic_write_never_leaves_a_partial_record(tmp_path):
    path = tmp_path / "r.json"
    workspace.write_json(path, {"a": 1})

    class Boom:  # json.dump fails half-way through
        pass

    with pytest.raises(TypeError):
        workspace.write_json(path, {"a": 2, "b": Boom()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_errors_name_the_fix(ws):
    with pytest.raises(LabkitError) as e:
        data.publish("nope")
    assert "labkit data make" in e.value.hint
    data.make("digits", name="d", count=20, size=16)
    with pytest.raises(LabkitError, match="no published version"):
        data.version_dir("d")
    with pytest.raises(LabkitError, match="between 0 and 1"):
        data.publish("d", train_ratio=1.0)
    data.publish("d")
    with pytest.raises(LabkitError, match="no version V009"):
        data.show("d@V009")
    with pytest.raises(LabkitError, match="already exists"):
        data.make("digits", name="d", count=30, size=16)
    assert data.make("digits", name="d", count=20, size=16)["reused"]
    with pytest.raises(LabkitError, match="invalid dataset name"):
        data.make("digits", name="../evil", count=20, size=16)


@pytest.mark.parametrize("numbering, published, following", [
    (workspace.SEQUENCE, ["V002", "V010", "V009"], "V011"),
    (workspace.SEMVER, ["0.0.9", "0.0.10", "0.1.0", "0.0.2"], "0.1.1"),
])
def test_each_area_numbers_its_versions_in_its_own_spelling(tmp_path, numbering, published, following):
    for version in published:
        (tmp_path / version).mkdir()
    (tmp_path / "notes").mkdir()  # not a version
    assert workspace.versions(tmp_path, numbering) == sorted(published, key=numbering.key)
    assert workspace.next_version(tmp_path, numbering) == following
    assert workspace.next_version(tmp_path / "empty", numbering) == numbering.first
    staged = workspace.staging_dir(tmp_path)
    with pytest.raises(LabkitError, match=f"(?s)already has version {published[0]}.*the next free one is {following}"):
        workspace.publish_version(staged, tmp_path, numbering, published[0])
    assert staged.is_dir()  # a refused publish keeps what was staged
    assert workspace.publish_version(staged, tmp_path, numbering) == following
