"""Disk sizes the docs quote: the installed environment, a wheelhouse (when given), and one
ResNet-50 checkpoint of weights and optimizer state (a quick job: the size depends on the model,
not on the images), against the weights alone as a baseline.

    .venv/bin/python bench/bench_sizes.py [--wheelhouse wheelhouse]
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from results import figure, save


def size(folder: Path) -> int:
    """Bytes of the files under ``folder``, a hard-linked file counted once (as `labkit status` counts)."""
    from labkit import workspace

    return workspace.disk_bytes([folder])[0][0]


def checkpoint(tmp: Path) -> list[dict]:
    os.environ["LABKIT_HOME"] = str(tmp)
    from labkit import data, train
    from labkit.algorithms.pytorch import models

    dataset = data.ensure_version("flowers", profile="quick", log=lambda *_: None)
    rec = train.create("ResNet50", "pytorch", dataset, "sizes", {"max_epochs": "1"}, profile="quick", wait=True,
                       log=lambda *_: None)
    saved = sorted((train.output_dir(f"sizes@{rec['version']}") / "checkpoints").glob("epoch_*"))
    if rec["state"] != "COMPLETED" or not saved:
        sys.exit(f"the quick ResNet-50 job did not leave a checkpoint ({rec['state']}: {rec.get('reason')})")
    weights = sum(p.numel() * p.element_size() for p in models.build("resnet50", 5).parameters())
    return [figure("checkpoint.resnet50", "one ResNet-50 checkpoint of weights and optimizer state (5 classes)",
                   saved[0].stat().st_size, "bytes", baseline=weights, file=saved[0].name)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheelhouse", type=Path, help="a folder made by `make wheelhouse`")
    args = ap.parse_args()
    figures = [figure("venv", "the installed environment (.venv)", size(Path(sys.prefix)), "bytes")]
    if args.wheelhouse:
        wheels = list(args.wheelhouse.glob("*.whl"))
        figures.append(figure("wheelhouse", "every dependency as a wheel (make wheelhouse)", size(args.wheelhouse),
                              "bytes", wheels=len(wheels)))
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-sizes-"))
    try:
        figures += checkpoint(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in figures:
        print(f"{f['what']}: {f['value'] / 2**20:,.0f} MiB")
    save("sizes", figures, arguments={"wheelhouse": bool(args.wheelhouse)})


if __name__ == "__main__":
    main()
