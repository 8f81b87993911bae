"""The PyTorch side of a conversion (same functions as ``labkit.convert.mindspore``): load a
job's checkpoint, predict with it eagerly (the parity reference), export it to ONNX."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from labkit.algorithms.pytorch.models import build


def setup(threads: int) -> None:
    """Eager mode with ``threads`` CPU threads: once per process."""
    torch.set_num_threads(threads)


def load(info: dict, checkpoint: Path):
    """The trained network in eval mode; the checkpoint loads without running pickled code."""
    net = build(info["arch"], info["num_classes"], {"width": info["width"]})
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net.load_state_dict(state.get("model", state))
    return net.eval()


def predict(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def export(net, sample: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """``onnx/raw.onnx`` via torch.onnx's dynamo exporter (onnxscript), batch left free."""
    path = out_dir / "onnx" / "raw.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(net, (torch.from_numpy(sample),), str(path), dynamo=True, external_data=False,
                      dynamic_shapes={"x": {0: batch}}, verbose=False)
    return {"onnx": path}
