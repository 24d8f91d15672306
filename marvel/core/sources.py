"""The DataSource contract: where raw character rows come from."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from marvel.core.schemas import RAW_COLUMNS, RAW_NUMERIC, RAW_TEXT


@dataclass(frozen=True)
class Lineage:
    """Where a model's data came from. Versions of one source (a new Kaggle export, a new table version,
    another seed of the same generator) share a `key`; `version` tells them apart."""

    kind: str  # "real" (a Kaggle file, a table) or "generated"
    source: str  # "kaggle", "table", "synthetic", ...
    key: str  # the lineage: models are compared on metrics only within one
    version: str  # which version of it (a checksum, a table version, a seed and size)

    @property
    def real(self) -> bool:
        return self.kind == REAL

    def tags(self) -> dict[str, str]:
        return {f"lineage.{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], prefix: str = "lineage.") -> Lineage | None:
        """The lineage a model version was tagged with (or a table row recorded, with another prefix); None
        where it was not recorded (made before lineage was)."""
        found = {k: tags.get(f"{prefix}{k}") for k in ("kind", "source", "key", "version")}
        if any(v is None or v != v for v in found.values()):  # missing, or NaN in older table rows
            return None
        return cls(**{k: str(v) for k, v in found.items()})


REAL = "real"
GENERATED = "generated"


def digest(value: object, size: int = 16) -> str:
    """A short, stable hash of anything JSON can say (sorted keys)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:size]


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

    def check(self) -> None:  # noqa: B027 (a hook: sources with nothing to check need not override it)
        """Raise `MarvelError` now if `load` cannot work (a missing file, a missing table): called before a
        run opens anything, so a user error costs no MLflow run."""

    @abstractmethod
    def lineage(self) -> Lineage:
        """Which data lineage these rows belong to (and which version of it)."""


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


def _as_text(v: object) -> str | None:
    """A text cell as str: a table may type a text column as numbers (a Unity Catalog table of the Kaggle file
    has PageID bigint), and 1678 (or 1678.0, after pandas met a missing value) is the id "1678"."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Put a frame into the raw contract's column order and dtypes (text as object, numbers as float)."""
    out = pd.DataFrame(index=df.index)
    for col in RAW_TEXT:
        s = df[col] if col in df else pd.Series(None, index=df.index, dtype=object)
        text = s.astype(object).where(s.notna(), None)
        # a column of strings (and missing cells) is text already; only other cells go through `_as_text`
        # (a C scan instead of a Python call per cell: half the time of generating a million synthetic rows)
        if pd.api.types.infer_dtype(text, skipna=True) not in ("string", "empty"):
            text = text.map(_as_text)
        out[col] = text
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
