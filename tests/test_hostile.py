"""Files from someone else, made by hand as an attacker makes them: packs re-signed after each
change (so that only what is inside the records can give them away), imports, and records left
in the workspace. Every one is refused with one clear error, nothing outside the workspace is
touched, and the workspace is as it was; records that are damaged in place are skipped by the
lists and refused by name. docs/RELIABILITY.md lists the classes."""
import hashlib
import io
import json
import os
import tarfile
import zipfile

import pytest

from helpers import labkit_cli, listing, members, quiet, resign, write_archive
from labkit import data, packs, train
from labkit.errors import LabkitError



OUT = "../../../outside/evil.jpg"  # from a dataset's folder (workspace/datasets/NAME): the test's tmp_path
DEEP = "[" * 20_000 + "]" * 20_000  # deeper than Python's recursion limit, in one short line


def edit(files, name, change):
    """Rewrite the JSON member ``name`` through ``change(record)``, which changes it in place."""
    record = json.loads(files[name])
    change(record)
    files[name] = json.dumps(record, ensure_ascii=False).encode()


def edit_lines(files, name, change):
    """Rewrite the JSON-lines member ``name`` through ``change(list of records)``, which changes
    the records in place or returns a new list of them."""
    rows = [json.loads(line) for line in files[name].decode().splitlines() if line.strip()]
    new = change(rows)
    files[name] = "".join(json.dumps(r, ensure_ascii=False) + "\n"
                          for r in (new if isinstance(new, list) else rows)).encode()


def first_item(key, value):
    def change(rows):
        rows[0][key] = value
    return change


JOB, MODEL, CONVERSION = "parts/1/run.json", "parts/0/", "parts/2/run.json"
ITEMS, SPLIT = "parts/0/items.jsonl", "parts/0/versions/V001/train.jsonl"

