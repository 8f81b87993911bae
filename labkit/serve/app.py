"""The online service's HTTP app (FastAPI): the ModelArts predict API, the Open Inference
Protocol (V2) with JSON and binary tensors, health, Prometheus metrics and /docs.

Bad input is the client's problem and gets a JSON 4xx saying what to change, never a 500:
``{"error_code", "error_msg"}`` on the ModelArts routes, ``{"error": ...}`` on the V2 routes
(tritonclient reads ``body["error"]`` of any non-200 answer).
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from labkit import __version__
from labkit.data.images import ImageError
from labkit.serve import metrics
from labkit.serve.batcher import MicroBatcher, Overloaded
from labkit.serve.runtime import DTYPES, Model

V2_DTYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8, "INT64": np.int64, "INT32": np.int32,
             "FP64": np.float64, "INT8": np.int8, "BOOL": np.bool_}
NP_TO_V2 = {np.dtype(v): k for k, v in V2_DTYPES.items()}
MAX_BATCH_PER_REQUEST = 64
# ModelArts error codes (formats.md), and labkit's for the rest
CODES = {400: "ModelArts.4101", 404: "ModelArts.4404", 405: "ModelArts.4405", 413: "ModelArts.4104",
         415: "ModelArts.4115", 503: "ModelArts.4302", 504: "ModelArts.4205", 500: "ModelArts.4503"}


@dataclass
class Settings:
    model_dir: Path
    service: str
    model_name: str
    model_version: str
    max_body: int = 12 * 1024 * 1024
    deadline: float = 40.0
    max_batch: int = 16
    max_wait: float = 0.005
    threads: int | None = None


class ClientError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _error(path: str, status: int, message: str) -> JSONResponse:
    if path.startswith("/v2"):
        return JSONResponse({"error": message}, status)
    return JSONResponse({"error_code": CODES.get(status, f"ModelArts.{status}"), "error_msg": message}, status)


class BodyLimit:
    """Pure ASGI: refuse a body over ``limit`` bytes with 413, by its Content-Length or, for a
    streamed or lying one, as soon as more arrives; then count and time the request."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), {"code": 500}
        path = scope["path"]
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            message = (f"the body is over the limit of {self.limit // (1024 * 1024)} MB" if declared.isdigit()
                       else "Content-Length is not a number")
            response = _error(path, 413 if declared.isdigit() else 400, message)
            await response(scope, receive, send)
            metrics.observe_request(path, response.status_code, time.perf_counter() - start)
            return None
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ClientError(413, f"the body is over the limit of {self.limit // (1024 * 1024)} MB")
            return message

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        finally:
            metrics.observe_request(path, status["code"], time.perf_counter() - start)


