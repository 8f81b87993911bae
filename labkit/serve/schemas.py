"""The shapes of the service's requests and answers, for its OpenAPI document (``/docs``).

The endpoints parse bodies themselves (tritonclient sends binary tensors with no
Content-Type, and a bad request must get the protocol's 400, not FastAPI's 422), so these
models describe the API; they do not validate it. The V2 models follow the Open Inference
Protocol's REST specification (docs/reference/protocols.md).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel

Parameters = dict[str, Any]


# --- ModelArts predict API ---------------------------------------------------------------

class Classification(BaseModel):
    predicted_label: str = Field(examples=["roses"])
    scores: list[tuple[str, float]] = Field(description="the top classes, most likely first",
                                            examples=[[["roses", 0.97], ["tulips", 0.02]]])


class Count(BaseModel):
    count: float = Field(description="the estimated number of people (the density map's sum)")
    density_map: list[list[float]]


class Prediction(RootModel[Classification | Count]):
    """A classifier's answer, or a counting model's."""


class Health(BaseModel):
    health: Literal["true", "false"]


class ModelArtsError(BaseModel):
    error_code: str = Field(description="ModelArts.NNNN, one per status (docs/reference/protocols.md)")
    error_msg: str = Field(description="what went wrong and what to change")


# --- Open Inference Protocol (V2) --------------------------------------------------------

class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(examples=["UINT8"])
    shape: list[int] = Field(description="-1 for a variable dimension (the batch)")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ConfigTensor(BaseModel):
    name: str
    data_type: str = Field(examples=["TYPE_UINT8"])
    dims: list[int]


class ModelConfig(BaseModel):
    """Triton's model configuration extension (perf_analyzer reads it)."""

    name: str
    platform: str
    max_batch_size: int
    input: list[ConfigTensor]
    output: list[ConfigTensor]


class RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(None, description="binary_data_size: the input's bytes after the JSON")
    data: list[Any] | None = Field(None, description="the values, flat or nested, in row-major order")


class RequestOutput(BaseModel):
    name: str
    parameters: Parameters | None = Field(None, description="binary_data: answer this output as binary data")


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: Parameters | None = Field(None, description="binary_data_output: every output as binary data")
    inputs: list[RequestInput] = Field(min_length=1, max_length=1, description="the model's one input")
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class V2Error(BaseModel):
    error: str = Field(description="what went wrong and what to change")
