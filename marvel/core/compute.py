"""Where a stage's row-wise work runs (``env.compute``): the `Compute` protocol, and pandas in this process.

Stages call only these operations for work whose code differs by engine, so the same stage runs on a laptop
and on a cluster without knowing which: `PandasCompute` here, `marvel.spark.compute.SparkCompute` on Spark
(which runs the same pandas functions per partition). A frame is whatever the engine works on (a pandas
DataFrame here, a Spark DataFrame there); stages pass it along and never look inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from marvel.core.labels import labels
from marvel.core.quarantine import validate_rows
from marvel.core.schemas import INPUT_COLUMNS
from marvel.core.sources import DataSource
from marvel.core.tables import TableRef, TableStore
from marvel.core.tracking import load_pyfunc

Frame = Any  # pandas.DataFrame | pyspark.sql.DataFrame: opaque to stages


@runtime_checkable
class Compute(Protocol):
    """Every operation whose code differs by engine."""

    name: str

    def load(self, source: DataSource) -> Frame:
        """The source's raw rows (generated in parallel partitions where the source can)."""
        ...

    def count(self, frame: Frame) -> int: ...

    def validate(self, raw: Frame, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(valid train/test rows, quarantined rows), both pandas: the model trains on the driver."""
        ...

    def transform(self, processor: Any, frame: Frame) -> Frame:
        """A fitted feature processor applied to every row."""
        ...

    def read(self, store: TableStore, name: TableRef, version: int | None = None) -> Frame:
        """A table as this engine's frame (never collected to the driver on Spark)."""
        ...

    def rename(self, frame: Frame, columns: Mapping[str, str]) -> Frame:
        """Columns renamed where present; absent ones are ignored."""
        ...

    def predictions(
        self, model_uri: str, frame: Frame, threshold: float, constants: Mapping[str, Any]
    ) -> Frame:
        """Id, P(alive) and the label of every row by a registered pipeline, plus constant columns."""
        ...

    def head(self, frame: Frame, n: int) -> pd.DataFrame:
        """The first `n` rows as pandas (to check a sample against a contract)."""
        ...


class PandasCompute:
    """Everything in one pandas frame in this process."""

    name = "pandas"

    def load(self, source: DataSource) -> pd.DataFrame:
        return source.load()

    def count(self, frame: pd.DataFrame) -> int:
        return len(frame)

    def validate(self, raw: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        return validate_rows(raw, run_id)

    def transform(self, processor: Any, frame: pd.DataFrame) -> pd.DataFrame:
        out: pd.DataFrame = processor.transform(frame)
        return out

    def read(self, store: TableStore, name: TableRef, version: int | None = None) -> pd.DataFrame:
        return store.read(name, version)

    def rename(self, frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
        return frame.rename(columns={k: v for k, v in columns.items() if k in frame.columns})

    def predictions(
        self, model_uri: str, frame: pd.DataFrame, threshold: float, constants: Mapping[str, Any]
    ) -> pd.DataFrame:
        model = load_pyfunc(model_uri)
        proba = np.asarray(model.predict(frame[[c for c in INPUT_COLUMNS if c in frame.columns]]))[:, 1]
        out = pd.DataFrame({"Id": frame["Id"].astype(str).to_numpy(), "probability_alive": proba})
        out["prediction"] = labels(proba, threshold)
        return out.assign(**constants)

    def head(self, frame: pd.DataFrame, n: int) -> pd.DataFrame:
        return frame.head(n)
