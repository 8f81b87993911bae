"""The built-in MindSpore training script (a boot file in the ModelArts convention):

    python train.py --data_url VERSION_DIR --train_url OUT_DIR --algorithm ResNet50 --batch_size=32 ...

Run by ``labkit train create`` as a subprocess, under ``msrun`` for ``--device-num N``.
The loop is ``labkit.algorithms.loop``; the MindSpore hooks are in ``engine``.
"""
from __future__ import annotations

import sys

from labkit.algorithms import loop
from labkit.algorithms.mindspore.engine import MindSporeEngine


def main(argv=None) -> int:
    return loop.main(MindSporeEngine(), argv)


if __name__ == "__main__":
    sys.exit(main())
