"""Stage 3: model conversion, the portable counterpart of Ascend's ATC (ONNX -> om).

    from labkit import convert
    rec = convert.create("flowers-resnet", "onnx-ort-int8", name="flowers-int8")
    convert.report("flowers-int8")["models"]     # source engine vs plain ONNX vs converted

A conversion exports the job's best checkpoint (ONNX; MindIR too for MindSpore) into the
job's version directory, applies a template (ONNX Runtime FP32 / FP16 / INT8) and the
options the seeds name (input shape, NCHW/NHWC, output nodes, output type, pre-processing
inside the model), and keeps the result unless its parity gate fails it.
"""
from labkit.convert.conversions import (COMPARED, TEMPLATES, comparison, create, export, exports, first_completed,
                                        latest_completed, list_tasks, model_path, of_same_job, parse_shape, report, show,
                                        signature, stop)

__all__ = ["COMPARED", "TEMPLATES", "comparison", "create", "export", "exports", "first_completed", "latest_completed",
           "list_tasks", "model_path", "of_same_job", "parse_shape", "report", "show", "signature", "stop"]
