"""labkit: the whole life of a deep-learning model, on one laptop, offline.

Sub-packages follow the workflow stages (``labkit.data``, ...). Importing ``labkit``
is deliberately cheap: no engine (MindSpore, PyTorch) and no plotting library is
imported until a stage that needs it is used.
"""
from labkit.errors import LabkitError
from labkit.profiles import profile

__version__ = "0.1.0"
__all__ = ["LabkitError", "profile", "__version__"]