# (pack, change(manifest, files), words the refusal must say); every pack is re-signed afterwards
PACKS = {
    # a job that would run something: only a COMPLETED job is unpacked, whatever it carries
    "stopped job with a command": ("job", lambda m, f: (
        edit(f, JOB, lambda r: r.update(state="STOPPED", command=["sh", "-c", "touch pwned"])),
        f.update({"parts/1/output/checkpoints/epoch_001.pth": b"not a checkpoint"})), "only a COMPLETED job"),
    "failed job": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(state="FAILED")), "only a COMPLETED job"),
    "job data_url elsewhere": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(data_url="/etc")), "'data_url' points"),
    "job train_url elsewhere": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(train_url="/tmp")), "'train_url' points"),
    "job without its engine": ("job", lambda m, f: edit(f, JOB, lambda r: r.pop("engine")), "field 'engine'"),
    "job hyper of the wrong type": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(hyper="lr=1")), "field 'hyper'"),
    "job hyper name with NUL": ("job", lambda m, f: edit(f, JOB, lambda r: r["hyper"].update({"a\x00b": 1})), "field 'hyper"),
    "job record nested deeply": ("job", lambda m, f: f.update({JOB: DEEP.encode()}), "nested"),
    "job record not JSON": ("job", lambda m, f: f.update({JOB: b"{\"job\": "}), "not JSON"),
    "job record of another job": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(job="other")), "holds the record of"),
    "job of an unknown engine": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(engine="tensorflow")), "field 'engine'"),
    "job name with a terminal escape": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(job="mc\x1b[2J")), "field 'job'"),
    "job trained on data not in the pack": ("job", lambda m, f: edit(f, JOB, lambda r: r.update(dataset="gone@V001")),
                                            "does not hold"),
    "job files declared a model": ("job", lambda m, f: m["parts"][1].update(kind="model", dir="models/mc/0.0.1",
                                                                            ref="mc@0.0.1"), "field 'model'"),
    "job world of 10^6 processes": ("job", lambda m, f: edit(f, JOB, lambda r: r["world"].update(size=10**6)), "world.size"),
    # a dataset whose records name files elsewhere
    "item climbing out": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", OUT)), "unsafe path"),
    "item absolute": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", "/tmp/evil.jpg")), "absolute"),
    "item with NUL": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", "images/a\x00.jpg")), "control character"),
    "item with backslashes": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", "images\\..\\..\\x.jpg")),
                              "backslash"),
    "item name over 255 bytes": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", "images/" + "a" * 300)),
                                 "longer than 255"),
    "item over the dataset's record": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", "dataset.json")),
                                       "not under"),
    "item listed twice": ("job", lambda m, f: edit_lines(f, ITEMS, lambda rows: rows + rows[:1]), "listed twice"),
    "item not in the version": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("file", "images/none.jpg")),
                                "is not in version"),
    "ground truth climbing out": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("ground_truth", OUT)),
                                  "unsafe path"),
    "items line not JSON": ("job", lambda m, f: f.update({ITEMS: f[ITEMS] + b"{oops\n"}), "not JSON"),
    "items line nested deeply": ("job", lambda m, f: f.update({ITEMS: f[ITEMS] + DEEP.encode() + b"\n"}), "nested"),
    "item count negative": ("job", lambda m, f: edit_lines(f, ITEMS, first_item("count", -5)), "field 'count'"),
    "crowd item without its count": ("job", lambda m, f: edit_lines(f, ITEMS, lambda rows: rows[0].pop("count")),
                                     "needs count"),
    "dataset record of another name": ("job", lambda m, f: edit(f, "parts/0/dataset.json", lambda r: r.update(name="x")),
                                       "name another dataset"),
    "dataset record without task": ("job", lambda m, f: edit(f, "parts/0/dataset.json", lambda r: r.pop("task")),
                                    "field 'task'"),
    "version checksum not hex": ("job", lambda m, f: edit(f, "parts/0/versions/V001/version.json",
                                                          lambda r: r.update(checksum="zz")), "field 'checksum'"),
    "split line climbing out": ("job", lambda m, f: edit_lines(f, SPLIT, first_item("source", "../../x.jpg")),
                                "unsafe path"),
    "split line of another image": ("job", lambda m, f: edit_lines(f, SPLIT, first_item("sha256", "0" * 64)),
                                    "differs from it"),
    "split line without annotation": ("job", lambda m, f: edit_lines(f, SPLIT, first_item("annotation", [])),
                                      "field 'annotation'"),
    "split lines changed, checksum kept": ("job", lambda m, f: edit_lines(f, SPLIT, lambda rows: rows[1:]),
                                           "does not match its own checksum"),
    "a second version": ("job", lambda m, f: f.update({"parts/0/versions/V002/version.json": b"{}"}), "not one version"),
    "dataset part with loose images": ("job", lambda m, f: f.update({"parts/0/images/x.jpg": b"x"}),
                                       "files a dataset version does not"),
    "class name with a terminal escape": ("flowers", lambda m, f: edit(f, "parts/0/dataset.json",
                                                                       lambda r: r["classes"].append("\x1b]0;pwned\x07")),
                                          "field 'classes"),
    "class name climbing": ("flowers", lambda m, f: edit(f, "parts/0/dataset.json", lambda r: r["classes"].append("../x")),
                            "field 'classes"),
    # the manifest itself
    "part going elsewhere": ("job", lambda m, f: m["parts"][1].update(dir="jobs/../../../etc"), "malformed"),
    "part under another name": ("job", lambda m, f: m["parts"][1].update(ref="other@V001"), "malformed"),
    "no parts": ("model", lambda m, f: (m.update(parts=[]), f.clear()), "malformed"),
    "nine parts": ("model", lambda m, f: m.update(parts=m["parts"] * 9), "malformed"),
    "manifest nested deeply": ("model", lambda m, f: m.update(versions={"x": json.loads("[" * 900 + "]" * 900)}),
                               "nested"),
    "manifest with a huge version string": ("model", lambda m, f: m["versions"].update(torch="9" * 10_000), "malformed"),
    # a conversion whose records point elsewhere, or that did not finish
    "conversion job_run elsewhere": ("conversion", lambda m, f: edit(f, CONVERSION, lambda r: r.update(job_run="/")),
                                     "'job_run' points"),
    "conversion STOPPED": ("conversion", lambda m, f: edit(f, CONVERSION, lambda r: r.update(state="STOPPED")),
                           "only a COMPLETED conversion"),
    "conversion of a job the pack lacks": ("conversion", lambda m, f: edit(f, CONVERSION, lambda r: r.update(
        job="other@V001")), "does not hold"),
    "conversion report without models": ("conversion", lambda m, f: edit(f, "parts/2/report.json", lambda r: r.update(
        models=[])), "field 'models'"),
    "job confusion matrix not square": ("job", lambda m, f: edit(f, "parts/1/output/eval.json", lambda r: r.update(
        confusion=[[1, 2]])), "square"),
    # a model that would read files elsewhere or load code
    "model FAILED": ("model", lambda m, f: edit(f, MODEL + "run.json", lambda r: r.update(state="FAILED")),
                     "only a NORMAL model"),
    "serving of an unknown datatype": ("model", lambda m, f: edit(f, MODEL + "serving.json",
                                                                  lambda r: r["input"].update(datatype="INT64")),
                                       "field 'input.datatype'"),
    "model that is not ONNX": ("model", lambda m, f: f.update({MODEL + "model.onnx": b"\x08\x07garbage" * 10}),
                               "not an ONNX model"),
    "model reading external data": ("model", lambda m, f: f.update({MODEL + "model.onnx": onnx_model(external=True)}),
                                    "external files"),
    "model with custom operators": ("model", lambda m, f: f.update({MODEL + "model.onnx": onnx_model(domain="evil.ops")}),
                                    "custom operators"),
}


