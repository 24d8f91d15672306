"""The synthetic Alive model's features. Shared with benchmarks/calibrate_synthetic.py, which fits the logistic
regression on the real sample with exactly these functions, so the coefficients in the config mean the same
thing here. Origins are read through the one keyword table (`marvel.features.origins`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from marvel.features.origins import FAMILIES, family_flags

ALIVE_FEATURES: list[str] = [
    "identity_secret",
    "identity_missing",
    "gender_female",
    "gender_other",
    "gender_missing",
    "marital_married",
    "marital_widowed",
    "marital_other",
    "marital_missing",
    "teams_log1p",
    "creators_log1p",
    "earth_616",
    *[f"origin_{f}" for f in FAMILIES],
    "origin_missing",
    "height_known",
    "weight_known",
]


def _identity_features(s: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"identity_secret": s.eq("Secret"), "identity_missing": s.isna()}, index=s.index)


def _gender_features(s: pd.Series) -> pd.DataFrame:
    low = s.astype("string").str.strip().str.lower()
    female, male, missing = low.eq("female").fillna(False), low.eq("male").fillna(False), s.isna()
    return pd.DataFrame(
        {"gender_female": female, "gender_other": ~(female | male | missing), "gender_missing": missing},
        index=s.index,
    )


def _marital_features(s: pd.Series) -> pd.DataFrame:
    married, widowed, missing = s.eq("Married"), s.eq("Widowed"), s.isna()
    other = ~(married | widowed | missing | s.eq("Single"))
    return pd.DataFrame(
        {
            "marital_married": married,
            "marital_widowed": widowed,
            "marital_other": other,
            "marital_missing": missing,
        },
        index=s.index,
    )


def _universe_features(s: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"earth_616": s.eq("Earth-616")}, index=s.index)


def _origin_features(s: pd.Series) -> pd.DataFrame:
    origins = [None if v is None or v != v else str(v) for v in s.tolist()]
    cols: dict[str, object] = {
        f"origin_{f}": np.asarray(v, dtype=bool) for f, v in family_flags(origins).items()
    }
    cols["origin_missing"] = s.isna().to_numpy()
    return pd.DataFrame(cols, index=s.index)


# Raw column -> function of that column's values alone. The generator applies these to the small table of
# distinct values and gathers by code, instead of running string operations on every row.
CATEGORY_FEATURES: dict[str, Callable[[pd.Series], pd.DataFrame]] = {
    "Identity": _identity_features,
    "Gender": _gender_features,
    "Marital Status": _marital_features,
    "Universe": _universe_features,
    "Origin": _origin_features,
}


def list_length(s: pd.Series) -> pd.Series:
    """Number of items of a "; "-separated list (0 when missing)."""
    return (s.astype("string").str.count("; ") + 1).fillna(0).astype("int64")


def alive_features(df: pd.DataFrame) -> pd.DataFrame:
    """The Alive model's features (ALIVE_FEATURES, float) of raw Kaggle rows."""
    parts = [fn(df[col]) for col, fn in CATEGORY_FEATURES.items()]
    counts = pd.DataFrame(
        {
            "teams_log1p": np.log1p(list_length(df["Teams"])),
            "creators_log1p": np.log1p(list_length(df["Creators"])),
            "height_known": df["Height (m)"].notna(),
            "weight_known": df["Weight (kg)"].notna(),
        },
        index=df.index,
    )
    return pd.concat([*parts, counts], axis=1)[ALIVE_FEATURES].astype("float64")