def create_app(settings: Settings) -> FastAPI:
    state = {"ready": False, "draining": False}
    model = Model(settings.model_dir, settings.threads)
    batcher = MicroBatcher(model.run, settings.max_batch, settings.max_wait, observe=metrics.observe_batch)
    v2_outputs = [{"name": o["name"], "datatype": _v2_type(o["type"]), "shape": _dims(o["shape"])}
                  for o in model.serving["outputs"]]
    v2_input = {"name": model.input["name"], "datatype": model.input["datatype"], "shape": _dims(model.input["shape"])}

    def drain_on(sig: int) -> None:
        """Readiness goes false first, then uvicorn's own handler starts the graceful shutdown."""
        previous = signal.getsignal(sig)

        def handler(number, frame):
            state["draining"] = True
            if callable(previous):
                previous(number, frame)
        signal.signal(sig, handler)

    async def lifespan(app):
        for sig in (signal.SIGTERM, signal.SIGINT):
            drain_on(sig)
        batcher.start()
        await batcher.submit(np.zeros((1, *model.sample_shape), model.dtype))  # warm-up before ready
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    app = FastAPI(title=f"labkit service {settings.service}", version=__version__, lifespan=lifespan,
                  description=f"Model {settings.model_name}@{settings.model_version} ({model.task}). "
                              "ModelArts predict API, Open Inference Protocol (V2), Prometheus /metrics.")
    app.state.labkit = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"no route {request.url.path}; the routes are listed at /docs",
                   405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(exc.status_code)
        return _error(request.url.path, exc.status_code, message or str(exc.detail))

    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError):
        return _error(request.url.path, exc.status, exc.message)

    async def infer(samples: np.ndarray) -> list[np.ndarray]:
        if state["draining"] or not state["ready"]:
            raise ClientError(503, "the service is stopping or not ready; retry on another instance")
        try:
            return await asyncio.wait_for(batcher.submit(samples), settings.deadline)
        except Overloaded as exc:
            raise ClientError(503, f"the service is overloaded ({exc}); retry later") from None
        except TimeoutError:
            raise ClientError(504, f"no answer within the {settings.deadline:g} s deadline") from None

    # --- ModelArts predict API -----------------------------------------------------------

    async def predict(request: Request) -> dict:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise ClientError(415, f"send the image as multipart/form-data in the field 'images' "
                                   f"(got Content-Type {content_type or 'none'!r}); e.g. curl -F images=@photo.jpg URL")
        with batcher.expect():
            sample = await read_image(request)
        outputs = await infer(sample[None])
        return model.answer(outputs[0][0])

    async def read_image(request: Request) -> np.ndarray:
        try:
            form = await request.form()
        except ClientError:
            raise
        except Exception as exc:  # noqa: BLE001 - python-multipart raises several types for a malformed body
            raise ClientError(400, f"the multipart body cannot be parsed: {exc}") from None
        upload = form.get("images")
        if upload is None or isinstance(upload, str):
            fields = ", ".join(form.keys()) or "none"
            raise ClientError(400, f"send the image as a file in the multipart field 'images' (fields sent: {fields})")
        data = await upload.read()
        if not data:
            raise ClientError(400, "the uploaded image is empty")
        try:
            return await asyncio.get_running_loop().run_in_executor(None, model.tensor, data)
        except ImageError as exc:
            raise ClientError(400, f"the uploaded file is not a usable image: {exc}") from None

    @app.post("/", summary="ModelArts predict API: multipart field 'images'")
    async def predict_root(request: Request):
        return await predict(request)

    @app.post("/v1/infers/{service}", summary="ModelArts predict API under the service's name")
    async def predict_named(service: str, request: Request):
        if service != settings.service:
            raise ClientError(404, f"no service {service!r} here; this is {settings.service!r}")
        return await predict(request)

    @app.get("/health")
    async def health():
        ok = state["ready"] and not state["draining"]
        return JSONResponse({"health": "true" if ok else "false"}, 200 if ok else 503)

    # --- Open Inference Protocol (V2) ----------------------------------------------------

    def check_model(name: str, version: str | None = None) -> None:
        if name != settings.model_name:
            raise ClientError(404, f"unknown model {name!r}; this service serves {settings.model_name!r}")
        if version is not None and version != settings.model_version:
            raise ClientError(404, f"model {name} has no version {version!r}; it serves {settings.model_version}")

    @app.get("/v2")
    async def server_metadata():
        return {"name": "labkit", "version": __version__, "extensions": ["binary_tensor_data", "model_configuration"]}

    @app.get("/v2/health/live")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready():
        ok = state["ready"] and not state["draining"]
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    def model_metadata(name: str, version: str | None = None):
        check_model(name, version)
        return {"name": settings.model_name, "versions": [settings.model_version], "platform": "onnx_onnxv1",
                "inputs": [v2_input], "outputs": v2_outputs}

    app.get("/v2/models/{name}")(model_metadata)
    app.get("/v2/models/{name}/versions/{version}")(model_metadata)

    def model_ready(name: str, version: str | None = None):
        check_model(name, version)
        ok = state["ready"] and not state["draining"]
        return JSONResponse({"name": name, "ready": ok}, 200 if ok else 503)

    app.get("/v2/models/{name}/ready")(model_ready)
    app.get("/v2/models/{name}/versions/{version}/ready")(model_ready)

    def model_config(name: str, version: str | None = None):
        check_model(name, version)
        batch = model.input["batch"]
        return {"name": settings.model_name, "platform": "onnxruntime_onnx",
                "max_batch_size": 0 if batch else MAX_BATCH_PER_REQUEST,
                "input": [{"name": v2_input["name"], "data_type": f"TYPE_{v2_input['datatype']}",
                           "dims": v2_input["shape"] if batch else v2_input["shape"][1:]}],
                "output": [{"name": o["name"], "data_type": f"TYPE_{o['datatype']}",
                            "dims": o["shape"] if batch else o["shape"][1:]} for o in v2_outputs]}

    app.get("/v2/models/{name}/config")(model_config)
    app.get("/v2/models/{name}/versions/{version}/config")(model_config)

    async def v2_infer(name: str, request: Request, version: str | None = None):
        check_model(name, version)
        with batcher.expect():
            body = await request.body()
            request_json, binary = _split_binary(body, request.headers.get("inference-header-content-length"))
            samples, wanted = _v2_inputs(request_json, binary, model)
        outputs = await infer(samples)
        return _v2_response(request_json, wanted, dict(zip(model.outputs, outputs, strict=True)), settings)

    @app.post("/v2/models/{name}/infer")
    async def infer_latest(name: str, request: Request):
        return await v2_infer(name, request)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(name: str, version: str, request: Request):
        return await v2_infer(name, request, version)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return BodyLimit(app, settings.max_body), app


def _dims(shape: list) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape]


