"""`labkit model export` for real: the registry's models written as a Triton model repository and
a KServe InferenceService, checked against Triton's own model-configuration protobuf (the one
tritonclient ships) and KServe's SDK models (in an environment of their own: kserve's pins are
not labkit's), and against what labkit's service reports, so that a V2 client moves unchanged."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import tritonclient
import yaml
from google.protobuf import text_format

from helpers import labkit_cli
from labkit import registry
from labkit.errors import LabkitError
from labkit.registry.export import export
from labkit.registry.serving import model_config

pytestmark = pytest.mark.slow

KSERVE = ["kserve==0.21.0", "kubernetes==31.0.0"]   # kserve's ApiClient reads this kubernetes' models


@pytest.fixture(scope="module")
def model_config_pb2():
    """Triton's ModelConfig protobuf, from tritonclient's file (its grpc package needs grpcio)."""
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(config_pbtxt: Path, pb2):
    return text_format.Parse(config_pbtxt.read_text(encoding="utf-8"), pb2.ModelConfig())   # unknown fields raise


@pytest.mark.parametrize("ref", ["flowers@0.0.1", "flowers@0.0.2", "crowd"])
def test_a_triton_repository_that_tritons_schema_reads(models, jobs, tmp_path, model_config_pb2, ref):
    pb2 = model_config_pb2
    written = export(ref, "triton", tmp_path)
    record = registry.show(ref)
    name, serving = record["model"], record["serving"]
    folder = tmp_path / name
    assert (folder / "1" / "model.onnx").read_bytes() == (Path(record["dir"]) / "model.onnx").read_bytes()
    config = parse(folder / "config.pbtxt", pb2)
    graph = onnx.load(folder / "1" / "model.onnx").graph
    assert config.name == name and config.platform == "onnxruntime_onnx" and config.max_batch_size > 0
    assert config.HasField("dynamic_batching") and config.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_CPU
    (inp,) = config.input
    onnx_dims = [d.dim_value or -1 for d in graph.input[0].type.tensor_type.shape.dim]
    assert inp.name == graph.input[0].name and list(inp.dims) == onnx_dims[1:]   # Triton adds the batch
    want_type = {"FP32": pb2.TYPE_FP32, "UINT8": pb2.TYPE_UINT8}[serving["input"]["datatype"]]
    assert inp.data_type == want_type and pb2.ModelInput.Format.Name(inp.format) == f"FORMAT_{serving['input']['layout']}"
    assert [o.name for o in config.output] == [o.name for o in graph.output]
    if serving["labels"]:
        assert config.output[0].label_filename == "labels.txt"
        assert (folder / "labels.txt").read_text(encoding="utf-8").splitlines() == serving["labels"]   # 颜色/红 ...
    # the same tensors as labkit's own service reports (its model configuration extension)
    reported = model_config(name, serving)
    assert [(t.name, pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.input] == \
        [(t["name"], t["data_type"], t["dims"]) for t in reported["input"]]
    assert config.max_batch_size == reported["max_batch_size"]
    assert written["files"] == sorted(str(p.relative_to(tmp_path)) for p in folder.rglob("*") if p.is_file())


def test_the_v2_client_sees_the_same_model_in_labkits_service(models, jobs, tmp_path, model_config_pb2):
    from labkit.serve import services

    export("flowers@0.0.2", "triton", tmp_path)
    config = parse(tmp_path / "flowers" / "config.pbtxt", model_config_pb2)
    service = services.deploy("flowers@0.0.2", name="fl-export", log=lambda *_: None)
    try:
        import httpx

        served = httpx.get(f"{service['url']}/v2/models/flowers/config", timeout=30).json()
    finally:
        services.stop("fl-export")
    assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.input] == \
        [(t["name"], t["data_type"], t["dims"]) for t in served["input"]]
    assert [o.name for o in config.output] == [o["name"] for o in served["output"]]


def test_an_export_refuses_what_it_would_overwrite_and_a_failed_model(models, jobs, tmp_path):
    export("crowd", "triton", tmp_path)
    before = (tmp_path / "crowd" / "config.pbtxt").read_bytes()
    with pytest.raises(LabkitError, match="exists already"):
        export("crowd", "kserve", tmp_path)
    assert (tmp_path / "crowd" / "config.pbtxt").read_bytes() == before and not list(tmp_path.glob("*.yaml"))
    proc = labkit_cli("model", "export", "nosuch", "--format", "triton", tmp_path / "x", env={"LABKIT_HOME": str(jobs)},
                      check=False)
    assert proc.returncode != 0 and "nosuch" in proc.stderr and not (tmp_path / "x").exists()


@pytest.fixture(scope="session")
def kserve_python(tmp_path_factory):
    """A Python with KServe's SDK, in an environment of its own (kept between runs)."""
    env = Path.home() / ".cache" / "labkit-tests" / "kserve-0.21.0"
    python = env / "bin" / "python"
    if not (env / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *KSERVE], capture_output=True, text=True)
        if pip.returncode != 0:
            pytest.skip(f"could not install {' '.join(KSERVE)} (no package index?): {pip.stderr[-300:]}")
        (env / ".complete").touch()
    return python


# KServe's SDK reads a resource into its models: a misspelt or unknown field is dropped, a value of
# the wrong type is changed. A manifest the SDK reads back unchanged follows KServe's schema.
READ_BACK = """
import json, sys
import kserve.models
import kubernetes.client.models as core
import yaml
from kserve import ApiClient
for name in dir(core):   # the Kubernetes types an InferenceService embeds (ObjectMeta, ResourceRequirements)
    if name.startswith("V1") and not hasattr(kserve.models, name):
        setattr(kserve.models, name, getattr(core, name))
data = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
client = ApiClient()
print(json.dumps(client.sanitize_for_serialization(client._ApiClient__deserialize(data, "V1beta1InferenceService"))))
"""


def read_back(python, manifest: Path) -> dict:
    return json.loads(subprocess.run([str(python), "-c", READ_BACK, str(manifest)], capture_output=True, text=True,
                                     check=True).stdout)


def kept(written, read) -> bool:
    """Everything ``written`` holds is in ``read``, unchanged (the SDK adds its own defaults)."""
    if isinstance(written, dict):
        return isinstance(read, dict) and all(k in read and kept(v, read[k]) for k, v in written.items())
    return written == read


def test_a_kserve_inference_service_that_kserves_models_read_back(models, jobs, tmp_path, kserve_python):
    written = export("flowers@0.0.2", "kserve", tmp_path)
    manifest = tmp_path / "flowers.inferenceservice.yaml"
    assert written["files"][-1] == manifest.name and (tmp_path / "flowers" / "config.pbtxt").exists()
    resource = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    model = resource["spec"]["predictor"]["model"]
    assert (resource["kind"], model["modelFormat"]["name"], model["protocolVersion"]) == ("InferenceService", "onnx", "v2")
    assert kept(resource, read_back(kserve_python, manifest))
    # the check can fail: a misspelt field does not survive the SDK
    model["protocol_version"] = model.pop("protocolVersion")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(resource), encoding="utf-8")
    assert not kept(resource, read_back(kserve_python, wrong))
