"""Model conversion for real: trained tiny jobs in both engines, real exports, real ONNX Runtime."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from helpers import labkit_cli, quiet, TINY
from labkit import convert, data, engine_paths, train
from labkit.convert import graph, parity, worker
from labkit.errors import LabkitError



# --- graph edits, on a hand-made model ------------------------------------------------------

def identity_model(channels=3, size=4):
    x = helper.make_tensor_value_info(graph.INPUT, TensorProto.FLOAT, ["batch", channels, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", channels, size, size])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", [graph.INPUT], ["logits"])], "id", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    return model


def test_in_model_preprocessing_takes_uint8_nhwc_pixels(tmp_path):
    onnx.save(identity_model(), tmp_path / "m.onnx")
    pre = graph.Preprocess(mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 5.0], layout="NHWC", channel_swap=True)
    graph.shape_input(tmp_path / "m.onnx", tmp_path / "p.onnx", 2, "NHWC", pre)
    session = ort.InferenceSession(str(tmp_path / "p.onnx"))
    assert session.get_inputs()[0].type == "tensor(uint8)" and session.get_inputs()[0].shape == [2, 4, 4, 3]
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    expected = ((pixels[..., ::-1].astype(np.float32) - [10, 20, 30]) / [2, 4, 5]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(session.run(None, {graph.INPUT: pixels})[0], expected, rtol=1e-6)


def test_nhwc_float_input_and_fp16_outputs(tmp_path):
    onnx.save(identity_model(), tmp_path / "m.onnx")
    graph.shape_input(tmp_path / "m.onnx", tmp_path / "n.onnx", None, "NHWC", None)
    graph.cast_outputs(tmp_path / "n.onnx", tmp_path / "h.onnx", to_fp16=True)
    session = ort.InferenceSession(str(tmp_path / "h.onnx"))
    x = np.random.default_rng(0).random((3, 4, 4, 3), dtype=np.float32)
    out = session.run(None, {graph.INPUT: x})[0]
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, x.transpose(0, 3, 1, 2), atol=1e-3)


@pytest.mark.parametrize("text, layout, expected", [
    ("images:1,3,224,224", "NCHW", (1, 3, 224, 224)), ("images:-1,3,64,64", "NCHW", (None, 3, 64, 64)),
    ("images:?,64,64,3", "NHWC", (None, 3, 64, 64)), ("images:8,240,240,3", "NHWC", (8, 3, 240, 240))])
def test_input_shapes_in_either_layout(text, layout, expected):
    assert convert.parse_shape(text, layout) == expected


@pytest.mark.parametrize("text, message", [("x:1,3,224,224", "called 'images'"), ("images:1,3,224", "NAME:N,C,H,W"),
                                           ("images:1,3,a,224", "not a number"), ("images:0,3,8,8", "impossible")])
def test_bad_input_shapes_say_what_to_write(text, message):
    with pytest.raises(LabkitError, match=message) as err:
        convert.parse_shape(text, "NCHW")
    assert "images:" in err.value.hint


def logits_differing_on(images: int, differ: int) -> tuple[np.ndarray, np.ndarray]:
    """(converted, reference) logits of ``images`` images whose top class differs on ``differ``."""
    reference = np.tile(np.eye(5, dtype=np.float32)[[0]], (images, 1)) * 4
    converted = reference.copy()
    converted[:differ] = np.eye(5, dtype=np.float32)[[1]] * 4
    return converted, reference


@pytest.mark.parametrize("images, differ, verdict", [
    (10, 1, parity.NOT_JUDGED),    # one image in ten decides nothing
    (10, 0, parity.NOT_JUDGED),    # nor do ten that all agree
    (58, 0, parity.NOT_JUDGED), (59, 0, parity.PASSED),  # the fewest images that can pass
    (200, 2, parity.PASSED),       # 99.0%: the MindSpore workshop INT8 model
    (200, 7, parity.NOT_JUDGED),   # 96.5%: could be 98% or not; a larger split would tell
    (1000, 35, parity.FAILED),     # 96.5% on 1,000 images: surely under 98%
    (200, 20, parity.FAILED), (10, 6, parity.FAILED)])  # bad models fail, even on few images
def test_agreement_gate_reads_the_evidence(images, differ, verdict):
    converted, reference = logits_differing_on(images, differ)
    row = parity.compare("image_classification", converted, reference, None)
    assert (row["images"], row["disagreements"]) == (images, differ)
    judged = parity.judge("image_classification", "int8", row)
    assert judged["verdict"] == verdict, judged["reason"]
    low, high = judged["evidence"]["interval"]
    assert low <= 1 - differ / images <= high
    assert f"{images - differ} of {images} validation images" in judged["reason"]
    if verdict == parity.NOT_JUDGED:
        assert f"at least {parity.images_to_pass()} images" in judged["reason"]


def test_counting_gate_needs_enough_images_and_a_tight_interval():
    def judged(drifts):
        reference = np.full((len(drifts), 1, 4, 4), 1.0, np.float32)  # 16 heads each
        converted = reference * (1 + np.asarray(drifts, np.float32))[:, None, None, None]
        return parity.judge("crowd_counting", "int8", parity.compare("crowd_counting", converted, reference, None))

    assert judged([0.0, 0.02] * 30)["verdict"] == parity.PASSED
    assert judged([0.0, 0.02] * 5)["verdict"] == parity.NOT_JUDGED  # tight, but too few images
    assert judged([0.0] * 19 + [0.8])["verdict"] == parity.NOT_JUDGED  # 4% on average, but one image moved 80%
    failed = judged([0.15, 0.25] * 30)
    assert failed["verdict"] == parity.FAILED and "over the 5% allowed" in failed["reason"]


def test_fp32_gate_fails_on_any_drift():
    reference = np.linspace(-1, 1, 50, dtype=np.float32).reshape(10, 5)
    assert parity.judge("image_classification", "fp32",
                        parity.compare("image_classification", reference + 1e-6, reference, None))["verdict"] == parity.PASSED
    drifted = parity.judge("image_classification", "fp32",
                           parity.compare("image_classification", reference + 1e-3, reference, None))
    assert drifted["verdict"] == parity.FAILED and "1.00e-03" in drifted["reason"]


def test_calibration_uses_whole_batches_of_distinct_images():
    images = np.arange(100)[:, None] * np.ones((100, 3), np.uint8)  # image i is all i
    batches = worker.calibration_batches(images, 100, lambda x: x.astype(np.float32))
    assert [len(b) for b in batches] == [worker.CALIBRATION_BATCH] * 12  # not a 13th batch of 4
    firsts = np.concatenate([b[:, 0] for b in batches])
    assert len(set(firsts.tolist())) == 96 and batches[0].dtype == np.float32
    assert [len(b) for b in worker.calibration_batches(images, 5, lambda x: x)] == [5]


def test_fixed_batch_models_get_padded_batches():
    calls = []

    def model(x):
        calls.append(len(x))
        return x.sum(axis=1, keepdims=True)

    out = parity.run_batched(model, np.ones((10, 3), np.float32), batch=4)
    assert calls == [4, 4, 4] and out.shape == (10, 1)


# --- real conversions ----------------------------------------------------------------------

def test_pytorch_fp32_export_and_parity_report(jobs):
    rec = convert.create("rn", "onnx-ort-fp32", "rn-fp32", log=quiet)
    assert rec["state"] == "COMPLETED", rec.get("reason")
    job_run = jobs / "jobs" / "rn" / "V001"
    exported = json.loads((job_run / "export.json").read_text())
    assert exported["opset"] >= 17 and (job_run / "onnx" / "model.onnx").exists()
    onnx.checker.check_model(str(job_run / "onnx" / "model.onnx"))
    (listed,) = convert.exports("rn")
    assert (listed["format"], listed["file"], listed["opset"]) == ("onnx", str(job_run / "onnx" / "model.onnx"),
                                                                   exported["opset"])
    report = convert.report("rn-fp32")
    source, plain, converted = report["models"]
    assert source["model"] == "PyTorch (eager)" and report["verdict"] == parity.PASSED
    assert plain["relative_diff"] <= 1e-4 and converted["relative_diff"] <= 1e-4
    assert converted["top1_agreement"] == 1.0 and converted["accuracy"] == source["accuracy"]
    for row in report["models"]:
        assert row["latency_ms"] > 0 and row["throughput"] > 0 and row["size_mb"] > 0
    session = ort.InferenceSession(str(convert.model_path("rn-fp32")))
    assert session.get_inputs()[0].shape[1:] == [3, 32, 32] and session.get_outputs()[0].name == "logits"


def test_int8_with_preprocessing_and_a_fixed_batch(jobs):
    rec = convert.create("rn", "onnx-ort-int8", "rn-int8", input_shape="images:4,32,32,3", preprocess="auto",
                         calibration_images=16, log=quiet)
    assert rec["state"] == "COMPLETED", rec.get("reason")
    model = onnx.load(str(convert.model_path("rn-int8")))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    session = ort.InferenceSession(str(convert.model_path("rn-int8")))
    assert session.get_inputs()[0].type == "tensor(uint8)" and session.get_inputs()[0].shape == [4, 32, 32, 3]
    assert convert.signature("rn-int8") == [
        {"kind": kind, "name": v.name, "type": v.type, "shape": v.shape}
        for kind, values in (("input", session.get_inputs()), ("output", session.get_outputs())) for v in values]
    report = convert.report("rn-int8")
    converted = report["models"][2]
    # the fixture's model is confident on easy data: INT8 keeps its every top class, on any CPU
    assert report["verdict"] == parity.PASSED and report["evidence"]["images"] == 100, report["reason"]
    assert convert.show("rn-int8")["verdict"] == parity.PASSED and converted["best_batch"] == 4
    assert converted["size_mb"] < convert.report("rn-fp32")["models"][2]["size_mb"] / 3
    # the notebook's table: the source and the plain export once, then each conversion (both passed: no mark)
    assert convert.comparison(["rn-fp32", "rn-int8"]) == convert.report("rn-fp32")["models"] + [converted]


def test_fp16_output_nodes_and_cli(jobs, tmp_path):
    env = {"LABKIT_HOME": str(jobs)}
    out = labkit_cli("convert", "create", "--job", "rn", "--template", "onnx-ort-fp16", "--name", "rn-fp16",
                     "--output-nodes", "logits", env=env)
    assert "COMPLETED" in out.stdout and "labkit model import" in out.stdout
    shown = labkit_cli("convert", "show", "rn-fp16", env=env).stdout
    assert "parity on the validation split" in shown and "onnx-ort-fp16" in shown
    assert "rn-fp16@V001" in labkit_cli("convert", "list", env=env).stdout
    bad = labkit_cli("convert", "create", "--job", "rn", "--template", "onnx-ort-fp32", "--name", "x",
                     "--output-nodes", "no_such_tensor", env=env, check=False)
    assert bad.returncode == 1 and "no_such_tensor" in bad.stdout + bad.stderr and "Netron" in bad.stdout + bad.stderr
    with pytest.raises(LabkitError, match="no model to import"):
        convert.model_path("x")
    wrong = labkit_cli("convert", "create", "--job", "rn", "--template", "onnx-ort-int8", "--name", "y",
                       "--precision", "fp32", env=env, check=False)
    assert wrong.returncode == 1 and "--template onnx-ort-fp32" in wrong.stderr
    # side by side: the source and the plain export, then each conversion named (a glob of names)
    rows = json.loads(labkit_cli("convert", "compare", "rn-fp1?", "--json", env=env).stdout)
    assert rows == convert.comparison(["rn-fp16"]) and [r["model"] for r in rows][2:] == ["onnx-ort-fp16"]
    assert "rn-fp16@V001" in convert.of_same_job("rn-fp16") and convert.of_same_job("no-such-task") == []
    shown = labkit_cli("convert", "compare", "rn-fp16", "--plot", tmp_path / "chart.png", env=env).stdout
    assert "agree " in shown and "img/s" in shown and (tmp_path / "chart.png").stat().st_size > 0


def test_mindspore_counting_model_exports_onnx_and_mindir(jobs, monkeypatch):
    assert not engine_paths.accepts("mindspore", jobs)   # a learner's folder: the exports go through another
    with monkeypatch.context() as m:   # none that MindSpore accepts here: refused before any work, with the fix
        m.setattr(tempfile, "tempdir", str(jobs))
        m.setattr(engine_paths, "FALLBACK_TEMP_ROOTS", ())
        with pytest.raises(LabkitError, match="mindspore writes only under a path of ASCII") as err:
            convert.create("mc", "onnx-ort-int8", "mc-int8", calibration_images=8, log=quiet)
        assert "TMPDIR" in err.value.hint and not (jobs / "conversions" / "mc-int8").exists()
    rec = convert.create("mc", "onnx-ort-int8", "mc-int8", calibration_images=8, log=quiet)
    assert rec["state"] == "COMPLETED", rec.get("reason")
    job_run = jobs / "jobs" / "mc" / "V001"
    assert (job_run / "mindir" / "model.mindir").stat().st_size > 0
    assert [e["format"] for e in convert.exports("mc")] == ["onnx", "mindir"]
    source, plain, converted = convert.report("mc-int8")["models"]
    assert source["model"] == "MindSpore (graph mode)"
    assert plain["relative_diff"] <= 1e-4 and plain["count_diff"] < 1e-3
    assert "mae" in converted and converted["images"] == 5
    # five validation images are too few to vouch for a counting model: kept, but not judged
    record = convert.show("mc-int8")
    assert record["verdict"] == parity.NOT_JUDGED and "too few images" in record["note"]
    assert convert.comparison(["mc-int8"])[2]["model"] == converted["model"] + " (not judged)"
    convert.create("rn", "onnx-ort-fp32", "rn-other", output_nodes=["no_such_tensor"], log=quiet)  # a record suffices
    with pytest.raises(LabkitError, match="different jobs: mc-int8@V001 of mc@V001, rn-other@V001 of rn@V001"):
        convert.comparison(["mc-int8", "rn-other"])
    said = []  # a lab asking for "INT8, else ..." does not take a model the gate did not vouch for
    with pytest.raises(LabkitError, match="completed and passed its parity gate"):
        convert.first_completed(["mc-int8"], log=said.append)
    assert "parity not judged: " in said[0]
    session = ort.InferenceSession(str(convert.model_path("mc-int8")))
    assert session.get_outputs()[0].name == "density" and session.get_inputs()[0].shape[1:] == [1, 64, 64]


def test_a_killed_conversion_leaves_nothing_to_import(jobs):
    env = {**os.environ, "LABKIT_HOME": str(jobs)}
    proc = subprocess.Popen([sys.executable, "-m", "labkit.cli", "convert", "create", "--job", "rn", "--template",
                             "onnx-ort-fp32", "--name", "victim"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run = jobs / "conversions" / "victim" / "V001"
    for _ in range(600):
        if (run / "run.json").exists() and json.loads((run / "run.json").read_text()).get("state") == "RUNNING":
            break
        time.sleep(0.1)
    os.kill(json.loads((run / "run.json").read_text())["pid"], signal.SIGKILL)
    proc.wait(timeout=60)
    rec = convert.show("victim")
    assert rec["state"] == "FAILED" and "died" in rec["reason"]
    assert not (run / "model.onnx").exists()
    with pytest.raises(LabkitError, match="FAILED"):
        convert.model_path("victim")
    # a lab asking for "victim, else kept" imports kept, and says why not victim
    convert.create("rn", "onnx-ort-fp32", name="kept", log=quiet)
    said = []
    assert convert.first_completed(["victim", "kept"], log=said.append) == "kept@V001"
    assert "not using conversion victim: FAILED" in said[0]
    with pytest.raises(LabkitError, match="none of the conversions victim completed and passed"):
        convert.first_completed(["victim"], log=said.append)


@pytest.mark.slow   # a real job, stopped
def test_only_completed_jobs_convert(ws):
    data.make("flowers", name="f", count=10, size=32, seed=0)
    version = "f@" + data.publish("f")["version"]
    train.create("ResNet50", "pytorch", version, "slow", {**TINY, "learning_rate_strategy": "100:0.01"}, log=quiet)
    try:
        with pytest.raises(LabkitError, match="only a completed job"):
            convert.create("slow", "onnx-ort-fp32", "c", log=quiet)
    finally:
        train.stop("slow")