def _v2_type(onnx_type: str) -> str:
    return {"tensor(float)": "FP32", "tensor(float16)": "FP16", "tensor(uint8)": "UINT8",
            "tensor(int64)": "INT64"}.get(onnx_type, "FP32")


def _split_binary(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The JSON part of a V2 request and the binary tensor data after it."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ClientError(400, f"Inference-Header-Content-Length {header_length!r} does not fit a body of "
                                   f"{len(body)} bytes")
        json_part, binary = body[:int(header_length)], body[int(header_length):]
    if not json_part:
        raise ClientError(400, "empty request: send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}")
    try:
        request = json.loads(json_part)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClientError(400, f"the request is not valid JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise ClientError(400, "the request needs \"inputs\": a non-empty list of tensors")
    return request, binary


def _v2_inputs(request: dict, binary: bytes, model: Model) -> tuple[np.ndarray, list[dict] | None]:
    """Check the request's one input tensor against the model and return it as an array."""
    spec = model.input
    if len(request["inputs"]) != 1:
        raise ClientError(400, f"the model takes one input ({spec['name']!r}), the request has {len(request['inputs'])}")
    tensor = request["inputs"][0]
    if not isinstance(tensor, dict):
        raise ClientError(400, "each input must be an object with name, shape, datatype and data")
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if name != spec["name"]:
        raise ClientError(400, f"unknown input {name!r}; the model's input is {spec['name']!r}")
    if datatype != spec["datatype"]:
        raise ClientError(400, f"input {name} must be {spec['datatype']}, got {datatype!r}")
    expected = [-1, *model.sample_shape]
    if (not isinstance(shape, list) or len(shape) != 4 or not all(isinstance(d, int) and not isinstance(d, bool)
                                                                  for d in shape) or shape[1:] != expected[1:]):
        raise ClientError(400, f"input {name} must have shape {expected} (-1: the batch), got {shape}")
    if not 1 <= shape[0] <= MAX_BATCH_PER_REQUEST:
        raise ClientError(400, f"the batch must be 1 to {MAX_BATCH_PER_REQUEST} samples, got {shape[0]}")
    dtype, count = DTYPES[datatype], int(np.prod(shape))
    params = tensor.get("parameters") or {}
    if not isinstance(params, dict):
        raise ClientError(400, "input parameters must be an object")
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        if not isinstance(size, int) or size != count * np.dtype(dtype).itemsize or size != len(binary):
            raise ClientError(400, f"binary_data_size {size!r} does not match: shape {shape} of {datatype} is "
                                   f"{count * np.dtype(dtype).itemsize} bytes, and {len(binary)} binary bytes came")
        array = np.frombuffer(binary, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    else:
        if binary:
            raise ClientError(400, f"{len(binary)} binary bytes came but no input declares binary_data_size")
        if "data" not in tensor:
            raise ClientError(400, f"input {name} has neither data nor binary_data_size")
        try:
            flat = np.asarray(tensor["data"], dtype=np.float64).reshape(-1)
        except (ValueError, TypeError):
            raise ClientError(400, f"input {name}'s data must be numbers (a flat or nested list)") from None
        if flat.size != count:
            raise ClientError(400, f"input {name} has {flat.size} values, shape {shape} needs {count}")
        if datatype == "UINT8" and ((flat < 0).any() or (flat > 255).any() or (flat != np.round(flat)).any()):
            raise ClientError(400, f"input {name} is UINT8: values must be whole numbers from 0 to 255")
        if not np.isfinite(flat).all():
            raise ClientError(400, f"input {name} has values that are not finite")
        array = flat.astype(dtype).reshape(shape)
    wanted = request.get("outputs")
    if wanted is not None:
        known = set(model.outputs)
        if not isinstance(wanted, list) or not all(isinstance(o, dict) and o.get("name") in known for o in wanted):
            raise ClientError(400, f"requested outputs must be among {sorted(known)}")
    return np.ascontiguousarray(array), wanted


def _v2_response(request: dict, wanted: list[dict] | None, outputs: dict, settings: Settings) -> Response:
    all_binary = bool((request.get("parameters") or {}).get("binary_data_output", False))
    chosen = wanted if wanted is not None else [{"name": n} for n in outputs]
    header = {"model_name": settings.model_name, "model_version": settings.model_version, "outputs": []}
    if "id" in request:
        header["id"] = request["id"]
    blobs = []
    for out in chosen:
        array = np.ascontiguousarray(outputs[out["name"]])
        entry = {"name": out["name"], "datatype": NP_TO_V2.get(array.dtype, "FP32"), "shape": list(array.shape)}
        if (out.get("parameters") or {}).get("binary_data", all_binary):
            data = array.astype(array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            entry["data"] = array.reshape(-1).tolist()
        header["outputs"].append(entry)
    if not blobs:
        return JSONResponse(header)
    head = json.dumps(header).encode()
    return Response(head + b"".join(blobs), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(head))})
