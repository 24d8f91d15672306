"""What a registered model says about itself: its signature, input example, requirements, the code it carries.

Unity Catalog registers only models whose signature has inputs **and** outputs (MLflow's UC registry store
checks it before creating a version), so both models carry both.

The input schema takes what the source platform's clients send: ``Teams``, ``Magic`` and ``Mutant`` as int or
string (its notebook sends ``"Teams": 1``), ``Height``/``Weight`` as int or float (JSON ``70`` arrives as an
integer column, which MLflow refuses for a ``double`` column), every optional field optional. Those columns
are typed ``any`` (MLflow's `AnyType`); the processor's `to_records` turns each into text or a float.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

import marvel
from marvel.core.labels import PREDICTION_KEY, PROBABILITY_KEY, SERVED_MODEL_KEY
from marvel.core.schemas import INPUT_COLUMNS, INPUT_OPTIONAL

PACKAGE_DIR = str(Path(marvel.__file__).parent)
# typed `any`: int or string (Teams and the source platform's pre-digested flags), int or float (numbers)
ANY_TYPED = ("Height", "Weight", "Teams")
# the source platform's flags: accepted (and ignored: the features compute their own) so its clients work
SOURCE_FLAGS = ("Magic", "Mutant")


def requirements() -> list[str]:
    """Pinned to what trained the model; listing them avoids MLflow's slow requirement inference."""
    names = ["mlflow", "scikit-learn", "lightgbm", "pandas", "numpy", "pyarrow", "pandera", "cloudpickle"]
    return [f"{n}=={version(n)}" for n in names]


def input_schema() -> Schema:
    cols: list[ColSpec | TensorSpec] = [
        ColSpec(AnyType() if c in ANY_TYPED else "string", c, required=c not in INPUT_OPTIONAL)
        for c in INPUT_COLUMNS
    ]
    cols += [ColSpec(AnyType(), c, required=False) for c in SOURCE_FLAGS]
    return Schema(cols)


def basic_signature() -> ModelSignature:
    """The sklearn pipeline, served through ``predict_proba``: P(dead), P(alive) per record."""
    return ModelSignature(inputs=input_schema(), outputs=Schema([TensorSpec(np.dtype("float64"), (-1, 2))]))


def custom_signature() -> ModelSignature:
    """The custom pyfunc: ``{"Survival prediction": [...]}``, plus ``"Probability alive"`` when asked for, and
    ``"Served model"`` (``<name>/<version>``) where the serving endpoint tells the model who it is."""
    outputs = Schema(
        [
            ColSpec("string", PREDICTION_KEY),
            ColSpec("double", PROBABILITY_KEY, required=False),
            ColSpec("string", SERVED_MODEL_KEY, required=False),
        ]
    )
    params = ParamSchema([ParamSpec("return_probabilities", "boolean", False)])
    return ModelSignature(inputs=input_schema(), outputs=outputs, params=params)


def input_example() -> pd.DataFrame:
    """Two records as clients send them: the source platform's (``"Teams": 1``, integer weight, its flags)
    and one with the Kaggle file's values."""
    return pd.DataFrame(
        [
            {
                "Height": 1.88,
                "Weight": 90,
                "Universe": "Marvel",
                "Identity": "Secret",
                "Gender": "Male",
                "Marital_Status": "Single",
                "Teams": 1,
                "Origin": "Human",
                "Magic": 0,
                "Mutant": 0,
            },
            {
                "Id": "Peter_Parker_(Earth-616)",
                "Height": 1.78,
                "Weight": 76.5,
                "Universe": "Earth-616",
                "Identity": "Secret",
                "Gender": "Male",
                "Marital_Status": "Married",
                "Teams": "Avengers; X-Men",
                "Origin": "Human mutate",
            },
        ]
    )
