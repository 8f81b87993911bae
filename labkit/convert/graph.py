"""Edits of an ONNX graph, engine-free: what each conversion option does to the model.

The order a conversion applies them in (``worker.py``): pick the output nodes, change the
precision (FP32 graph optimization, FP16, INT8), then the input side (pre-processing
inside the model, NHWC layout, a fixed batch), and last the output type.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
from onnx import TensorProto, helper, numpy_helper

from labkit.errors import LabkitError

INPUT = "images"  # the name of every exported model's input, as the predict API calls the field
MIN_OPSET = 17  # per-channel INT8 needs opset 13 or later; MindSpore exports opset 11


@dataclass
class Preprocess:
    """Pre-processing inside the model, the counterpart of Ascend's AIPP: the model takes
    uint8 pixels in ``layout`` and does ``(pixel - mean) / std`` (pixel units) and the layout
    change itself, so that a client sends pixels only. ``channel_swap`` takes BGR pixels."""

    mean: list[float]
    std: list[float]
    layout: str = "NHWC"
    channel_swap: bool = False

    @classmethod
    def from_model_info(cls, info: dict, layout: str = "NHWC") -> Preprocess:
        norm = info["normalize"]
        scale = 1 / norm["scale"]
        return cls([m * scale for m in norm["mean"]], [s * scale for s in norm["std"]], layout)

    @classmethod
    def from_file(cls, path: Path, info: dict) -> Preprocess:
        """A small YAML file: ``layout``, ``mean``, ``std`` (pixel units) and ``channel_swap``;
        what it leaves out comes from the model's own normalisation."""
        import yaml

        try:
            conf = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LabkitError(f"cannot read the pre-processing file {path}: {exc}",
                              "see data/preprocess/imagenet_uint8.yaml for the format") from exc
        unknown = set(conf) - {"layout", "mean", "std", "channel_swap"}
        if unknown:
            raise LabkitError(f"unknown keys in {path}: {', '.join(sorted(unknown))}",
                              "use layout, mean, std and channel_swap")
        base = cls.from_model_info(info, conf.get("layout", "NHWC"))
        pre = cls(conf.get("mean", base.mean), conf.get("std", base.std), base.layout,
                  bool(conf.get("channel_swap", False)))
        pre.check(info["channels"])
        return pre

    def check(self, channels: int) -> None:
        if self.layout not in ("NHWC", "NCHW"):
            raise LabkitError(f"pre-processing layout {self.layout!r}", "use NHWC or NCHW")
        for key in ("mean", "std"):
            if len(getattr(self, key)) != channels:
                raise LabkitError(f"pre-processing {key} has {len(getattr(self, key))} values, the model has "
                                  f"{channels} channels", f"give one {key} per channel")
        if any(s == 0 for s in self.std):
            raise LabkitError("a pre-processing std is 0", "use the dataset's standard deviation (pixel units)")


def io_names(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits], [o.name for o in model.graph.output]


def _rename_in_nodes(nodes, old: str, new: str) -> None:
    for node in nodes:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]


def _rename(model: onnx.ModelProto, old: str, new: str) -> None:
    if old == new:
        return
    _rename_in_nodes(model.graph.node, old, new)
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        if value.name == old:
            value.name = new


