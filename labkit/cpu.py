"""The CPU a lab runs on, for the record: numbers from a barely trained model, and INT8's speed
and agreement, depend on it (docs/BENCHMARKS.md measures how much).

INT8 in ONNX Runtime multiplies uint8 by int8. With VNNI (AVX-512 VNNI or AVX-VNNI) or AMX that
is one exact dot-product instruction; with AVX2 alone it takes a pairwise multiply-add that
saturates at 16 bits, so INT8 gains less speed and may agree less with FP32. The parity gate
of every conversion measures the agreement on the machine itself.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

# /proc/cpuinfo flag -> the name people know it by, narrowest first
VECTOR_FEATURES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
                   "amx_int8": "AMX", "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX-BF16"}
# The features that compute bfloat16 natively (elsewhere BF16 is emulated, slower than FP32)
BF16_FEATURES = ("AVX-512 BF16", "AMX-BF16")
# Settings that change which kernels run (and so the low bits of results): recorded with the CPU.
KERNEL_SETTINGS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")
CPUINFO = Path("/proc/cpuinfo")
CGROUP_ROOT, PROC_CGROUP = Path("/sys/fs/cgroup"), Path("/proc/self/cgroup")


def cores() -> int:
    """The cores this process may use, which every thread pool of labkit is sized by: the CPUs
    it may run on (its affinity), capped by its cgroup CPU quota (what a container or a
    JupyterHub spawner grants), at least 1. ``os.cpu_count()`` sees the whole machine."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity outside Linux
        usable = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(usable, int(quota)) if quota is not None else usable)


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPUs this process's cgroup CPU quota allows, the tightest of its cgroup and every
    parent's: cgroup v2's ``cpu.max`` (quota / period) or, on a host with cgroup v1, the cpu
    controller's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; None when there is no quota."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if line.startswith("0::"):
            limits += _up_the_tree(root, path, _v2_quota)
        elif "cpu" in controllers.split(","):  # v1 mounts the controller as cpu/ (or cpu,cpuacct/)
            mount = root / controllers if (root / controllers).is_dir() else root / "cpu"
            limits += _up_the_tree(mount, path, _v1_quota)
    return min(limits) if limits else None


def _up_the_tree(mount: Path, path: str, quota) -> list[float]:
    """The quotas ``quota(folder)`` finds from the cgroup's folder up to the hierarchy's mount."""
    here, found = mount / path.strip().lstrip("/"), []
    while True:
        try:
            limit = quota(here)
        except (OSError, ValueError):
            limit = None
        if limit is not None:
            found.append(limit)
        if here == mount or mount not in here.parents:
            return found
        here = here.parent


def _v2_quota(folder: Path) -> float | None:
    quota, period = (folder / "cpu.max").read_text().split()
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(folder: Path) -> float | None:
    quota = int((folder / "cpu.cfs_quota_us").read_text())  # -1: no quota
    return quota / int((folder / "cpu.cfs_period_us").read_text()) if quota > 0 else None


def onnx_session(model: str | Path, threads: int | None = None):
    """An ONNX Runtime inference session on this CPU, set up the same way everywhere: ``threads``
    intra-op threads (default: every core this process may use), no inter-op pool, threads that sleep rather than spin
    between runs (a spinning pool steals the cores other requests and processes need), and only
    errors in the log."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def describe() -> dict:
    """``{"vendor", "model", "family", "cores", "features", "settings"}`` of this machine. ``features`` is
    read from /proc/cpuinfo (Linux); elsewhere it is None (unknown) and the model is the platform's word."""
    fields, flags = {}, set()
    if CPUINFO.exists():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "model name", "cpu family", "model") and key not in fields:
                fields[key] = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    return {"vendor": fields.get("vendor_id", platform.machine()),
            "model": fields.get("model name", platform.processor() or platform.machine()),
            "family": f"family {fields['cpu family']} model {fields['model']}" if "model" in fields else None,
            "cores": os.cpu_count(), "usable_cores": cores(),
            "features": [name for flag, name in VECTOR_FEATURES.items() if flag in flags] if flags else None,
            "settings": {k: os.environ[k] for k in KERNEL_SETTINGS if k in os.environ}}


def int8_outlook(features: list[str] | None) -> str:
    """What the vector features mean for INT8, in a sentence a learner can act on."""
    if features is None:
        return "vector features unknown on this system: the parity gate of each conversion measures INT8 here"
    if "AMX" in features or "AVX-512 VNNI" in features or "AVX-VNNI" in features:
        return ("INT8 runs on VNNI" + (" and AMX" if "AMX" in features else "") + " dot products: the fastest "
                "INT8 kernels (docs/BENCHMARKS.md measures how much faster than FP32)")
    if "AVX2" in features:
        return ("no VNNI: INT8 runs on AVX2 multiply-adds that can saturate, so it gains less speed and may "
                "agree less with FP32; the parity gate measures it, and a lab serves FP32 when INT8 does not pass")
    return "no AVX2: INT8 and FP32 both run on slow generic kernels; expect the labs to take much longer"


def native_bf16(features: list[str] | None) -> bool:
    """Whether a CPU with these features computes BF16 natively (unknown features: no)."""
    return bool(features) and any(f in features for f in BF16_FEATURES)


def native_precisions(features: list[str] | None) -> str:
    """The precisions this CPU computes natively, in a sentence a learner can act on."""
    if features is None:
        return "native precisions unknown on this system (FP32 always works)"
    if native_bf16(features):
        bf16 = [f for f in BF16_FEATURES if f in features]
        return f"native precisions: FP32 and BF16 ({', '.join(bf16)}): mixed precision can train faster here"
    return "native precisions: FP32 only (BF16 would be emulated here, slower than FP32)"


def summary(info: dict | None = None) -> str:
    """One line: vendor, model, cores and features."""
    info = info or describe()
    settings = ", ".join(f"{k}={v}" for k, v in info["settings"].items())
    family = f" {info['family']}" if info.get("family") else ""
    return (f"{info['model']} ({info['vendor']}{family}, {info['cores']} cores; "
            f"{'features unknown' if info['features'] is None else ', '.join(info['features']) or 'no AVX2'})"
            + (f"; {settings}" if settings else ""))
