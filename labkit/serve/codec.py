"""The Open Inference Protocol (V2) codec: a request body to the model's input array, the
model's outputs to a response body. No HTTP here: the endpoints hand bytes in and take a
header and binary data out (docs/reference/protocols.md). How a model's tensors and
configuration are described is the registry's (``labkit.registry.serving``).

A body is JSON, optionally followed by binary tensor data (the binary tensor extension):
``Inference-Header-Content-Length`` says where the JSON ends, and each binary input declares
its ``binary_data_size``. Every way a request can be wrong raises ``BadRequest`` with what to fix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from labkit.registry.serving import MAX_BATCH_PER_REQUEST
from labkit.serve.errors import BadRequest

DATATYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8, "INT64": np.int64, "INT32": np.int32,
             "FP64": np.float64, "INT8": np.int8, "BOOL": np.bool_}
_BY_DTYPE = {np.dtype(v): k for k, v in DATATYPES.items()}


@dataclass(frozen=True)
class InputSpec:
    """What the model takes: its input's name and V2 datatype, and one sample's shape."""

    name: str
    datatype: str
    sample_shape: tuple[int, ...]


def split_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The request's JSON header, and the binary tensor data after it."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest(f"Inference-Header-Content-Length {header_length!r} does not fit a body of {len(body)} bytes")
        json_part, binary = body[:int(header_length)], body[int(header_length):]
    if not json_part:
        raise BadRequest("empty request: send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}")
    try:
        request = json.loads(json_part)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request is not valid JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise BadRequest("the request needs \"inputs\": a non-empty list of tensors")
    return request, binary


def decode_input(request: dict, binary: bytes, spec: InputSpec, outputs: list[str]) -> tuple[np.ndarray, list | None]:
    """The request's one input tensor as an array shaped (batch, *sample_shape), and the outputs
    it asks for (None: all of them)."""
    if len(request["inputs"]) != 1:
        raise BadRequest(f"the model takes one input ({spec.name!r}), the request has {len(request['inputs'])}")
    tensor = request["inputs"][0]
    if not isinstance(tensor, dict):
        raise BadRequest("each input must be an object with name, shape, datatype and data")
    shape = _checked_shape(tensor, spec)
    params = tensor.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest("input parameters must be an object")
    if "binary_data_size" in params:
        array = _from_binary(binary, params["binary_data_size"], shape, spec.datatype)
    else:
        if binary:
            raise BadRequest(f"{len(binary)} binary bytes came but no input declares binary_data_size")
        array = _from_json(tensor, shape, spec)
    wanted = request.get("outputs")
    if wanted is not None and (not isinstance(wanted, list)
                               or not all(isinstance(o, dict) and o.get("name") in outputs for o in wanted)):
        raise BadRequest(f"requested outputs must be among {sorted(outputs)}")
    return np.ascontiguousarray(array), wanted


def _checked_shape(tensor: dict, spec: InputSpec) -> list[int]:
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if name != spec.name:
        raise BadRequest(f"unknown input {name!r}; the model's input is {spec.name!r}")
    if datatype != spec.datatype:
        raise BadRequest(f"input {name} must be {spec.datatype}, got {datatype!r}")
    expected = [-1, *spec.sample_shape]
    if (not isinstance(shape, list) or len(shape) != len(expected)
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape) or shape[1:] != expected[1:]):
        raise BadRequest(f"input {name} must have shape {expected} (-1: the batch), got {shape}")
    if not 1 <= shape[0] <= MAX_BATCH_PER_REQUEST:
        raise BadRequest(f"the batch must be 1 to {MAX_BATCH_PER_REQUEST} samples, got {shape[0]}")
    return shape


def _from_binary(binary: bytes, size, shape: list[int], datatype: str) -> np.ndarray:
    dtype = np.dtype(DATATYPES[datatype])
    expected = int(np.prod(shape)) * dtype.itemsize
    if not isinstance(size, int) or size != expected or size != len(binary):
        raise BadRequest(f"binary_data_size {size!r} does not match: shape {shape} of {datatype} is "
                         f"{expected} bytes, and {len(binary)} binary bytes came")
    return np.frombuffer(binary, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)  # V2: little-endian


def _from_json(tensor: dict, shape: list[int], spec: InputSpec) -> np.ndarray:
    name = spec.name
    if "data" not in tensor:
        raise BadRequest(f"input {name} has neither data nor binary_data_size")
    try:
        flat = np.asarray(tensor["data"], dtype=np.float64).reshape(-1)
    except (ValueError, TypeError):
        raise BadRequest(f"input {name}'s data must be numbers (a flat or nested list)") from None
    count = int(np.prod(shape))
    if flat.size != count:
        raise BadRequest(f"input {name} has {flat.size} values, shape {shape} needs {count}")
    if spec.datatype == "UINT8" and ((flat < 0).any() or (flat > 255).any() or (flat != np.round(flat)).any()):
        raise BadRequest(f"input {name} is UINT8: values must be whole numbers from 0 to 255")
    if not np.isfinite(flat).all():
        raise BadRequest(f"input {name} has values that are not finite")
    return flat.astype(DATATYPES[spec.datatype]).reshape(shape)


def encode_response(request: dict, wanted: list | None, outputs: dict[str, np.ndarray], model_name: str,
                    model_version: str) -> tuple[dict, bytes]:
    """The response's JSON header and its binary data (empty unless the request asked for binary
    outputs, per output or with ``binary_data_output``)."""
    all_binary = bool((request.get("parameters") or {}).get("binary_data_output", False))
    header = {"model_name": model_name, "model_version": model_version, "outputs": []}
    if "id" in request:
        header["id"] = request["id"]
    blobs = []
    for out in wanted if wanted is not None else [{"name": n} for n in outputs]:
        array = np.ascontiguousarray(outputs[out["name"]])
        entry = {"name": out["name"], "datatype": _BY_DTYPE.get(array.dtype, "FP32"), "shape": list(array.shape)}
        if (out.get("parameters") or {}).get("binary_data", all_binary):
            data = array.astype(array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            entry["data"] = array.reshape(-1).tolist()
        header["outputs"].append(entry)
    return header, b"".join(blobs)
