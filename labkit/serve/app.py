"""The online service's HTTP app (FastAPI): the routes, declared in one list over the
endpoints, with what each takes and every status it answers, so that ``/docs`` tells the
truth; the error handlers; and a body-size limit in front of it all.

    ModelArts predict API   POST /, POST /v1/infers/{service}, GET /health
    Open Inference (V2)     GET /v2, /v2/health/live|ready, /v2/models/{name}[/versions/{version}]
                            [/ready|/config], POST .../infer
    Prometheus              GET /metrics
"""
from __future__ import annotations

import os
import signal
import time

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from labkit import __version__
from labkit.serve import metrics, peers, schemas
from labkit.serve.endpoints import Endpoints, Settings
from labkit.serve.errors import MEANINGS, PayloadTooLarge, ServiceError, error_model, error_response, route_of

IMAGE_UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["images"],
    "properties": {"images": {"type": "string", "contentMediaType": "application/octet-stream", "minLength": 1,
                              "description": "a JPEG or PNG image (an empty file is refused)"}}}}}}
V2_INFER_BODY = {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
    "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream",
                                            "minLength": 1},
                                 "description": "binary tensor extension: the JSON request, then the inputs' bytes; "
                                                "the Inference-Header-Content-Length header says where the JSON ends"}}}
# The binary tensor extension's header. OpenAPI cannot make a header depend on the body's media
# type, so it is optional here and its description says when it is needed.
HEADER_LENGTH = {"name": "Inference-Header-Content-Length", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^[0-9]+$"},
                 "description": "the length of the JSON request at the start of a binary body; without it the "
                                "whole body must be the JSON request (a binary body without it is refused)"}
BODY_MODELS = (schemas.InferenceRequest,)  # request bodies the OpenAPI document refers to


def _route(method: str, path: str, endpoint, answer=None, errors: tuple[int, ...] = (), body: dict | None = None,
           headers: tuple[dict, ...] = (), **kwargs) -> APIRoute:
    """One route: its method, path and endpoint, the model of its 200 answer, the error statuses it
    can answer (each with the error body of the route's protocol), its request body and the headers it reads."""
    responses = {status: {"model": error_model(path), "description": MEANINGS[status]} for status in errors}
    if answer is not None:
        responses[200] = {"model": answer}
    # response_model=None: the endpoints' return annotations (dict) are not the answer's shape
    return APIRoute(path, endpoint, methods=[method], responses=responses, response_model=None,
                    openapi_extra=({"requestBody": body, "parameters": list(headers)} if body else None), **kwargs)


def routes(ep: Endpoints) -> list[APIRoute]:
    busy = (503, 504)  # every route that runs the model
    return [
        _route("POST", "/", ep.predict, schemas.Prediction, (400, 413, 415, *busy), IMAGE_UPLOAD,
               summary="ModelArts predict API: upload an image in the field 'images'"),
        _route("POST", "/v1/infers/{service}", ep.predict_named, schemas.Prediction, (400, 404, 413, 415, *busy),
               IMAGE_UPLOAD, summary="ModelArts predict API under the service's name"),
        _route("GET", "/health", ep.health, schemas.Health, (503,), summary="ModelArts health check"),
        _route("GET", "/v2", ep.server_metadata, schemas.ServerMetadata, summary="V2 server metadata"),
        _route("GET", "/v2/health/live", ep.server_live, schemas.Live, summary="V2 server liveness"),
        _route("GET", "/v2/health/ready", ep.server_ready, schemas.Ready, (503,), summary="V2 server readiness"),
        _route("GET", "/v2/models/{name}", ep.model_metadata, schemas.ModelMetadata, (404,),
               summary="V2 model metadata"),
        _route("GET", "/v2/models/{name}/versions/{version}", ep.model_version_metadata, schemas.ModelMetadata,
               (404,), summary="V2 model metadata of a version"),
        _route("GET", "/v2/models/{name}/ready", ep.model_ready, schemas.ModelReady, (404, 503),
               summary="V2 model readiness"),
        _route("GET", "/v2/models/{name}/versions/{version}/ready", ep.model_version_ready, schemas.ModelReady,
               (404, 503), summary="V2 model readiness of a version"),
        _route("GET", "/v2/models/{name}/config", ep.model_config, schemas.ModelConfig, (404,),
               summary="Triton model configuration"),
        _route("GET", "/v2/models/{name}/versions/{version}/config", ep.model_version_config, schemas.ModelConfig,
               (404,), summary="Triton model configuration of a version"),
        _route("POST", "/v2/models/{name}/infer", ep.model_infer, schemas.InferenceResponse,
               (400, 404, 413, *busy), V2_INFER_BODY, (HEADER_LENGTH,), summary="V2 inference"),
        _route("POST", "/v2/models/{name}/versions/{version}/infer", ep.model_version_infer,
               schemas.InferenceResponse, (400, 404, 413, *busy), V2_INFER_BODY, (HEADER_LENGTH,),
               summary="V2 inference on a version"),
        _route("GET", "/metrics", ep.metrics, summary="Prometheus metrics (text exposition format)",
               response_class=PlainTextResponse),
    ]


