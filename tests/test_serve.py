"""The registry and the online service for real: imported ONNX models, a service process on
127.0.0.1 called over HTTP with httpx and tritonclient, compared with in-process ONNX Runtime."""
import json
import shutil
import threading

import httpx
import jsonschema
import numpy as np
import pytest
import tritonclient.http as triton

from helpers import labkit_cli, quiet, val_images
from labkit import registry
from labkit.errors import LabkitError
from labkit.serve import services
from labkit.serve.runtime import Model


@pytest.fixture
def service(models, jobs):
    rec = services.deploy("flowers@0.0.2", name="fl", max_body_mb=1, log=quiet)
    yield rec
    services.stop("fl")


def test_import_versions_and_modelarts_config(models, jobs):
    first, second = registry.show("flowers@0.0.1"), registry.show("flowers")
    assert first["state"] == second["state"] == "NORMAL" and second["version"] == "0.0.2"
    assert first["serving"]["input"]["datatype"] == "FP32" and second["serving"]["input"]["datatype"] == "UINT8"
    config = registry.config("flowers@0.0.1")
    assert config["model_algorithm"] == "image_classification" and config["model_type"] == "PyTorch"
    api = config["apis"][0]
    assert api["protocol"] == "http" and api["request"]["data"]["properties"]["images"]["type"] == "file"
    assert set(config["metrics"]) == {"f1", "accuracy", "precision", "recall"}
    assert config["dependencies"][0]["packages"][0]["package_name"] == "onnxruntime"
    crowd = registry.config("crowd")
    assert crowd["model_type"] == "MindSpore" and "count" in crowd["apis"][0]["response"]["data"]["properties"]
    with pytest.raises(LabkitError, match="already has version 0.0.1"):
        registry.import_model("flowers", "0.0.1", from_job="rn", log=quiet)


