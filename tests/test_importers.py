import io
import json
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from helpers import labkit_cli
from labkit import data
from labkit.data.crowd import write_ground_truth
from labkit.errors import LabkitError


def jpeg(colour=(200, 30, 30), size=24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "JPEG")
    return buf.getvalue()


def bomb_png() -> bytes:
    """A small file that claims 100 million pixels."""
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            (root / label / f"{i}.jpg").write_bytes(jpeg((40 * i, 100, 50)))
    (root / "cats" / "truncated.jpg").write_bytes(jpeg()[:200])
    (root / "dogs" / "notes.jpg").write_bytes(b"this is not a JPEG")
    (root / "dogs" / "readme.txt").write_text("hello")
    (root / "dogs" / "bomb.png").write_bytes(bomb_png())
    (root / "stray.jpg").write_bytes(jpeg())
    return root


def test_image_folder_skips_and_reports_bad_files(ws, folder):
    rec = data.import_dataset(folder, name="pets")
    report = rec["report"]
    assert report["imported"] == 6 and rec["classes"] == ["cats", "dogs"]
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert "truncated" in reasons["cats/truncated.jpg"] or "corrupt" in reasons["cats/truncated.jpg"]
    assert "corrupt or not an image" in reasons["dogs/notes.jpg"]
    assert "not an image file" in reasons["dogs/readme.txt"]
    assert "too large" in reasons["dogs/bomb.png"]
    assert "class sub-folder" in reasons["stray.jpg"]
    assert data.show("pets")["report"] == report
    v = data.publish("pets")
    assert v["counts"]["val"]["per_class"] == {"cats": 1, "dogs": 1}


def test_image_folder_does_not_follow_symlinks(ws, folder, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(jpeg())
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    (folder / "cats" / "link.jpg").symlink_to(outside / "x.jpg")
    report = data.import_dataset(folder, name="pets")["report"]
    refused = {r["entry"] for r in report["refused"]}
    assert {"linked", "cats/link.jpg"} <= refused
    assert "linked" not in data.show("pets")["classes"]


def make_zip(path, entries, symlink=None):
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, symlink[1])


def test_zip_refuses_entries_that_would_land_outside(ws, tmp_path):
    archive = tmp_path / "flowers.zip"
    make_zip(archive, {
        "flowers/roses/a.jpg": jpeg(), "flowers/roses/b.jpg": jpeg(), "flowers/tulips/c.jpg": jpeg((0, 0, 200)),
        "flowers/tulips/d.jpg": jpeg((0, 0, 200)), "../escaped.jpg": jpeg(), "/abs/evil.jpg": jpeg(),
        "flowers/tulips/../../../../up.jpg": jpeg(),
    }, symlink=("flowers/roses/link.jpg", "/etc/passwd"))
    rec = data.import_dataset(archive, name="zipped")
    refused = {r["entry"]: r["reason"] for r in rec["report"]["refused"]}
    assert set(refused) == {"../escaped.jpg", "/abs/evil.jpg", "flowers/tulips/../../../../up.jpg", "flowers/roses/link.jpg"}
    assert "symbolic link" in refused["flowers/roses/link.jpg"]
    assert rec["classes"] == ["roses", "tulips"] and rec["count"] == 4
    for p in (tmp_path / "escaped.jpg", tmp_path.parent / "up.jpg", ws / "escaped.jpg", ws.parent / "escaped.jpg"):
        assert not p.exists()
    assert not list(ws.rglob("*escaped*")) and not list(ws.rglob(".extract"))


def test_manifest_import(ws, tmp_path):
    root = tmp_path / "export"
    (root / "img").mkdir(parents=True)
    for i in range(4):
        (root / "img" / f"{i}.jpg").write_bytes(jpeg((60 * i, 0, 0)))
    (tmp_path / "outside.jpg").write_bytes(jpeg())
    lines = [{"source": f"img/{i}.jpg", "annotation": [{"type": "modelarts/image_classification",
                                                        "name": "red" if i % 2 else "dark"}]} for i in range(4)]
    # seed 004's labels: Chinese, with a category before the "/"
    lines += [{"source": f"img/{i}.jpg", "annotation": [{"name": name}]} for i, name in enumerate(["美食/凉皮", "美食/肉夹馍"])]
    lines += [
        {"source": "obs://bucket/x.jpg", "annotation": [{"name": "red"}]},
        {"source": "../outside.jpg", "annotation": [{"name": "red"}]},
        {"source": str(tmp_path / "outside.jpg"), "annotation": [{"name": "red"}]},
        {"source": "img/missing.jpg", "annotation": [{"name": "red"}]},
        {"source": "img/0.jpg", "annotation": [{"name": "../up"}]},
    ]
    manifest = root / "dataset.manifest"
    manifest.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\nnot json\n", encoding="utf-8")
    rec = data.import_dataset(manifest, name="m")
    report = rec["report"]
    assert report["format"] == "manifest" and report["imported"] == 6
    assert rec["class_counts"] == {"dark": 2, "red": 2, "美食/凉皮": 1, "美食/肉夹馍": 1}
    assert sorted(p.name for p in (ws / "datasets" / "m" / "images").iterdir()) == ["dark", "red", "美食_凉皮", "美食_肉夹馍"]
    data.publish("m", train_ratio=0.5)
    assert (ws / "datasets" / "m" / "versions" / "V001" / "labels.txt").read_text(encoding="utf-8").splitlines() == \
        ["dark", "red", "美食/凉皮", "美食/肉夹馍"]
    assert len(report["refused"]) == 2  # the relative and the absolute path out of the tree
    reasons = " ".join(s["reason"] for s in report["skipped"])
    assert "offline" in reasons and "not found" in reasons and "unusable" in reasons and "manifest line" in reasons