def create_app(settings: Settings):
    """The app to serve: the FastAPI app behind the body limit (and, on a shared server, the
    owner check)."""
    endpoints = Endpoints(settings)

    def drain_on(sig: int) -> None:
        """Readiness goes false first, then uvicorn's own handler starts the graceful shutdown."""
        previous = signal.getsignal(sig)

        def handler(number, frame):
            endpoints.draining = True
            if callable(previous):
                previous(number, frame)
        signal.signal(sig, handler)

    async def lifespan(app):
        for sig in (signal.SIGTERM, signal.SIGINT):
            drain_on(sig)
        await endpoints.start()
        yield
        await endpoints.stop()

    # /docs and /redoc from bundled assets (FastAPI's default page loads them from a CDN: blank offline)
    app = FastAPIOffline(title=f"labkit service {settings.service}", version=__version__, lifespan=lifespan,
                         routes=routes(endpoints),
                         description=f"Model {settings.model_name}@{settings.model_version} ({endpoints.model.task}). "
                                     "ModelArts predict API, Open Inference Protocol (V2), Prometheus /metrics.")
    app.openapi = lambda: _openapi(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"no route {request.url.path}; the routes are listed at /docs",
                   405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(exc.status_code)
        return error_response(route_of(request.scope), exc.status_code, message or str(exc.detail), exc.headers)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return error_response(route_of(request.scope), exc.status, exc.message)

    limited = BodyLimit(app, settings.max_body)
    return OwnerOnly(limited) if settings.owner_only else limited


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, less the 422 it lists for routes with parameters: the endpoints parse
    bodies themselves and answer 400, so a 422 never comes."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for operations in doc["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        for model in BODY_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[model.__name__] = schema
        app.openapi_schema = doc
    return app.openapi_schema


class BodyLimit:
    """Pure ASGI: refuse a body over ``limit`` bytes with 413, by its Content-Length or, for a
    streamed or lying one, as soon as more arrives; then count and time the request."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), {"code": 500}
        path = route_of(scope)
        too_large = f"the body is over the limit of {self.limit // (1024 * 1024)} MB"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = (error_response(path, 413, too_large) if declared.isdigit()
                        else error_response(path, 400, "Content-Length is not a number"))
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
                    raise PayloadTooLarge(too_large)
            return message

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        finally:
            metrics.observe_request(path, status["code"], time.perf_counter() - start)


class OwnerOnly:
    """Pure ASGI: answer 403 to a caller that is not this process's Unix user (``peers``), so
    that on a room's server one learner's service is not another's to call or flood."""

    def __init__(self, app):
        self.app, self.owner = app, os.getuid()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and peers.uid_of_peer(scope["client"], scope["server"]) != self.owner:
            response = error_response(route_of(scope), 403, "this service answers only the user who deployed it: "
                                                          "call your own service, from your notebook or terminal "
                                                          "or through your Jupyter's proxy")
            await response(scope, receive, send)
            metrics.observe_request(route_of(scope), 403, 0.0)
            return None
        return await self.app(scope, receive, send)
