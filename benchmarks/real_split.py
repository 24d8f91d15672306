"""The pipeline's own train/test split of the real sample, without MLflow or tables (for benchmarks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from marvel.core.quarantine import split_valid, to_split_rows
from marvel.core.schemas import RAW_NUMERIC, RawCharacters
from marvel.data.kaggle import KaggleSource


def real_split(path: str, test_size: float = 0.2, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = KaggleSource(path).load()
    good, _ = split_valid(raw, RawCharacters, table="raw", stage="bench", run_id="bench", numeric=RAW_NUMERIC)
    rows = to_split_rows(good)
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=rows["Alive"])
    return (train.sort_values("Id").reset_index(drop=True), test.sort_values("Id").reset_index(drop=True))


# the real sample beside the repo (as CI lays it out); MARVEL_REAL_DATA overrides
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "marvel_sample.csv"