def test_import_from_a_directory_validates(models, jobs, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(models / "models" / "flowers" / "0.0.1" / "model.onnx", good / "resnet.onnx")
    (good / "labels.txt").write_text("\n".join(registry.show("flowers@0.0.1")["serving"]["labels"]) + "\n")
    assert registry.import_model("mine", from_dir=str(good), log=quiet)["state"] == "NORMAL"
    (good / "labels.txt").write_text("a\nb\n")
    wrong = registry.import_model("mine", from_dir=str(good), log=quiet)
    assert wrong["state"] == "FAILED" and "2 labels" in wrong["reason"]
    (good / "resnet.onnx").write_bytes(b"not a model")
    cli = labkit_cli("model", "import", "--name", "mine", "--from-dir", good, "--json",
                     env={"LABKIT_HOME": str(jobs)}, check=False)
    broken = json.loads(cli.stdout)
    assert cli.returncode == 1 and broken["state"] == "FAILED" and "cannot load" in broken["reason"]
    with pytest.raises(LabkitError, match="FAILED"):
        services.deploy("mine", log=quiet)
    listed = labkit_cli("model", "list", env={"LABKIT_HOME": str(jobs)}).stdout
    assert "mine@0.0.3" in listed and "FAILED" in listed


def test_predict_api_answers_like_in_process_onnx_runtime(service, models):
    local = Model(models / "models" / "flowers" / "0.0.2")
    with httpx.Client(base_url=service["url"], timeout=30) as client:
        for image in val_images(models, "fl"):
            got = client.post("/", files={"images": ("x.jpg", image, "image/jpeg")})
            assert got.status_code == 200
            want = local.predict(image)
            assert got.json()["predicted_label"] == want["predicted_label"]
            np.testing.assert_allclose([s for _, s in got.json()["scores"]], [s for _, s in want["scores"]], rtol=1e-5)
            assert [label for label, _ in got.json()["scores"]] == [label for label, _ in want["scores"]]
        named = client.post("/v1/infers/fl", files={"images": ("x.jpg", image, "image/jpeg")})
        assert named.status_code == 200 and named.json() == got.json()
        assert client.get("/health").json() == {"health": "true"}
        docs = client.get("/docs")  # offline: the page's scripts come from the service, not a CDN
        assert docs.status_code == 200 and "http" not in docs.text
        assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_chinese_class_names_come_back_readable_and_travel_in_a_pack(service, models, tmp_path, monkeypatch):
    from labkit import packs

    labels = registry.show("flowers@0.0.2")["serving"]["labels"]
    assert all(label.startswith("颜色/") for label in labels)   # imported from a manifest (conftest)
    reply = httpx.post(service["url"] + "/", files={"images": ("x.png", val_images(models, "fl", n=1)[0])}, timeout=30)
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["predicted_label"] in labels
    assert "颜色/".encode() in reply.content and b"\\u" not in reply.content   # UTF-8 as it is, so curl shows it
    packs.pack("flowers@0.0.1", tmp_path / "model.tar.gz", log=quiet)
    with monkeypatch.context() as learner:
        learner.setenv("LABKIT_HOME", str(tmp_path / "learner"))
        packs.unpack(tmp_path / "model.tar.gz", log=quiet)
        assert registry.show("flowers@0.0.1")["serving"]["labels"] == labels


def test_a_wrong_method_is_405_with_allow_and_the_document_lists_no_422(service):
    with httpx.Client(base_url=service["url"], timeout=30) as client:
        wrong = client.get("/")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "not allowed" in wrong.json()["error_msg"]
        wrong = client.delete("/v2/models/flowers")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET" and "not allowed" in wrong.json()["error"]
        document = client.get("/openapi.json").json()
    upload = document["paths"]["/"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["images"]  # /docs offers a file field 'images' to try the model with
    statuses = {status for operations in document["paths"].values() for op in operations.values()
                for status in op["responses"]}
    assert "422" not in statuses and {"400", "404", "413", "415", "503", "504"} <= statuses


def test_the_document_forbids_the_requests_the_service_refuses(service):
    """An empty upload, an empty V2 body, a V2 request without its one input, and a binary body
    whose JSON length is not a number: the service answers 400, and the document's own schemas
    call each of them invalid, so that a fuzzer reading it does not send them as valid."""
    document = httpx.get(f"{service['url']}/openapi.json", timeout=30).json()
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]

    def schema(operation, media):
        return {**operation["requestBody"]["content"][media]["schema"], "components": document["components"]}

    def refused(body_schema, value, send):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, body_schema)
        assert send().status_code == 400

    upload = schema(document["paths"]["/"]["post"], "multipart/form-data")
    refused(upload, {"images": ""}, lambda: httpx.post(service["url"], files={"images": ("x.jpg", b"")}, timeout=30))
    v2 = f"{service['url']}/v2/models/flowers/infer"
    refused(schema(infer, "application/octet-stream"), "",
            lambda: httpx.post(v2, content=b"", headers={"Content-Type": "application/octet-stream"}, timeout=30))
    refused(schema(infer, "application/json"), {"inputs": []}, lambda: httpx.post(v2, json={"inputs": []}, timeout=30))
    header = next(p for p in infer["parameters"] if p["name"] == "Inference-Header-Content-Length")
    assert header["in"] == "header" and "refused" in header["description"]
    refused(header["schema"], "twelve", lambda: httpx.post(v2, content=BINARY_HEADER, timeout=30,
                                                          headers={"Inference-Header-Content-Length": "twelve"}))
    assert httpx.post(v2, content=b"\x00\x01binary", headers={"Content-Type": "application/octet-stream"},
                      timeout=30).status_code == 400  # binary without the header: read as JSON, and it is not