def onnx_model(external: bool = False, domain: str = "") -> bytes:
    """A one-node ONNX model whose weight lives in an external file (``../../etc/passwd``), or
    whose operator comes from a custom domain."""
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    if external:
        weight.ClearField("float_data")
        weight.data_location = TensorProto.EXTERNAL
        weight.external_data.add(key="location", value="../../../../etc/passwd")
    node = helper.make_node("Add" if not domain else "Evil", ["images", "w"], ["density"], domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("density", TensorProto.FLOAT, [1])], [weight])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def hostile(instructor, tmp_path, pack, change):
    _, out = instructor
    files = members(out / f"{pack}.tar.gz")
    manifest = json.loads(files.pop("manifest.json"))
    change(manifest, files)
    return write_archive(tmp_path / "hostile.tar.gz", files, resign(manifest, files))


@pytest.mark.parametrize("case", list(PACKS))
def test_a_hostile_pack_is_refused_and_changes_nothing(instructor, ws, tmp_path, case):
    pack, change, words = PACKS[case]
    archive = hostile(instructor, tmp_path, pack, change)
    (tmp_path / "outside").mkdir()
    data.make("flowers", name="mine", count=10, size=32)  # the learner's own work
    before = listing(tmp_path)
    with pytest.raises(LabkitError, match=words) as e:
        packs.unpack(archive, log=quiet)
    assert "nothing was written" in e.value.message + e.value.hint
    assert listing(tmp_path) == before


def test_a_refused_pack_answers_on_the_command_line_with_no_traceback(instructor, ws, tmp_path):
    archive = hostile(instructor, tmp_path, "job", PACKS["item climbing out"][1])
    proc = labkit_cli("unpack", archive, check=False, env={"LABKIT_HOME": str(ws)})
    assert proc.returncode == 1 and proc.stderr.startswith("error: hostile.tar.gz is refused")
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr


def test_a_job_pack_never_makes_labkit_run_what_it_carries(instructor, ws, tmp_path):
    """A COMPLETED job carrying a command and run-time fields is installed without them; resume
    refuses it. A STOPPED job left in the workspace with a command of its own: resume runs
    labkit's training script, composed from the catalog card, never that command."""
    marker = tmp_path / "pwned"
    evil = ["sh", "-c", f"touch {marker}"]
    archive = hostile(instructor, tmp_path, "job", lambda m, f: edit(f, JOB, lambda r: r.update(command=evil, pid=1)))
    packs.unpack(archive, log=quiet)
    record = json.loads((ws / "jobs/mc/V001/run.json").read_text())
    assert "command" not in record and "pid" not in record
    with pytest.raises(LabkitError, match="only a FAILED or STOPPED job can be resumed"):
        train.resume("mc")

    # the same job made STOPPED in place, with an epoch checkpoint: as a crash or another tool could leave it
    run = ws / "jobs/mc/V001"
    record.update(state="STOPPED", command=evil)
    (run / "run.json").write_text(json.dumps(record))
    checkpoints = run / "output" / "checkpoints"
    (checkpoints / "epoch_002.pth").write_bytes((checkpoints / "best.pth").read_bytes())
    done = train.resume("mc", wait=True, log=quiet)
    assert not marker.exists()
    started = (run / "train.log").read_text().split("$ ")[-1].splitlines()[0]
    assert "labkit/algorithms/pytorch/train.py" in started and "--resume=" in started and "touch" not in started
    assert done["command"] != evil


