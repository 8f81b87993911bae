"""The algorithms: model definitions and training scripts, one module per engine with the
same names (``labkit.algorithms.pytorch`` and ``labkit.algorithms.mindspore``), so that the
architecture tables in ``configs`` are written once and read the same in both."""
