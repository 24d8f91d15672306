"""One pandera `DataFrameModel` per table: the single definition of every table marvel reads or writes.

The same classes validate data at every step, give hypothesis strategies for property tests, give the
Spark schemas and document the tables (see README "Tables").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

# The raw Kaggle columns, in file order. The unnamed leading index column is not part of the contract.
RAW_COLUMNS: list[str] = [
    "PageID",
    "Name",
    "Universe",
    "URL",
    "Identity",
    "Gender",
    "Alive",
    "Marital Status",
    "Teams",
    "Height (m)",
    "Weight (kg)",
    "Origin",
    "Creators",
]
RAW_NUMERIC: list[str] = ["Height (m)", "Weight (kg)"]
RAW_TEXT: list[str] = [c for c in RAW_COLUMNS if c not in RAW_NUMERIC]

# Kaggle column -> model-input column (the source platform's serving names).
RAW_TO_INPUT: dict[str, str] = {
    "PageID": "Id",
    "Name": "Name",
    "Universe": "Universe",
    "Identity": "Identity",
    "Gender": "Gender",
    "Marital Status": "Marital_Status",
    "Teams": "Teams",
    "Height (m)": "Height",
    "Weight (kg)": "Weight",
    "Origin": "Origin",
    "Creators": "Creators",
}
INPUT_COLUMNS: list[str] = list(RAW_TO_INPUT.values())
INPUT_REQUIRED: list[str] = [
    "Height",
    "Weight",
    "Universe",
    "Identity",
    "Gender",
    "Marital_Status",
    "Teams",
    "Origin",
]
INPUT_OPTIONAL: list[str] = ["Id", "Name", "Creators"]
TARGET = "Alive"
LABELS = {"Alive": 1, "Dead": 0}

# Physical bounds, not statistics: the wiki lists giants of ~300 m and beings of many tonnes, so these only
# catch values that cannot be a height or weight at all (negative, zero, absurd).
MAX_HEIGHT_M = 10_000.0
MAX_WEIGHT_KG = 1.0e9


class RawCharacters(pa.DataFrameModel):
    """A row of the Kaggle file, as read (every text column may be missing except the ids)."""

    PageID: Series[str] = pa.Field(nullable=False, unique=True, str_length={"min_value": 1})
    Name: Series[str] = pa.Field(nullable=True)
    Universe: Series[str] = pa.Field(nullable=True)
    URL: Series[str] = pa.Field(nullable=True)
    Identity: Series[str] = pa.Field(nullable=True)
    Gender: Series[str] = pa.Field(nullable=True)
    Alive: Series[str] = pa.Field(isin=list(LABELS), nullable=False)
    Marital_Status: Series[str] = pa.Field(nullable=True, alias="Marital Status")
    Teams: Series[str] = pa.Field(nullable=True)
    Height_m: Series[float] = pa.Field(gt=0, le=MAX_HEIGHT_M, nullable=True, alias="Height (m)")
    Weight_kg: Series[float] = pa.Field(gt=0, le=MAX_WEIGHT_KG, nullable=True, alias="Weight (kg)")
    Origin: Series[str] = pa.Field(nullable=True)
    Creators: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = "filter"  # extra columns (the unnamed index) are not part of the contract
        coerce = False
        ordered = False


class CharacterRecord(pa.DataFrameModel):
    """What the model takes: one character, by the source platform's serving names.

    Values are raw, as in the Kaggle file (``Teams`` a "; "-list or "0"/"1"), so the served model and the
    training pipeline see the same thing. ``Id``, ``Name`` and ``Creators`` are optional.
    """

    Height: Series[float] = pa.Field(gt=0, le=MAX_HEIGHT_M, nullable=True)
    Weight: Series[float] = pa.Field(gt=0, le=MAX_WEIGHT_KG, nullable=True)
    Universe: Series[str] = pa.Field(nullable=True)
    Identity: Series[str] = pa.Field(nullable=True)
    Gender: Series[str] = pa.Field(nullable=True)
    Marital_Status: Series[str] = pa.Field(nullable=True)
    Teams: Series[str] = pa.Field(nullable=True)
    Origin: Series[str] = pa.Field(nullable=True)
    Id: Series[str] | None = pa.Field(nullable=True)
    Name: Series[str] | None = pa.Field(nullable=True)
    Creators: Series[str] | None = pa.Field(nullable=True)

    class Config:
        strict = False  # extra keys (the seed's "Magic"/"Mutant") are accepted and ignored
        coerce = True


class SplitTable(CharacterRecord):
    """train_set / test_set: character records plus the label and where they came from."""

    Id: Series[str] = pa.Field(nullable=False, unique=True)
    Alive: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        strict = True
        coerce = True


class Quarantine(pa.DataFrameModel):
    """Rows that failed a schema, with the reason; nothing is dropped silently."""

    run_id: Series[str]
    stage: Series[str]
    table: Series[str]
    row_index: Series[int]
    reason: Series[str] = pa.Field(str_length={"min_value": 1})
    record: Series[str]  # the whole row as JSON, so nothing is lost
    quarantined_at: Series[pd.Timestamp]

    class Config:
        strict = True
        coerce = True


class Features(pa.DataFrameModel):
    """Processor output: the columns every feature set produces (feature sets may add more)."""

    Height: Series[float] = pa.Field(nullable=True, ge=0)
    Weight: Series[float] = pa.Field(nullable=True, ge=0)
    Universe: Series[pd.CategoricalDtype] = pa.Field(nullable=False)
    Identity: Series[pd.CategoricalDtype] = pa.Field(nullable=False)
    Gender: Series[pd.CategoricalDtype] = pa.Field(nullable=False)
    Marital_Status: Series[pd.CategoricalDtype] = pa.Field(nullable=False)
    Origin: Series[pd.CategoricalDtype] = pa.Field(nullable=False)
    Teams: Series[np.int64] = pa.Field(ge=0)
    Magic: Series[np.int64] = pa.Field(isin=[0, 1])
    Mutant: Series[np.int64] = pa.Field(isin=[0, 1])

    class Config:
        strict = False
        coerce = False


def empty(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """An empty frame with the model's columns and dtypes."""
    return model.to_schema().coerce_dtype(pd.DataFrame(columns=list(model.to_schema().columns)))


