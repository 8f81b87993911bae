"""The MindSpore side of a conversion (same functions as ``labkit.convert.pytorch``): load a
job's checkpoint, predict with it in graph mode (the parity reference), export it to ONNX
and MindIR. (AIR, the format ATC turns into an om file, needs an Ascend device.)"""
from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np

from labkit import engine_paths
from labkit.algorithms.mindspore.models import build


def setup(threads: int) -> None:
    """Graph mode (as the job trained), with ``threads`` CPU threads: once per process."""
    ms.set_context(mode=ms.GRAPH_MODE, runtime_num_threads=threads)


def load(info: dict, checkpoint: Path):
    net = build(info["arch"], info["num_classes"], {"width": info["width"]})
    ms.load_param_into_net(net, ms.load_checkpoint(str(checkpoint)))
    net.set_train(False)
    return net


def predict(net, x: np.ndarray) -> np.ndarray:
    return net(ms.Tensor(x)).asnumpy()


def export(net, sample: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """``onnx/raw.onnx`` and ``mindir/model.mindir``. MindSpore exports ONNX with a fixed
    batch only: ``sample`` has batch 1 and the ONNX graph's batch is freed afterwards. Its
    exporters refuse a path of other letters than ASCII: they write through a folder they accept."""
    files = {"onnx": out_dir / "onnx" / "raw.onnx", "mindir": out_dir / "mindir" / "model.mindir"}
    for kind, path in files.items():
        with engine_paths.writing_through("mindspore", path.parent) as folder:
            ms.export(net, ms.Tensor(sample[:1]), file_name=str(folder / path.stem), file_format=kind.upper())
    return files
