"""Parameter names across engines. The two engines' models share names except for
BatchNorm, which PyTorch calls weight/bias/running_mean/running_var and MindSpore
gamma/beta/moving_mean/moving_variance. Arrays are NumPy, in the same layout in both
(conv OIHW, dense out x in), so moving weights is renaming them."""
from __future__ import annotations

TORCH_TO_MS_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
MS_TO_TORCH_BN = {v: k for k, v in TORCH_TO_MS_BN.items()}


def torch_to_mindspore(arrays: dict) -> dict:
    """Rename a PyTorch state dict (NumPy values) to MindSpore parameter names."""
    bn_layers = {k.rsplit(".", 1)[0] for k in arrays if k.endswith(".running_mean")}
    out = {}
    for name, value in arrays.items():
        layer, _, leaf = name.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        out[f"{layer}.{TORCH_TO_MS_BN[leaf]}" if layer in bn_layers else name] = value
    return out


def mindspore_to_torch(arrays: dict) -> dict:
    """Rename MindSpore parameters (NumPy values) to PyTorch state-dict names."""
    out = {}
    for name, value in arrays.items():
        layer, _, leaf = name.rpartition(".")
        out[f"{layer}.{MS_TO_TORCH_BN[leaf]}" if leaf in MS_TO_TORCH_BN else name] = value
    return out
