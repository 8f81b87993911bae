"""The built-in PyTorch training script (a boot file in the ModelArts convention):

    python train.py --data_url VERSION_DIR --train_url OUT_DIR --algorithm ResNet50 --batch_size=32 ...

Run by ``labkit train create`` as a subprocess, under ``torchrun`` for ``--device-num N``.
The loop is ``labkit.algorithms.loop``; the PyTorch hooks are in ``engine``.
"""
from __future__ import annotations

import sys

from labkit.algorithms import loop
from labkit.algorithms.pytorch.engine import TorchEngine


def main(argv=None) -> int:
    return loop.main(TorchEngine(), argv)


if __name__ == "__main__":
    sys.exit(main())
