"""Instructor packs for real: a trained job and a model packed in one workspace, unpacked into
another, where stage 3 converts the job and stage 5 serves the model; tampered, hostile and
incompatible archives refused with nothing written."""
import hashlib
import json

import httpx
import pytest

from helpers import labkit_cli, members, quiet, write_archive
from labkit import convert, data, packs, train
from labkit.errors import LabkitError
from labkit.serve import services

pytestmark = pytest.mark.slow


def test_a_learner_continues_from_the_instructors_job_and_model(instructor, ws):
    home, out = instructor
    manifest = json.loads(members(out / "job.tar.gz")["manifest.json"])
    assert [p["ref"] for p in manifest["parts"]] == ["cr@V001", "mc@V001"]  # the job brings its dataset version
    job_files = manifest["parts"][1]["files"]
    assert "output/checkpoints/best.pth" in job_files and not [f for f in job_files if "epoch_" in f]
    assert manifest["versions"]["torch"] and manifest["versions"]["labkit"]

    got = json.loads(labkit_cli("unpack", out / "job.tar.gz", "--json", env={"LABKIT_HOME": str(ws)}).stdout)
    assert got["installed"] == ["cr@V001", "mc@V001"] and got["version_differences"] == {}
    job = train.show("mc")
    assert job["state"] == "COMPLETED" and job["metrics"] == json.loads((home / "jobs/mc/V001/run.json").read_text())["metrics"]
    assert job["data_url"] == str(ws / "datasets" / "cr" / "versions" / "V001") and job["train_url"].startswith(str(ws))
    best = ws / "jobs/mc/V001/output/checkpoints/best.pth"
    assert best.read_bytes() == (home / "jobs/mc/V001/output/checkpoints/best.pth").read_bytes()
    packed = json.loads((home / "datasets/cr/versions/V001/version.json").read_text())
    assert data.show("cr@V001")["checksum"] == packed["checksum"]
    assert data.publish("cr")["version"] == "V002"  # the dataset is whole: its images are there to split again

    # stage 3 goes on from the unpacked job: a real conversion on its (unpacked) validation split
    rec = convert.create("mc", "onnx-ort-fp32", "mc-fp32", log=quiet)
    assert rec["state"] == "COMPLETED", rec.get("reason")

    # stage 5 from the instructor's model
    assert packs.unpack(out / "model.tar.gz", log=quiet)["installed"] == ["crowd@0.0.1"]
    service = services.deploy("crowd", log=quiet)
    try:
        answer = services.predict("crowd", next((ws / "datasets/cr/images").rglob("*.jpg")))
        assert answer["count"] >= 0
        assert httpx.get(service["url"] + "/health", timeout=5).status_code == 200
    finally:
        services.stop("crowd")

    with pytest.raises(LabkitError, match=r"(?s)job mc@V001 exists here already.*labkit train delete mc@V001"):
        packs.unpack(out / "job.tar.gz", log=quiet)


def test_a_dataset_version_already_here_is_reused(instructor, ws):
    _, out = instructor
    data.make("crowd", name="cr", count=8, size=64, seed=0)  # the same generator and seed: the same data
    data.publish("cr")
    got = packs.unpack(out / "job.tar.gz", log=quiet)
    assert got["installed"] == ["mc@V001"] and got["already_here"] == ["cr@V001"]


@pytest.fixture
def nothing_written(ws):
    """After the test: the learner's workspace holds nothing at all (no staging left either)."""
    yield ws
    left = [p for p in ws.rglob("*") if p.is_file() and p.name != ".lock"] if ws.exists() else []
    assert left == []


def tampered(instructor, tmp_path, change):
    _, out = instructor
    files = members(out / "job.tar.gz")
    manifest = json.loads(files.pop("manifest.json"))
    change(manifest, files)
    return write_archive(tmp_path / "bad.tar.gz", files, manifest)


def flip_a_byte(manifest, files):
    name = "parts/1/output/checkpoints/best.pth"
    files[name] = files[name][:100] + bytes([files[name][100] ^ 1]) + files[name][101:]


def climb_out(manifest, files):
    manifest["parts"][1]["files"]["../../evil.txt"] = {"size": 4, "sha256": hashlib.sha256(b"evil").hexdigest()}
    files["parts/1/../../evil.txt"] = b"evil"


def smuggle(manifest, files):
    files["parts/1/extra.sh"] = b"rm -rf ~"


def grow(manifest, files):  # more bytes than the manifest declares (a bomb would be many more)
    files["parts/1/output/metrics.csv"] += b"0" * 100_000


def drop(manifest, files):
    del files["parts/0/items.jsonl"]


def elsewhere(manifest, files):
    manifest["parts"][1]["dir"] = "jobs/../../../etc"


def future(manifest, files):
    manifest["format"] = "labkit-pack/9"


def foreign_engine(manifest, files):
    manifest["parts"][1]["engine"] = "tensorflow"


@pytest.mark.parametrize("change, words", [
    (flip_a_byte, "does not match its checksum"),
    (climb_out, "unsafe path"),
    (smuggle, "which its manifest does not list"),
    (grow, "its manifest says"),
    (drop, "are missing"),
    (elsewhere, "malformed"),
    (future, "is not a labkit-pack/1 archive"),
    (foreign_engine, "field 'parts.1.engine'"),
])
def test_a_bad_archive_is_refused_and_writes_nothing(instructor, tmp_path, nothing_written, change, words):
    archive = tampered(instructor, tmp_path, change)
    with pytest.raises(LabkitError, match=words) as e:
        packs.unpack(archive, log=quiet)
    assert "nothing was written" in e.value.message + e.value.hint


def test_links_and_non_archives_are_refused(instructor, tmp_path, nothing_written):
    _, out = instructor
    files = members(out / "model.tar.gz")
    manifest = json.loads(files.pop("manifest.json"))
    manifest["parts"][0]["files"]["labels.txt"] = {"size": 0, "sha256": "0" * 64}
    files.pop("parts/0/labels.txt", None)
    linked = write_archive(tmp_path / "link.tar.gz", files, manifest, links=[("parts/0/labels.txt", "/etc/passwd")])
    with pytest.raises(LabkitError, match="is a link or a special file"):
        packs.unpack(linked, log=quiet)
    (tmp_path / "notes.tar.gz").write_bytes(b"just some text")
    with pytest.raises(LabkitError, match="not a readable .tar.gz"):
        packs.unpack(tmp_path / "notes.tar.gz", log=quiet)
    no_manifest = write_archive(tmp_path / "plain.tar.gz", {"hello.txt": b"hi"})
    with pytest.raises(LabkitError, match="does not start with a labkit manifest"):
        packs.unpack(no_manifest, log=quiet)
    cut = (out / "job.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(cut[: len(cut) // 2])
    with pytest.raises(LabkitError, match="not a readable .tar.gz"):
        packs.unpack(tmp_path / "cut.tar.gz", log=quiet)


def test_what_is_packed_must_be_named_once(ws):
    with pytest.raises(LabkitError, match="nothing named 'nope' to pack"):
        packs.pack("nope", ws / "x.tar.gz")
    data.make("crowd", name="same", count=4, size=64)
    (ws / "models" / "same").mkdir(parents=True)
    with pytest.raises(LabkitError, match="(?s)names a dataset and a model.*--kind"):
        packs.pack("same", ws / "x.tar.gz")
    assert not (ws / "x.tar.gz").exists()