def test_a_part_that_cannot_go_in_takes_back_the_parts_already_moved(instructor, ws, tmp_path, monkeypatch):
    """All or nothing: the dataset is moved into place, then the job finds its place taken; the
    dataset goes back out, and the workspace is as it was."""
    _, out = instructor
    (ws / "jobs/mc/V001").mkdir(parents=True)
    (ws / "jobs/mc/V001/keep.txt").write_text("the learner's")
    monkeypatch.setattr(packs, "_plan", lambda archive, manifest, home: [True] * len(manifest["parts"]))
    before = listing(tmp_path)
    with pytest.raises(LabkitError, match="appeared here while unpacking"):
        packs.unpack(out / "job.tar.gz", log=quiet)
    assert listing(tmp_path) == before and not (ws / "datasets" / "cr").exists()


# --- imports -----------------------------------------------------------------------------------

def jpeg(seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (16, 16, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def zip_of(path, entries, links=()):
    """A zip of ``entries`` ((name, bytes) pairs; a name may come twice) and symlink entries."""
    import warnings

    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name: that is the point
        for name, payload in entries:
            zf.writestr(zipfile.ZipInfo(name), payload)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return path


ARCHIVES = {"zip": zip_of, "tar.gz": write_archive}
GOOD = [("flowers/roses/a.jpg", jpeg(0)), ("flowers/tulips/b.jpg", jpeg(1))]
# (what the source holds besides GOOD, the reason the import report gives for the hostile entry)
IMPORTS = {
    "entry climbing out": ([("flowers/roses/../../../outside/evil.jpg", jpeg(2))], "'..'"),
    "entry absolute": ([("/tmp/outside/evil.jpg", jpeg(2))], "absolute path"),
    "entry with backslashes": ([("flowers\\..\\..\\evil.jpg", jpeg(2))], "backslash"),
    "entry with a drive": ([("C:/evil.jpg", jpeg(2))], "absolute path"),
    "entry over 255 bytes": ([("flowers/roses/" + "e" * 300 + ".jpg", jpeg(2))], "longer than 255"),
    "entry with a control character": ([("flowers/roses/\x1b[31m.jpg", jpeg(2))], "control character"),
    "entry with a '.' part": ([("flowers/roses/./c.jpg", jpeg(3))], "'.' component"),
    "entry twice": ([("flowers/roses/a.jpg", jpeg(3))], "holds this name twice"),
    "file where a folder goes": ([("flowers/lilies", b"x"), ("flowers/lilies/d.jpg", jpeg(2))], "is a file"),
    "symlink": ([], "symbolic link"),
}
# what only a tar can hold
TAR_SPECIALS = {"hard link": (tarfile.LNKTYPE, "hard link"), "device": (tarfile.CHRTYPE, "not a plain file"),
                "pipe": (tarfile.FIFOTYPE, "not a plain file")}


@pytest.mark.parametrize("fmt", list(ARCHIVES))
@pytest.mark.parametrize("case", list(IMPORTS))
def test_a_hostile_archive_imports_only_what_is_safe(ws, tmp_path, case, fmt):
    entries, reason = IMPORTS[case]
    links = [("flowers/roses/link.jpg", "/etc/passwd")] if case == "symlink" else []
    archive = ARCHIVES[fmt](tmp_path / f"photos.{fmt}", GOOD + entries, links=links)
    (tmp_path / "outside").mkdir()
    rec = data.import_dataset(archive, "photos")
    assert rec["count"] == 2 and [r for r in rec["report"]["refused"] if reason in r["reason"]], rec["report"]
    assert not any((tmp_path / "outside").iterdir()) and not (tmp_path.parent / "evil.jpg").exists()


@pytest.mark.parametrize("case", list(TAR_SPECIALS))
def test_a_tar_holding_links_and_devices_imports_only_plain_files(ws, tmp_path, case):
    kind, reason = TAR_SPECIALS[case]
    archive = write_archive(tmp_path / "photos.tgz", GOOD, specials=[("flowers/roses/z.jpg", kind)])
    rec = data.import_dataset(archive, "photos")
    assert rec["count"] == 2 and rec["report"]["refused"] == [{"entry": "flowers/roses/z.jpg", "reason": rec["report"][
        "refused"][0]["reason"]}] and reason in rec["report"]["refused"][0]["reason"]


def test_a_tar_made_with_dot_slash_names_imports_like_any_other(ws, tmp_path):
    archive = write_archive(tmp_path / "photos.tar.gz", [(f"./{name}", payload) for name, payload in GOOD])
    rec = data.import_dataset(archive, "photos")
    assert rec["count"] == 2 and rec["classes"] == ["roses", "tulips"] and not rec["report"]["refused"]


def test_a_truncated_tar_is_refused_whole_and_leaves_nothing(ws, tmp_path):
    archive = write_archive(tmp_path / "photos.tgz", GOOD + [(f"flowers/roses/{i}.jpg", jpeg(i)) for i in range(40)])
    archive.write_bytes(archive.read_bytes()[:-300])
    before = listing(ws)
    with pytest.raises(LabkitError, match="not a readable tar archive") as err:
        data.import_dataset(archive, "photos")
    assert "nothing was imported" in err.value.hint
    assert listing(ws) == before and data.list_datasets() == []


def test_a_zip_with_a_damaged_entry_imports_the_rest(ws, tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in GOOD + [("flowers/tulips/big.jpg", jpeg(3) * 20)]:
            zf.writestr(name, payload)
    raw = bytearray(archive.read_bytes())
    start = raw.find(b"flowers/tulips/big.jpg") + len("flowers/tulips/big.jpg") + 10
    raw[start:start + 40] = bytes(b ^ 0x55 for b in raw[start:start + 40])  # its compressed bytes, broken
    archive.write_bytes(bytes(raw))
    rec = data.import_dataset(archive, "photos")
    assert rec["count"] == 2 and "damaged or unsupported entry" in rec["report"]["skipped"][0]["reason"]


def test_names_from_outside_are_printed_with_control_characters_escaped(ws, tmp_path):
    archive = zip_of(tmp_path / "photos.zip", GOOD + IMPORTS["entry with a control character"][0])
    proc = labkit_cli("data", "import", archive, "--name", "photos", env={"LABKIT_HOME": str(ws)})
    assert "refused flowers/roses/\\x1b[31m.jpg" in proc.stdout and "\x1b" not in proc.stdout + proc.stderr


def test_a_manifest_naming_files_elsewhere_imports_only_its_own(ws, tmp_path):
    folder = tmp_path / "export"
    (folder / "images").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(jpeg(5))
    (folder / "images" / "a.jpg").write_bytes(jpeg(0))
    (folder / "images" / "b.jpg").write_bytes(jpeg(1))
    os.symlink(tmp_path / "secret.jpg", folder / "images" / "link.jpg")
    ann = [{"name": "roses", "type": "modelarts/image_classification"}]
    lines = [{"source": s, "annotation": ann} for s in
             ("images/a.jpg", "./images/b.jpg", "../secret.jpg", str(tmp_path / "secret.jpg"), "images/link.jpg",
              "images\\a.jpg", "images/a\x00.jpg")]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    text += json.dumps({"source": "images/a.jpg", "annotation": [{"name": "\x1b[2Jroses"}]}) + "\n"
    text += DEEP + "\n" + '{"source": 7, "annotation": "x"}\n'
    (folder / "data.manifest").write_text(text)
    rec = data.import_dataset(folder / "data.manifest", "mf")
    assert rec["count"] == 2 and rec["classes"] == ["roses"]
    assert len(rec["report"]["refused"]) == 5 and len(rec["report"]["skipped"]) == 3, rec["report"]


def test_a_shanghaitech_tree_with_links_and_damaged_ground_truth(ws, tmp_path):
    from labkit.data.crowd import write_ground_truth

    root = tmp_path / "ShanghaiTech" / "part_A_final" / "train_data"
    (root / "images").mkdir(parents=True)
    (root / "ground-truth").mkdir()
    for i in (1, 2):
        (root / "images" / f"IMG_{i}.jpg").write_bytes(jpeg(i))
        write_ground_truth(root / "ground-truth" / f"GT_IMG_{i}.mat", [[3.0, 4.0]])
    (root / "ground-truth" / "GT_IMG_2.mat").write_bytes(b"MATLAB 5.0 damaged")
    (tmp_path / "secret.jpg").write_bytes(jpeg(5))
    os.symlink(tmp_path / "secret.jpg", root / "images" / "IMG_3.jpg")
    write_ground_truth(root / "ground-truth" / "GT_IMG_3.mat", [[1.0, 1.0]])
    rec = data.import_dataset(tmp_path / "ShanghaiTech", "sh")
    assert rec["count"] == 1
    assert [r["reason"] for r in rec["report"]["refused"]] == ["symbolic link (not followed)"]
    assert "unreadable ground truth" in rec["report"]["skipped"][0]["reason"]


# --- records left in the workspace ---------------------------------------------------------------

RECORDS = {
    # (file planted in the workspace, its content, the listing that must skip it)
    "job record not JSON": ("jobs/bad/V001/run.json", b"{", ("train", "list")),
    "job record nested deeply": ("jobs/bad/V001/run.json", DEEP.encode(), ("train", "list")),
    "job record missing fields": ("jobs/bad/V001/run.json", b'{"job": "bad"}', ("train", "list")),
    "job folder without a record": ("jobs/bad/V001/output/x", b"", ("train", "list")),
    "model record of a job": ("models/bad/0.0.1/run.json", b'{"job": "bad", "state": "COMPLETED"}', ("model", "list")),
    "model serving of the wrong type": ("models/bad/0.0.1/serving.json", b'{"task": 5}', ("model", "list")),
    "conversion record with a wrong state": ("conversions/bad/V001/run.json", b'{"task": "bad", "state": "DONE"}',
                                             ("convert", "list")),
    "service record with a string for instances": ("services/bad/run.json",
                                                   b'{"service": "bad", "model": "m@0.0.1", "state": "RUNNING", '
                                                   b'"timestamps": {}, "instances": "2"}', ("service", "list")),
    "dataset record as a list": ("datasets/bad/dataset.json", b"[1, 2]", ("data", "list")),
    "dataset record with a NUL class": ("datasets/bad/dataset.json",
                                        b'{"name": "bad", "task": "crowd_counting", "classes": ["a\\u0000"], "count": 1}',
                                        ("data", "list")),
}


@pytest.mark.parametrize("case", list(RECORDS))
def test_a_damaged_record_is_skipped_by_lists_and_status_with_a_warning(ws, case):
    rel, content, verb = RECORDS[case]
    (ws / rel).parent.mkdir(parents=True, exist_ok=True)
    if rel.startswith("models/"):  # a model version also holds the other file
        (ws / rel).parent.joinpath("run.json").write_text(json.dumps(
            {"model": "bad", "state": "NORMAL", "source": {"kind": "job", "ref": "j@V001"}, "timestamps": {}}))
    (ws / rel).write_bytes(content)
    env = {"LABKIT_HOME": str(ws)}
    for args in (verb, ("status",), ("gc", "--dry-run")):
        proc = labkit_cli(*args, check=False, env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    listed = labkit_cli(*verb, env=env)
    if "run.json" in rel or "dataset.json" in rel or "serving.json" in rel:
        assert "warning: skipped" in listed.stderr and "bad" in listed.stderr
    shown = labkit_cli(verb[0], "stop" if verb[0] == "service" else "show", "bad", check=False, env=env)
    assert shown.returncode == 1 and shown.stderr.startswith("error: ") and "Traceback" not in shown.stderr
    assert "unexpectedly" not in shown.stderr


def test_leftovers_of_a_killed_command_are_invisible_and_swept(ws):
    """What a kill -9 leaves (staging folders of an unpack, a publish, a delete) is never listed,
    and the next command of that kind removes it."""
    data.make("flowers", name="fl", count=10, size=32)
    stale = [ws / ".staging-999999-deadbeef", ws / "datasets" / ".staging-999999-cafe0000",
             ws / "datasets" / "fl" / "versions" / ".staging-999999-00000000"]
    for path in stale:
        (path / "parts").mkdir(parents=True)
        (path / "parts" / "x.json").write_text("{")
    assert [d["name"] for d in data.list_datasets()] == ["fl"]
    data.publish("fl")
    data.make("flowers", name="fl2", count=10, size=32)
    packs.pack("fl@V001", ws.parent / "p.tar.gz", log=quiet)
    assert packs.unpack(ws.parent / "p.tar.gz", log=quiet)["already_here"] == ["fl@V001"]
    assert not any(p.exists() for p in stale)


def test_the_checksum_of_an_unchanged_pack_still_matches(instructor):
    """The corpus re-signs what it changes: re-signing an untouched pack gives its own manifest."""
    _, out = instructor
    files = members(out / "job.tar.gz")
    manifest = json.loads(files.pop("manifest.json"))
    again = resign(json.loads(json.dumps(manifest)), files)
    assert again["parts"] == manifest["parts"]
    assert all(hashlib.sha256(files[f"parts/1/{k}"]).hexdigest() == v["sha256"]
               for k, v in manifest["parts"][1]["files"].items())


# --- every verb that reads a file --------------------------------------------------------------

FILES = {
    # (the verb, with {file} and {dir} to fill in; what the file holds)
    "pipeline not JSON": (("pipeline", "run", "{file}", "--input", "{dir}", "--model", "m"), b'{"s": ['),
    "pipeline nested deeply": (("pipeline", "run", "{file}", "--input", "{dir}", "--model", "m"), DEEP.encode()),
    "pipeline of the wrong shape": (("pipeline", "run", "{file}", "--input", "{dir}", "--model", "m"), b'{"s": 5}'),
    "pipeline element of the wrong type": (("pipeline", "run", "{file}", "--input", "{dir}"),
                                           b'{"s": {"a": {"factory": "appsrc", "next": 7}}}'),
    "pipeline model climbing out": (("pipeline", "run", "{file}", "--input", "{dir}"), json.dumps({"s": {
        "a": {"factory": "appsrc", "next": "b"}, "b": {"factory": "mxpi_tensorinfer", "next": "c",
                                                       "props": {"modelPath": "../../../etc"}},
        "c": {"factory": "appsink"}}}).encode()),
    "label file not UTF-8": (("eval", "classification", "{dir}", "{file}", "--out", "{dir}/r.json"), b"\xff\xfe a 1\n"),
    "label file of one word": (("eval", "counting", "{dir}", "{file}", "--out", "{dir}/r.json"), b"lonely\n"),
    "manifest nested deeply": (("data", "import", "{file}", "--name", "x", "--format", "manifest"), DEEP.encode()),
    "pack that is JSON": (("unpack", "{file}"), DEEP.encode()),
    "pack that is empty": (("unpack", "{file}"), b""),
}


@pytest.mark.parametrize("labels, config, words", [
    (b"\xff\xfe roses\n", b"{}", "not UTF-8"),
    ("roses\n\x1b[2Jtulips\n".encode(), b"{}", "not a class name"),
    (b"roses\n", DEEP.encode(), "nested"),
    (b"roses\n", b'{"model_algorithm": "object_detection"}', "field 'model_algorithm'"),
    (b"roses\n", b'{"metrics": {"accuracy": "high"}}', "field 'metrics.accuracy"),
])
def test_a_model_folder_from_outside_with_bad_labels_or_config_is_refused(ws, tmp_path, labels, config, words):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.onnx").write_bytes(onnx_model())
    (tmp_path / "mine" / "labels.txt").write_bytes(labels)
    (tmp_path / "mine" / "config.json").write_bytes(config)
    proc = labkit_cli("model", "import", "--name", "mine", "--from-dir", tmp_path / "mine", check=False,
                      env={"LABKIT_HOME": str(ws)})
    assert proc.returncode == 1 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (ws / "models" / "mine").exists()


@pytest.mark.parametrize("case", list(FILES))
def test_every_verb_given_a_malformed_file_answers_with_one_error(ws, tmp_path, case):
    argv, content = FILES[case]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_1.txt").write_text("1\n")
    (tmp_path / "given.json").write_bytes(content)
    args = [a.format(file=tmp_path / "given.json", dir=tmp_path / "in") for a in argv]
    proc = labkit_cli(*args, check=False, env={"LABKIT_HOME": str(ws)})
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and lines[0].startswith("error: ") and lines[-1].startswith("  fix: "), proc.stderr
    assert "Traceback" not in proc.stderr and "unexpectedly" not in proc.stderr


@pytest.mark.parametrize("started", [None, 12345.0])
def test_a_record_naming_a_process_labkit_did_not_start_never_signals_it(ws, started):
    """A record's pid is data: without the start time labkit recorded for it, the process it
    names is not the job's, and neither `show` nor `stop` sends it a signal."""
    import subprocess

    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        record = {"job": "x", "algorithm": "MCNN", "engine": "pytorch", "dataset": "cr@V001", "hyper": {},
                  "device": "cpu", "device_num": 1, "world": {"size": 1, "nnodes": 1, "node_rank": 0},
                  "state": "RUNNING", "timestamps": {}, "pid": sleeper.pid, "pid_started": started}
        (ws / "jobs/x/V001").mkdir(parents=True)
        (ws / "jobs/x/V001/run.json").write_text(json.dumps(record))
        assert train.show("x")["state"] == "FAILED"
        assert train.stop("x")["state"] == "FAILED"
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_unpack_killed_at_any_moment_leaves_whole_parts_or_nothing(instructor, ws):
    """SIGKILL `labkit unpack` at moments spread over its run: whatever it left, the lists and
    status answer, each part is there whole or not at all, and unpacking again completes it."""
    import signal
    import subprocess
    import sys
    import time

    _, out = instructor
    env = {**os.environ, "LABKIT_HOME": str(ws)}
    argv = [sys.executable, "-m", "labkit.cli", "unpack", str(out / "conversion.tar.gz")]
    begin = time.monotonic()
    subprocess.run(argv, env={**env, "LABKIT_HOME": str(ws.parent / "timing")}, check=True, capture_output=True)
    whole = time.monotonic() - begin
    for k in range(1, 9):
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * k / 9)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for args in (("data", "list"), ("train", "list"), ("convert", "list"), ("status",)):
            shown = labkit_cli(*args, env={"LABKIT_HOME": str(ws)})
            assert "warning" not in shown.stderr, (k, args, shown.stderr)
        if (ws / "datasets" / "cr").exists():
            assert data.show("cr@V001")["checksum"]  # whole: its record, items and version
        if (ws / "jobs" / "mc").exists():
            assert train.show("mc")["state"] == "COMPLETED"
        again = labkit_cli("unpack", out / "conversion.tar.gz", check=False, env={"LABKIT_HOME": str(ws)})
        assert again.returncode == 0 or "exists here already" in again.stderr, again.stderr
        assert not list(ws.glob(".staging-*"))
        labkit_cli("convert", "delete", "mc-fp32", env={"LABKIT_HOME": str(ws)})
        labkit_cli("train", "delete", "mc", env={"LABKIT_HOME": str(ws)})
        labkit_cli("data", "delete", "cr", env={"LABKIT_HOME": str(ws)})


def tar_bytes(members) -> bytes:
    """A plain (uncompressed) tar of ``(TarInfo, payload)`` pairs, PAX format, its end marked."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, payload in members:
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_a_sparse_tar_member_is_refused_before_it_unpacks_to_hundreds_of_megabytes(ws, tmp_path):
    sparse = tarfile.TarInfo("flowers/roses/z.jpg")
    sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "flowers/roses/z.jpg",
                          "GNU.sparse.realsize": str(200 * 2**20)}   # 512 bytes in the archive, 200 MB unpacked
    members = [(tarfile.TarInfo(name), payload) for name, payload in GOOD] + [(sparse, b"1\n0\n0\n".ljust(512, b"\0"))]
    (tmp_path / "photos.tar").write_bytes(tar_bytes(members))
    rec = data.import_dataset(tmp_path / "photos.tar", "photos")
    assert rec["count"] == 2 and rec["report"]["refused"] == [
        {"entry": "flowers/roses/z.jpg", "reason": "a sparse file: it could unpack to far more than the archive holds"}]


def test_a_tar_member_declaring_a_petabyte_is_refused_at_once(ws, tmp_path):
    """A 2 KB archive whose member claims 10**15 bytes: read as a stream, it would be read through."""
    huge = tarfile.TarInfo("flowers/roses/huge.jpg")
    huge.size = 10**15
    raw = tar_bytes([(tarfile.TarInfo(GOOD[0][0]), GOOD[0][1])])
    raw = raw.rstrip(b"\0")   # the end marker and padding gone
    raw = raw.ljust(-(-len(raw) // 512) * 512, b"\0") + huge.tobuf(tarfile.PAX_FORMAT) + b"x" * 100
    (tmp_path / "photos.tar").write_bytes(raw)
    before = listing(ws)
    with pytest.raises(LabkitError, match="not a readable tar archive"):
        data.import_dataset(tmp_path / "photos.tar", "photos")
    assert listing(ws) == before


def test_a_plain_tar_cut_between_two_members_imports_nothing(ws, tmp_path):
    raw = tar_bytes([(tarfile.TarInfo(name), payload) for name, payload in GOOD + [("flowers/roses/c.jpg", jpeg(5))]])
    second = raw.index(b"flowers/tulips/b.jpg")          # the second member's header
    (tmp_path / "photos.tar").write_bytes(raw[:second + 100])   # cut inside it
    with pytest.raises(LabkitError, match="cut short"):
        data.import_dataset(tmp_path / "photos.tar", "photos")
    assert data.list_datasets() == []


def test_an_archive_that_unpacks_to_more_than_the_disk_can_spare_imports_nothing(ws, tmp_path, monkeypatch):
    from labkit.data import importers

    monkeypatch.setattr(importers, "MAX_ARCHIVE_BYTES", len(GOOD[0][1]) + 10)   # room for one image, not two
    archive = write_archive(tmp_path / "photos.tgz", GOOD)
    with pytest.raises(LabkitError, match="unpacks to more than this disk can spare") as err:
        data.import_dataset(archive, "photos")
    assert "nothing was imported" in err.value.hint and data.list_datasets() == []
    monkeypatch.setattr(importers, "MAX_ENTRIES", 1)
    with pytest.raises(LabkitError, match="holds more than 1 entries"):
        data.import_dataset(zip_of(tmp_path / "photos.zip", GOOD), "photos")
