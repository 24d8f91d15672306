"""What a registered model says about itself: its signature, its requirements, the code it carries."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

import marvel
from marvel.core.schemas import INPUT_COLUMNS, INPUT_OPTIONAL

PACKAGE_DIR = str(Path(marvel.__file__).parent)


def requirements() -> list[str]:
    """Pinned to what trained the model; listing them avoids MLflow's slow requirement inference."""
    names = ["mlflow", "scikit-learn", "lightgbm", "pandas", "numpy", "pyarrow", "pandera", "cloudpickle"]
    return [f"{n}=={version(n)}" for n in names]


def input_signature(output: bool = True) -> ModelSignature:
    cols: list[ColSpec | TensorSpec] = [
        ColSpec("double" if c in ("Height", "Weight") else "string", c, required=c not in INPUT_OPTIONAL)
        for c in INPUT_COLUMNS
    ]
    if output:
        return ModelSignature(inputs=Schema(cols))
    return ModelSignature(
        inputs=Schema(cols), params=ParamSchema([ParamSpec("return_probabilities", "boolean", False)])
    )