def test_shanghaitech_layout(ws, tmp_path):
    root = tmp_path / "part_A_final"
    rng = np.random.default_rng(0)
    for split, gt_name, n in (("train_data", "ground-truth", 4), ("test_data", "ground_truth", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / gt_name).mkdir(parents=True)
        for i in range(1, n + 1):
            (root / split / "images" / f"IMG_{i}.jpg").write_bytes(jpeg(size=64))
            write_ground_truth(root / split / gt_name / f"GT_IMG_{i}.mat", rng.uniform(0, 64, (i * 3, 2)))
    (root / "train_data" / "images" / "IMG_9.jpg").write_bytes(jpeg(size=64))  # no ground truth
    (root / "test_data" / "ground_truth" / "GT_IMG_2.mat").write_bytes(b"damaged")
    rec = data.import_dataset(tmp_path, name="sh")
    assert rec["task"] == "crowd_counting" and rec["source"]["format"] == "shanghaitech"
    assert rec["count"] == 5 and rec["heads"]["total"] == 3 + 6 + 9 + 12 + 3
    reasons = " ".join(s["reason"] for s in rec["report"]["skipped"])
    assert "no ground truth GT_IMG_9.mat" in reasons and "unreadable ground truth" in reasons
    v = data.publish("sh")
    assert v["counts"]["train"]["heads"] + v["counts"]["val"]["heads"] == 33
    # the paper's split: train_data to train (IMG_1-4: 3+6+9+12 heads), test_data to validate (IMG_1)
    official = data.publish("sh", split_by="source")
    assert official["split"] == "source" and "seed" not in official
    assert official["counts"]["train"] == {"images": 4, "heads": 30} and official["counts"]["val"]["heads"] == 3
    assert {r["source"] for r in data.manifest("sh@V002", "val")} == {"images/part_A_final_test_IMG_1.jpg"}
    again = json.loads(labkit_cli("data", "publish", "sh", "--split", "source", "--json",
                                  env={"LABKIT_HOME": str(ws)}).stdout)
    assert again["checksum"] == official["checksum"]
    assert "the source's own train/test split" in labkit_cli("data", "show", "sh@V003", env={"LABKIT_HOME": str(ws)}).stdout


def test_a_manifest_brings_its_own_split_and_generated_data_has_none(ws, tmp_path):
    (tmp_path / "img").mkdir()
    lines = []
    for i in range(6):
        (tmp_path / "img" / f"{i}.jpg").write_bytes(jpeg((40 * i, 0, 0)))
        lines.append({"source": f"img/{i}.jpg", "usage": "EVAL" if i in (0, 3) else "TRAIN",
                      "annotation": [{"type": "modelarts/image_classification", "name": "a" if i < 3 else "b"}]})
    (tmp_path / "m.manifest").write_text("\n".join(json.dumps(x) for x in lines))
    data.import_dataset(tmp_path / "m.manifest", name="m")
    v = data.publish("m", split_by="source")
    assert v["counts"]["train"]["images"] == 4 and v["counts"]["val"]["per_class"] == {"a": 1, "b": 1}
    data.make("flowers", name="fl", count=10, size=32)
    with pytest.raises(LabkitError, match=r"(?s)10 of 10 images have no train/test split of their own.*--split stratified"):
        data.publish("fl", split_by="source")
    assert data.show("fl")["versions"] == []


def test_import_errors_say_what_to_do(ws, tmp_path):
    with pytest.raises(LabkitError, match="does not exist"):
        data.import_dataset(tmp_path / "nothing", name="x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabkitError, match="no usable image") as e:
        data.import_dataset(tmp_path / "empty", name="x")
    assert "sub-folder per class" in e.value.hint
    assert data.list_datasets() == []  # a failed import leaves nothing behind
    assert not list((ws / "datasets").glob(".staging-*"))


def test_a_hostile_zip_with_thousands_of_corrupt_files(ws, tmp_path):
    """Traversal, a symlink, a decompression bomb and 2,000 corrupt images among good ones:
    the good ones are imported, every other entry is skipped or refused with a reason."""
    rng = np.random.default_rng(0)
    entries = {f"set/{label}/{i}.jpg": jpeg((30 * i % 255, 90, 160)) for label in ("a", "b") for i in range(5)}
    entries.update({f"set/{'ab'[i % 2]}/bad{i}.jpg": (jpeg()[:rng.integers(1, 300)] if i % 2 else rng.bytes(64))
                    for i in range(2000)})
    entries.update({"set/a/bomb.png": bomb_png(), "../../outside.jpg": jpeg(), "/tmp/abs.jpg": jpeg()})
    archive = tmp_path / "hostile.zip"
    make_zip(archive, entries, symlink=("set/b/link.jpg", "/etc/passwd"))
    rec = data.import_dataset(archive, name="hostile")
    report = rec["report"]
    assert rec["count"] == 10 and rec["classes"] == ["a", "b"]
    assert len(report["skipped"]) == 2001 and all(s["reason"] for s in report["skipped"])
    assert {r["entry"] for r in report["refused"]} == {"../../outside.jpg", "/tmp/abs.jpg", "set/b/link.jpg"}
    assert not (tmp_path.parent.parent / "outside.jpg").exists() and not list(ws.parent.rglob("outside.jpg"))
