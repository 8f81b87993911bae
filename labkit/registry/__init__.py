"""Stage 4: the model registry (the seeds' "import a model": from a training job, from a
conversion, or from a directory), versions 0.0.1, 0.0.2, ... with a ModelArts config.json.

    from labkit import registry
    registry.import_model("flowers", from_conversion="flowers-int8")   # -> flowers@0.0.1, NORMAL
    registry.config("flowers")                                         # config.json
"""
from labkit.registry.models import (choose_source, config, deployable, ensure_model, import_model, list_models,
                                    model_dir, show, source_name)

__all__ = ["choose_source", "config", "deployable", "ensure_model", "import_model", "list_models", "model_dir", "show",
           "source_name"]