def finish_export(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """An engine's raw export -> labkit's convention: input ``images`` and output ``output``
    (``logits`` or ``density``), a free batch dimension, checked. MindSpore exports a fixed
    batch of 1; its (and labkit's) models have no batch-dependent reshape, so freeing the
    dimension is sound, and the conversion's parity check runs batches to prove it. An older
    opset is raised to ``MIN_OPSET``."""
    if opset(model) < MIN_OPSET:
        model = onnx.version_converter.convert_version(model, MIN_OPSET)
    (inp,), (out,) = io_names(model)
    _rename(model, inp, INPUT)
    _rename(model, out, output)
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


def opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def select_outputs(path: Path, nodes: list[str], out: Path) -> None:
    """Keep only the tensors ``nodes`` as outputs (the seeds' "output nodes", e.g. ``446:0``)."""
    model = onnx.load(str(path))
    known = {o for n in model.graph.node for o in n.output}
    names = [n.split(":")[0] if n not in known else n for n in nodes]
    missing = [n for n, name in zip(nodes, names, strict=True) if name not in known]
    if missing:
        outputs = ", ".join(io_names(model)[1])
        raise LabkitError(f"output node(s) {', '.join(missing)} are not tensors of the exported model",
                          f"name tensors of the ONNX graph (its outputs: {outputs}); open it in Netron to see them")
    onnx.utils.extract_model(str(path), str(out), [INPUT], names, check_model=True)


def optimize_fp32(path: Path, out: Path) -> None:
    """ONNX Runtime's graph optimizations (constant folding, Conv+BN+ReLU fusion...), saved.
    EXTENDED, not ALL: ALL adds layout changes tied to this machine's CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def to_fp16(path: Path, out: Path) -> None:
    """Float16 weights and compute; inputs and outputs stay float32. ONNX Runtime runs
    float16 nodes where the CPU has kernels for them and casts around the rest."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(out))


def to_int8(path: Path, out: Path, calibration: list[np.ndarray], work: Path) -> None:
    """Static QDQ quantization: per-channel int8 weights, uint8 activations whose ranges are
    calibrated on ``calibration`` (batches of the float model's input): each batch's min/max,
    averaged over the batches. The plain min/max over all images let one outlier widen a
    range: the MindSpore flowers model then kept 97.0% top-1 agreement, 99.0% with the
    average (docs/BENCHMARKS.md)."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    prepared = work / "int8_prepared.onnx"
    quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    extra_options={"CalibMovingAverage": True})


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def shape_input(path: Path, out: Path, batch: int | None, layout: str, preprocess: Preprocess | None) -> None:
    """The input side: a fixed or free batch, NCHW or NHWC, float or (with ``preprocess``)
    uint8 pixels normalised inside the model."""
    model = onnx.load(str(path))
    value = next(i for i in model.graph.input if i.name == INPUT)
    dims = [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
    n, c, h, w = dims
    nodes, inits, current = [], [], "input_raw"
    dtype = TensorProto.UINT8 if preprocess else TensorProto.FLOAT
    if preprocess:
        nodes.append(helper.make_node("Cast", [current], ["input_float"], to=TensorProto.FLOAT))
        current = "input_float"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [current], ["input_nchw"], perm=[0, 3, 1, 2]))
        current = "input_nchw"
    if preprocess:
        if preprocess.channel_swap:
            inits.append(_const("pre_channels", np.array(list(range(c))[::-1], np.int64)))
            nodes.append(helper.make_node("Gather", [current, "pre_channels"], ["input_rgb"], axis=1))
            current = "input_rgb"
        shape = (1, c, 1, 1)
        inits += [_const("pre_mean", np.array(preprocess.mean, np.float32).reshape(shape)),
                  _const("pre_scale", (1 / np.array(preprocess.std, np.float32)).reshape(shape))]
        nodes += [helper.make_node("Sub", [current, "pre_mean"], ["input_centred"]),
                  helper.make_node("Mul", ["input_centred", "pre_scale"], ["input_normalised"])]
        current = "input_normalised"
    shape = [batch or n, h, w, c] if layout == "NHWC" else [batch or n, c, h, w]
    if nodes:
        _rename(model, INPUT, current)
        model.graph.input.remove(next(i for i in model.graph.input if i.name == current))
        _rename_in_nodes(nodes, "input_raw", INPUT)
        existing = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend([*nodes, *existing])
        model.graph.initializer.extend(inits)
        model.graph.input.insert(0, helper.make_tensor_value_info(INPUT, dtype, shape))
    else:
        model.graph.input[0].CopyFrom(helper.make_tensor_value_info(INPUT, dtype, shape))
    if batch:
        for o in model.graph.output:
            o.type.tensor_type.shape.dim[0].dim_value = batch
    del model.graph.value_info[:]
    onnx.save(onnx.shape_inference.infer_shapes(model), str(out))


def cast_outputs(path: Path, out: Path, to_fp16: bool) -> None:
    """Outputs as float16 when asked (the seeds' "output type"), float32 otherwise."""
    model = onnx.load(str(path))
    wanted = TensorProto.FLOAT16 if to_fp16 else TensorProto.FLOAT
    for o in model.graph.output:
        if o.type.tensor_type.elem_type != wanted:
            inner = f"{o.name}_before_cast"
            _rename_in_nodes(model.graph.node, o.name, inner)
            model.graph.node.append(helper.make_node("Cast", [inner], [o.name], to=wanted))
            o.type.tensor_type.elem_type = wanted
    onnx.save(model, str(out))