class InferenceLog(pa.DataFrameModel):
    """`custom_model_payload`: one row per request, the columns of a Databricks inference table, plus which
    model, version and A/B variant answered. Written by the serving layer, read by the monitor.

    Every scoring request that passes auth is one complete row, refused ones too (status 400/411/413/500,
    ``response`` holds the error, model columns are null); 401s and unknown routes are not logged. Only rows
    with ``status_code == 200`` carry predictions. ``request`` is the body as received (valid JSON whenever
    the status is 200; "" when a 413 body was too large to keep). A batch split across A/B variants has
    ``variant`` "A,B" and ``served_model_version`` e.g. "1,2" (config order); its ``response`` has a
    per-record ``variants`` list.
    """

    databricks_request_id: Series[str] = pa.Field(unique=True)
    client_request_id: Series[str] = pa.Field(nullable=True)
    date: Series[pd.Timestamp]  # the request's UTC day (midnight), as Databricks' DATE column
    # epoch ms of arrival (or of X-Marvel-Request-Time when deploy.accept_request_time: replayed traffic)
    timestamp_ms: Series[np.int64] = pa.Field(gt=0)
    status_code: Series[np.int64] = pa.Field(ge=100, le=599)
    execution_duration_ms: Series[np.int64] = pa.Field(ge=0)
    request: Series[str]  # the request body as JSON
    response: Series[str]  # the response body as JSON
    served_model_name: Series[str] = pa.Field(nullable=True)
    served_model_version: Series[str] = pa.Field(nullable=True)
    variant: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


class Labels(pa.DataFrameModel):
    """`labels`: ground truth that arrives after the prediction, keyed by the record's Id."""

    Id: Series[str] = pa.Field(nullable=False)
    label: Series[int] = pa.Field(isin=[0, 1])  # 1 = alive, as training's `Alive`
    labelled_at: Series[pd.Timestamp]

    class Config:
        strict = True
        coerce = True


class ProcessStats(pa.DataFrameModel):
    """`process_stats`: one row per processing: the row accounting and the table versions it wrote."""

    rows_raw: Series[int] = pa.Field(ge=0)
    rows_quarantined: Series[int] = pa.Field(ge=0)
    rows_train: Series[int] = pa.Field(ge=0)
    rows_test: Series[int] = pa.Field(ge=0)
    version_raw: Series[int]
    version_train_set: Series[int]
    version_test_set: Series[int]
    version_quarantine: Series[int]  # -1: no quarantine table yet
    run_id: Series[str]
    fingerprint: Series[str]
    source: Series[str]
    lineage_kind: Series[str]
    lineage_source: Series[str]
    lineage_key: Series[str]
    lineage_version: Series[str]
    processed_at: Series[pd.Timestamp]

    class Config:
        strict = True
        coerce = True


class Predictions(pa.DataFrameModel):
    """`predictions`: batch scores of a table by a registered model (stage `score`)."""

    Id: Series[str]
    probability_alive: Series[float] = pa.Field(ge=0, le=1)
    prediction: Series[str] = pa.Field(isin=["alive", "dead"])
    model_name: Series[str]
    model_version: Series[str]
    scored_at: Series[pd.Timestamp]

    class Config:
        strict = True
        coerce = True
