"""One imported model in ONNX Runtime, and the translation between images and its tensors:
what the service, batch prediction and the notebooks share.

``serving.json`` (written by the registry) says how to feed the model: its input's name,
type (UINT8 pixels when pre-processing is inside the model, else FP32 or FP16), layout,
channels and size, and the normalisation to apply when the model does not do it itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from labkit.cpu import onnx_session
from labkit.data.images import decode
from labkit.serve.codec import DATATYPES, InputSpec
from labkit.tasks import COUNTING

TOP_K = 5


def ranked(logits: np.ndarray, k: int, softmax: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One sample's k best classes, best first, and every class's score: softmax probabilities,
    or the logits themselves when ``softmax`` is false."""
    scores = logits.astype(np.float64)
    if softmax:
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
    return np.argsort(-scores)[:k], scores


class Model:
    def __init__(self, model_dir: Path, threads: int | None = None):
        self.dir = Path(model_dir)
        self.serving = json.loads((self.dir / "serving.json").read_text(encoding="utf-8"))
        self.input = self.serving["input"]
        self.task = self.serving["task"]
        self.labels = self.serving["labels"]
        self.session = onnx_session(self.dir / "model.onnx", threads)
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.dtype = DATATYPES[self.input["datatype"]]

    @property
    def sample_shape(self) -> list[int]:
        """The shape of one sample (no batch dimension)."""
        c, s = self.input["channels"], self.input["size"]
        return [s, s, c] if self.input["layout"] == "NHWC" else [c, s, s]

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.input["name"], self.input["datatype"], tuple(self.sample_shape))

    def tensor(self, image: bytes | Path) -> np.ndarray:
        """An image file or its bytes -> one sample for the model (raises ImageError for a bad image)."""
        return self.from_pixels(decode(image, "L" if self.input["channels"] == 1 else "RGB", self.input["size"]))

    def from_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (HWC or HW) at the model's size -> one sample for the model."""
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        if self.input["datatype"] == "UINT8":
            x = pixels
        else:
            norm = self.serving["normalize"]
            x = (pixels.astype(np.float32) * norm["scale"] - np.array(norm["mean"], np.float32)) / np.array(
                norm["std"], np.float32)
        if self.input["layout"] == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """All outputs for a batch; a model with a fixed batch gets padded chunks."""
        fixed = self.input["batch"]
        if not fixed or len(batch) == fixed:
            return self.session.run(None, {self.input["name"]: batch})
        parts = []
        for i in range(0, len(batch), fixed):
            chunk = batch[i:i + fixed]
            pad = np.zeros((fixed - len(chunk), *chunk.shape[1:]), chunk.dtype)
            parts.append([o[:len(chunk)] for o in self.session.run(None, {self.input["name"]: np.concatenate([chunk, pad])})])
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self.outputs))]

    def answer(self, output: np.ndarray, top_k: int = TOP_K) -> dict:
        """One sample's first output -> the ModelArts predict API's answer."""
        if self.task == COUNTING:
            density = output.astype(np.float32).reshape(output.shape[-2:])
            return {"count": float(density.sum()), "density_map": density.round(5).tolist()}
        order, p = ranked(output, top_k)
        return {"predicted_label": self.labels[order[0]], "scores": [[self.labels[i], float(p[i])] for i in order]}

    def predict(self, image: bytes | Path) -> dict:
        return self.answer(self.run(self.tensor(image)[None])[0][0])
