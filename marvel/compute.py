"""Where a stage's row-wise work runs (``env.compute``): pandas in this process, or Spark.

The stages call these few methods instead of pandas directly, so the same stage code runs on a laptop and on
a cluster; the engine only instantiates ``env.compute`` like any other part. `PandasCompute` is exactly what
the stages did before there was a choice (the local path is unchanged); `marvel.spark.compute.SparkCompute`
runs the same pandas functions per partition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from marvel.data.base import DataSource


class PandasCompute:
    """Everything in one pandas frame in this process."""

    name = "pandas"

    def load(self, source: DataSource) -> pd.DataFrame:
        return source.load()

    def count(self, frame: pd.DataFrame) -> int:
        return len(frame)

    def validate(self, raw: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(valid train/test rows, quarantined rows) of raw rows; see `marvel.stages.process.validate_rows`."""
        from marvel.stages.process import validate_rows

        return validate_rows(raw, run_id)

    def transform(self, processor: Any, frame: pd.DataFrame) -> pd.DataFrame:
        return processor.transform(frame)

    def read(self, store: Any, name: str, version: int | None = None) -> pd.DataFrame:
        return store.read(name, version)

    def predictions(
        self, model_uri: str, frame: pd.DataFrame, threshold: float, constants: dict[str, Any]
    ) -> pd.DataFrame:
        """Id, P(alive) and the label for every row, by the registered pipeline's pyfunc (predict_proba)."""
        import mlflow.pyfunc

        from marvel.schemas import INPUT_COLUMNS

        model = mlflow.pyfunc.load_model(model_uri)
        proba = np.asarray(model.predict(frame[[c for c in INPUT_COLUMNS if c in frame.columns]]))[:, 1]
        out = pd.DataFrame({"Id": frame["Id"].astype(str).to_numpy(), "probability_alive": proba})
        out["prediction"] = np.where(proba >= threshold, "alive", "dead")
        return out.assign(**constants)


def compute_for(cfg: DictConfig) -> Any:
    """The run's compute: ``env.compute`` when it names a ``_target_``, else pandas (older configs said
    ``compute: pandas``)."""
    spec = cfg.env.get("compute")
    if isinstance(spec, DictConfig) and spec.get("_target_"):
        from hydra.utils import instantiate

        return instantiate(spec, _convert_="all")
    return PandasCompute()
