"""The service's errors: each is an exception that carries its HTTP status, and every one of
them reaches the client as JSON that says what to change, never as a 500.

The body follows the route's protocol: ``{"error_code", "error_msg"}`` on the ModelArts routes
(error codes from the ModelArts API reference), ``{"error": ...}`` on the Open Inference
Protocol routes under ``/v2`` (tritonclient reads ``body["error"]`` of any non-200 answer).
"""
from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from labkit.serve.schemas import ModelArtsError, V2Error

# ModelArts error codes, by status
MODELARTS_CODES = {400: "ModelArts.4101", 404: "ModelArts.4404", 405: "ModelArts.4405", 413: "ModelArts.4104",
                   415: "ModelArts.4115", 503: "ModelArts.4302", 504: "ModelArts.4205", 500: "ModelArts.4503"}
# What each status means to a client (the OpenAPI document's descriptions)
MEANINGS = {400: "the request is malformed: the answer says what to change",
            404: "no such route, service, model or version",
            405: "the method is not allowed here: the Allow header lists those that are",
            413: "the body is over the service's limit",
            415: "the body is not multipart/form-data",
            503: "not ready, stopping or overloaded: retry later or on another instance",
            504: "no answer within the service's deadline"}


class ServiceError(Exception):
    """An answer other than 200; ``status`` is its HTTP status."""

    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ServiceError):
    status = 400


class NotFound(ServiceError):
    status = 404


class PayloadTooLarge(ServiceError):
    status = 413


class UnsupportedMediaType(ServiceError):
    status = 415


class Unavailable(ServiceError):
    """Not ready, stopping, or overloaded: another instance, or a retry later, may answer."""

    status = 503


class DeadlineExceeded(ServiceError):
    status = 504


def route_of(scope: dict) -> str:
    """The route a request asks for: its path less the root path the service is mounted at (a
    proxy's ``/user/NAME/proxy/PORT``, which uvicorn puts in front of every path)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path


def _is_v2(path: str) -> bool:
    return path.startswith("/v2")


def error_model(path: str) -> type[BaseModel]:
    """The shape of an error's body on ``path`` (for the OpenAPI document)."""
    return V2Error if _is_v2(path) else ModelArtsError


def error_response(path: str, status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """The JSON answer for an error on ``path``, in that route's protocol."""
    if _is_v2(path):
        body = {"error": message}
    else:
        body = {"error_code": MODELARTS_CODES.get(status, f"ModelArts.{status}"), "error_msg": message}
    return JSONResponse(body, status, headers=headers)