@pytest.mark.parametrize("request_kw, status, words", [
    ({"files": {"file": ("x.jpg", b"abc")}}, 400, "field 'images'"),
    ({"content": b"raw bytes"}, 415, "multipart/form-data"),
    ({"files": {"images": ("x.jpg", b"\xff\xd8\xff\xe0 truncated")}}, 400, "not a usable image"),
    ({"files": {"images": ("x.jpg", b"")}}, 400, "empty"),
    ({"files": {"images": ("x.jpg", b"0" * (2 * 1024 * 1024))}}, 413, "limit"),
])
def test_bad_requests_get_json_errors_and_the_service_keeps_answering(service, models, request_kw, status, words):
    image = val_images(models, "fl", 1)[0]
    with httpx.Client(base_url=service["url"], timeout=30) as client:
        before = client.post("/", files={"images": ("x.jpg", image)}).json()
        bad = client.post("/", **request_kw)
        assert bad.status_code == status and words in bad.json()["error_msg"] and bad.json()["error_code"]
        assert client.post("/v1/infers/other", files={"images": ("x.jpg", image)}).status_code == 404
        assert client.post("/", files={"images": ("x.jpg", image)}).json() == before


def test_v2_with_tritonclient_binary_and_json(service, models):
    local = Model(models / "models" / "flowers" / "0.0.2")
    client = triton.InferenceServerClient(service["url"].removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("flowers")
    meta = client.get_model_metadata("flowers")
    assert meta["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": [-1, 32, 32, 3]}]
    assert client.get_model_config("flowers")["max_batch_size"] > 0
    x = np.stack([local.tensor(b) for b in val_images(models, "fl", 4)])
    want = local.run(x)[0]
    for binary in (True, False):
        tensor = triton.InferInput("images", list(x.shape), "UINT8")
        tensor.set_data_from_numpy(x, binary_data=binary)
        result = client.infer("flowers", [tensor], outputs=[triton.InferRequestedOutput("logits", binary_data=binary)],
                              request_id="r1")
        np.testing.assert_allclose(result.as_numpy("logits"), want, rtol=1e-5, atol=1e-6)
        assert result.get_response()["id"] == "r1"
    wrong = triton.InferInput("images", [1, 32, 32, 3], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(triton.InferenceServerException, match="must be UINT8"):
        client.infer("flowers", [wrong])
    with pytest.raises(triton.InferenceServerException, match="unknown model"):
        client.get_model_metadata("nope")


BINARY_HEADER = json.dumps({"inputs": [{"name": "images", "shape": [1, 32, 32, 3], "datatype": "UINT8",
                                        "parameters": {"binary_data_size": 3072}}]}).encode()


@pytest.mark.parametrize("body, headers, words", [
    (b"", {}, "empty request"), (b"{nope", {}, "not valid JSON"), (b'{"inputs": []}', {}, "non-empty list"),
    (b'{"inputs": [{"name": "images", "shape": [1, 32, 32, 3], "datatype": "UINT8", "data": [1, 2]}]}', {}, "values"),
    (b'{"inputs": [{"name": "images", "shape": [1, 3, 32, 32], "datatype": "UINT8", "data": [1]}]}', {}, "shape"),
    (b'{"inputs": [{"name": "x", "shape": [1, 32, 32, 3], "datatype": "UINT8", "data": [1]}]}', {}, "unknown input"),
    (BINARY_HEADER + b"xyz", {"Inference-Header-Content-Length": str(len(BINARY_HEADER))}, "binary_data_size"),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, "does not fit"),
])
def test_v2_bad_requests_are_400_with_an_error(service, body, headers, words):
    got = httpx.post(f"{service['url']}/v2/models/flowers/infer", content=body, headers=headers, timeout=30)
    assert got.status_code == 400 and words in got.json()["error"]


def test_metrics_count_requests_and_batches(service, models):
    image = val_images(models, "fl", 1)[0]
    for _ in range(3):
        httpx.post(service["url"] + "/", files={"images": ("x.jpg", image)}, timeout=30)
    text = httpx.get(service["url"] + "/metrics", timeout=30).text
    assert 'labkit_requests_total{code="200",route="/"} 3.0' in text
    assert "labkit_batch_size_count" in text and "labkit_queue_seconds_bucket" in text


