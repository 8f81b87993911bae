"""How a registry model is served, as its ``serving.json`` describes it: its tensors in the
Open Inference Protocol (V2)'s metadata, and its model configuration as Triton spells it. The
service reports these (``/v2/models/NAME``, ``.../config``) and ``labkit model export`` writes
them (``config.pbtxt``), so both describe one model alike.
"""
from __future__ import annotations

MAX_BATCH_PER_REQUEST = 64  # the most samples one request may carry (the service refuses more)
_BY_ONNX_TYPE = {"tensor(float)": "FP32", "tensor(float16)": "FP16", "tensor(uint8)": "UINT8", "tensor(int64)": "INT64"}


def tensor_metadata(name: str, datatype: str, shape: list) -> dict:
    """A tensor as V2 metadata describes it: a symbolic dimension (the batch) is -1."""
    return {"name": name, "datatype": datatype, "shape": [d if isinstance(d, int) else -1 for d in shape]}


def datatype_of(onnx_type: str) -> str:
    """The V2 datatype of an ONNX tensor type such as ``tensor(float)``."""
    return _BY_ONNX_TYPE.get(onnx_type, "FP32")


def tensors(serving: dict) -> tuple[list[dict], list[dict]]:
    """A registry model's input and outputs (its ``serving.json``) as V2 metadata describes them."""
    spec = serving["input"]
    return ([tensor_metadata(spec["name"], spec["datatype"], spec["shape"])],
            [tensor_metadata(o["name"], datatype_of(o["type"]), o["shape"]) for o in serving["outputs"]])


def model_config(name: str, serving: dict) -> dict:
    """Triton's model configuration of a registry model (its model configuration extension, and
    what ``labkit model export`` writes as config.pbtxt): dims leave out the batch when it varies."""
    fixed_batch = serving["input"]["batch"]
    inputs, outputs = tensors(serving)

    def entry(t: dict) -> dict:
        return {"name": t["name"], "data_type": f"TYPE_{t['datatype']}",
                "dims": t["shape"] if fixed_batch else t["shape"][1:]}

    return {"name": name, "platform": "onnxruntime_onnx",
            "max_batch_size": 0 if fixed_batch else MAX_BATCH_PER_REQUEST, "input": [entry(t) for t in inputs],
            "output": [entry(t) for t in outputs]}
