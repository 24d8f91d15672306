"""The DataSource contract: where raw character rows come from."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from marvel.core.schemas import RAW_COLUMNS, RAW_NUMERIC, RAW_TEXT


class DataSource(ABC):
    """Loads raw character rows.

    `load()` returns a DataFrame with exactly `RAW_COLUMNS`: text columns as pandas ``object`` dtype holding
    ``str`` or missing (``None``/NaN), numeric columns as ``float64`` with NaN for missing (or, where some
    cells do not parse, as the text read, so validation can quarantine those rows with the value). Validation and
    quarantine happen in the engine, not here, so a source never drops a row.
    """

    #: a short description for run summaries and MLflow dataset sources
    description: str = ""

    @abstractmethod
    def load(self) -> pd.DataFrame: ...

    def fingerprint(self) -> str:
        """What, beyond the source's config, decides its rows (a file's size and time); "" if nothing."""
        return ""


class PartitionedSource(DataSource):
    """A source that builds its rows in independent, seeded partitions (a generator).

    A row depends only on ``(seed, partition)`` and the source's options, so an engine may build partitions
    in parallel (Spark executors) and a simulation may draw fresh partitions per window. PageIDs carry the
    partition, so partitions never share an id.
    """

    n_rows: int
    seed: int

    @abstractmethod
    def generate(self, n_rows: int, seed: int, partition: int = 0) -> pd.DataFrame:
        """`n_rows` raw rows of partition `partition` (in the raw contract, as `load`)."""

    def load(self) -> pd.DataFrame:
        return self.generate(self.n_rows, self.seed, partition=0)


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Put a frame into the raw contract's column order and dtypes (text as object, numbers as float)."""
    out = pd.DataFrame(index=df.index)
    for col in RAW_TEXT:
        s = df[col] if col in df else pd.Series(None, index=df.index, dtype=object)
        out[col] = s.astype(object).where(s.notna(), None)
    for col in RAW_NUMERIC:
        s = df[col] if col in df else pd.Series(np.nan, index=df.index)
        parsed = pd.to_numeric(s, errors="coerce").astype("float64")
        if (s.notna() & parsed.isna()).any():
            # keep the text of a column with unparseable cells: validation quarantines those rows with
            # the value in the reason, rather than turning it into a silent NaN here
            out[col] = s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
        else:
            out[col] = parsed
    return out[RAW_COLUMNS]