def test_counting_service_and_stop(models, jobs):
    rec = services.deploy("crowd", log=quiet)
    try:
        assert rec["url"].startswith("http://127.0.0.1:")
        image = val_images(models, "cr", 1)[0]
        got = httpx.post(rec["url"] + "/", files={"images": ("x.jpg", image)}, timeout=30).json()
        want = Model(models / "models" / "crowd" / "0.0.1").predict(image)
        assert got["count"] == pytest.approx(want["count"], rel=1e-5)
        assert np.array(got["density_map"]).shape == (16, 16)
        status = labkit_cli("status", env={"LABKIT_HOME": str(jobs)}).stdout
        assert "labkit service stop crowd" in status
    finally:
        stopped = services.stop("crowd")
    assert stopped["state"] == "STOPPED"
    with pytest.raises(httpx.ConnectError):
        httpx.get(rec["url"] + "/health", timeout=5)
    assert "nothing is running" in labkit_cli("status", env={"LABKIT_HOME": str(jobs)}).stdout


def test_stop_lets_requests_in_flight_finish(models, jobs):
    rec = services.deploy("flowers@0.0.1", name="drain", log=quiet)
    image = val_images(models, "fl", 1)[0]
    codes, answered = [], [threading.Event() for _ in range(4)]

    def client(first_answer):
        with httpx.Client(base_url=rec["url"], timeout=30) as c:
            for _ in range(30):
                try:
                    codes.append(c.post("/", files={"images": ("x.jpg", image)}).status_code)
                except httpx.TransportError:
                    break  # the service has closed: a refused connection, never a half answer
                first_answer.set()

    threads = [threading.Thread(target=client, args=(event,)) for event in answered]
    for t in threads:
        t.start()
    # stop only once every client holds an open connection, so requests are in flight
    # when SIGTERM arrives (stopping earlier only tests that new connections are refused)
    assert all(event.wait(60) for event in answered)
    services.stop("drain")
    for t in threads:
        t.join(60)
    assert codes and set(codes) <= {200, 503}


def test_choosing_what_to_import_names_the_model_after_its_source():
    assert registry.source_name({"from_conversion": "flowers-int8@V002"}) == "flowers-int8"
    assert registry.source_name({"from_dir": "/tmp/exports/my-model/"}) == "my-model"
    assert registry.choose_source("dir", directory="/tmp/m") == {"from_dir": "/tmp/m"}
    assert registry.choose_source("job", job="rn@V001") == {"from_job": "rn@V001"}
    with pytest.raises(LabkitError, match="needs its path"):
        registry.choose_source("dir")
    with pytest.raises(LabkitError, match="unknown source"):
        registry.choose_source("cloud")


def test_importing_a_conversion_when_there_is_none_says_so(ws):
    with pytest.raises(LabkitError, match="no completed conversion") as error:
        registry.choose_source("conversion")
    assert "stage 3" in error.value.hint


def test_batch_prediction_of_a_folder_lists_bad_files_and_stays_quiet_when_piped(models, jobs, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i, image in enumerate(val_images(jobs, "fl", n=5)):
        (photos / "sub" / f"img{i}.png").write_bytes(image)
    (photos / "broken.jpg").write_bytes(b"not an image")
    proc = labkit_cli("batch", "create", "flowers@0.0.1", "--input", photos, "--output", tmp_path / "out", "--format",
                      "csv", "--json", env={"LABKIT_HOME": str(jobs)})
    summary = json.loads(proc.stdout)
    assert (summary["images"], summary["predicted"], summary["errors"]) == (6, 5, 1)
    assert proc.stderr == ""  # piped: no progress bar in the file
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "file,predicted_label,score" and len(lines) == 6
    (error,) = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert error["file"].endswith("broken.jpg") and error["error"]
    net = Model(registry.model_dir("flowers@0.0.1"))
    first = net.answer(net.run(np.stack([net.tensor(photos / "sub" / "img0.png")]))[0][0])
    assert lines[1].split(",")[1] == first["predicted_label"]
