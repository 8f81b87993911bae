"""The service's endpoints: one method per route, each adapting HTTP to the model behind a
micro-batcher. They read the request, hand arrays to the model, and answer a dict (JSON) or
raise a ``ServiceError`` that carries its status. ``app.py`` declares the routes over them.

Two protocols share the model (docs/reference/protocols.md): the ModelArts predict API (a
multipart image in, a label with scores or a head count out) and the Open Inference Protocol
(V2), whose tensors the codec translates.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from labkit import __version__
from labkit.data.images import ImageError
from labkit.registry import serving
from labkit.serve import codec, metrics
from labkit.serve.micro_batcher import MicroBatcher, Overloaded
from labkit.serve.errors import BadRequest, DeadlineExceeded, NotFound, ServiceError, Unavailable, UnsupportedMediaType
from labkit.serve.runtime import Model


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
    owner_only: bool = False   # answer only the Unix user who deployed it (a room's shared server)


class Endpoints:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.model = Model(settings.model_dir, settings.threads)
        self.batcher = MicroBatcher(self.model.run, settings.max_batch, settings.max_wait,
                                    observe=metrics.observe_batch)
        self.started = False   # warmed up and taking requests
        self.draining = False  # SIGTERM came: finish what is in flight, take nothing new
        self.inputs, self.outputs = serving.tensors(self.model.serving)

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    async def start(self) -> None:
        self.batcher.start()
        await self.batcher.submit(np.zeros((1, *self.model.sample_shape), self.model.dtype))  # warm-up before ready
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self.batcher.stop()

    async def _infer(self, samples: np.ndarray) -> list[np.ndarray]:
        if not self.ready:
            raise Unavailable("the service is stopping or not ready; retry on another instance")
        try:
            return await asyncio.wait_for(self.batcher.submit(samples), self.settings.deadline)
        except Overloaded as exc:
            raise Unavailable(f"the service is overloaded ({exc}); retry later") from None
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within the {self.settings.deadline:g} s deadline") from None

    # --- ModelArts predict API -----------------------------------------------------------

    async def predict(self, request: Request) -> dict:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise UnsupportedMediaType(f"send the image as multipart/form-data in the field 'images' (got Content-Type "
                                       f"{content_type or 'none'!r}); e.g. curl -F images=@photo.jpg URL")
        with self.batcher.expect():
            sample = await self._read_image(request)
        outputs = await self._infer(sample[None])
        return self.model.answer(outputs[0][0])

    async def predict_named(self, service: str, request: Request) -> dict:
        if service != self.settings.service:
            raise NotFound(f"no service {service!r} here; this is {self.settings.service!r}")
        return await self.predict(request)

    async def _read_image(self, request: Request) -> np.ndarray:
        try:
            form = await request.form()
        except ServiceError:
            raise  # the body limit
        except Exception as exc:  # noqa: BLE001 - python-multipart raises several types for a malformed body
            raise BadRequest(f"the multipart body cannot be parsed: {exc}") from None
        upload = form.get("images")
        if upload is None or isinstance(upload, str):
            fields = ", ".join(form.keys()) or "none"
            raise BadRequest(f"send the image as a file in the multipart field 'images' (fields sent: {fields})")
        data = await upload.read()
        if not data:
            raise BadRequest("the uploaded image is empty")
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.model.tensor, data)
        except ImageError as exc:
            raise BadRequest(f"the uploaded file is not a usable image: {exc}") from None

    async def health(self) -> JSONResponse:
        return JSONResponse({"health": "true" if self.ready else "false"}, 200 if self.ready else 503)

    # --- Open Inference Protocol (V2) ----------------------------------------------------

    async def server_metadata(self) -> dict:
        return {"name": "labkit", "version": __version__, "extensions": ["binary_tensor_data", "model_configuration"]}

    async def server_live(self) -> dict:
        return {"live": True}

    async def server_ready(self) -> JSONResponse:
        return JSONResponse({"ready": self.ready}, 200 if self.ready else 503)

    def _check_model(self, name: str, version: str) -> None:
        if name != self.settings.model_name:
            raise NotFound(f"unknown model {name!r}; this service serves {self.settings.model_name!r}")
        if version != self.settings.model_version:
            raise NotFound(f"model {name} has no version {version!r}; it serves {self.settings.model_version}")

    # Each model route exists with and without /versions/{version}; without, it is the version served.

    async def model_metadata(self, name: str) -> dict:
        return await self.model_version_metadata(name, self.settings.model_version)

    async def model_version_metadata(self, name: str, version: str) -> dict:
        self._check_model(name, version)
        return {"name": self.settings.model_name, "versions": [self.settings.model_version],
                "platform": "onnx_onnxv1", "inputs": self.inputs, "outputs": self.outputs}

    async def model_ready(self, name: str) -> JSONResponse:
        return await self.model_version_ready(name, self.settings.model_version)

    async def model_version_ready(self, name: str, version: str) -> JSONResponse:
        self._check_model(name, version)
        return JSONResponse({"name": name, "ready": self.ready}, 200 if self.ready else 503)

    async def model_config(self, name: str) -> dict:
        return await self.model_version_config(name, self.settings.model_version)

    async def model_version_config(self, name: str, version: str) -> dict:
        """Triton's model configuration extension."""
        self._check_model(name, version)
        return serving.model_config(self.settings.model_name, self.model.serving)

    async def model_infer(self, name: str, request: Request) -> Response:
        return await self.model_version_infer(name, self.settings.model_version, request)

    async def model_version_infer(self, name: str, version: str, request: Request) -> Response:
        self._check_model(name, version)
        with self.batcher.expect():
            body = await request.body()
            header, binary = codec.split_body(body, request.headers.get("inference-header-content-length"))
            samples, wanted = codec.decode_input(header, binary, self.model.input_spec, self.model.outputs)
        outputs = await self._infer(samples)
        answer, blobs = codec.encode_response(header, wanted, dict(zip(self.model.outputs, outputs, strict=True)),
                                              self.settings.model_name, self.settings.model_version)
        if not blobs:
            return JSONResponse(answer)
        head = json.dumps(answer).encode()
        return Response(head + blobs, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(head))})

    # --- Prometheus ----------------------------------------------------------------------

    async def metrics(self) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

