"""The source platform's features, reproduced exactly (``features=seed``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from marvel.features.records import team_count, to_records

# Checked in this order: the first word the lower-cased origin contains wins.
ORIGIN_GROUPS: tuple[str, ...] = (
    "Human",
    "Mutant",
    "Asgardian",
    "Alien",
    "Symbiote",
    "Robot",
    "Cosmic Being",
)
CATEGORICAL = ("Universe", "Identity", "Gender", "Marital_Status", "Origin")


def origin_group(origin: pd.Series) -> pd.Series:
    lower = origin.fillna("").str.lower()
    out = pd.Series("Other", index=origin.index, dtype=object)
    undecided = pd.Series(True, index=origin.index)
    for group in ORIGIN_GROUPS:
        hit = undecided & lower.str.contains(group.lower(), regex=False)
        out[hit] = group
        undecided &= ~hit
    out[origin.isna()] = "Unknown"
    return out


class SeedProcessor(TransformerMixin, BaseEstimator):
    """Universe missing -> "Unknown", rare universes -> "Other"; Teams -> has any team; Origin grouped; ...

    Fitted state: ``universes_`` (universes with at least `min_universe_count` training rows),
    ``categories_`` (the categories of every categorical column, so codes are stable at serving time) and
    ``seed_columns_`` (the output columns).
    """

    def __init__(self, min_universe_count: int = 50) -> None:
        self.min_universe_count = min_universe_count

    # -- the seed's cleaning, before any fitted state ------------------------------------------------
    def _clean(self, X: pd.DataFrame) -> pd.DataFrame:
        r = to_records(X)
        out = pd.DataFrame(index=r.index)
        out["Height"] = r["Height"]
        out["Weight"] = r["Weight"]
        out["Universe"] = r["Universe"].fillna("Unknown")
        out["Identity"] = r["Identity"].fillna("Unknown")
        out["Gender"] = r["Gender"].where(r["Gender"].isin(["Male", "Female"]), "Other")
        out["Marital_Status"] = r["Marital_Status"].fillna("Unknown").replace({"Widow": "Widowed"})
        origin = r["Origin"]
        lower = origin.fillna("").str.lower()
        out["Origin"] = origin_group(origin)
        out["Teams"] = (team_count(r["Teams"]) > 0).astype("int64")
        out["Magic"] = lower.str.contains("magic", regex=False).astype("int64")
        out["Mutant"] = (
            lower.str.contains("mutate", regex=False) | lower.str.contains("mutant", regex=False)
        ).astype("int64")
        return out

    def fit(self, X: pd.DataFrame, y: object = None) -> SeedProcessor:
        clean = self._clean(X)
        counts = clean["Universe"].value_counts()
        self.universes_ = sorted(counts[counts >= self.min_universe_count].index)
        clean["Universe"] = self._group_universe(clean["Universe"])
        self.categories_ = {c: sorted(set(clean[c]) | {"Other", "Unknown"}) for c in CATEGORICAL}
        self.seed_columns_ = list(clean.columns)
        self.feature_names_out_ = list(self.seed_columns_)
        return self

    def _group_universe(self, universe: pd.Series) -> pd.Series:
        return universe.where(universe.isin(self.universes_) | universe.eq("Unknown"), "Other")

    def _as_categories(self, df: pd.DataFrame) -> pd.DataFrame:
        # values never seen in training become "Other": the model gets a known category, never NaN
        for c in CATEGORICAL:
            known = self.categories_[c]
            col = df[c].where(df[c].isin(known), "Other")
            df[c] = pd.Categorical(col, categories=known)
        return df

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        clean = self._clean(X)
        clean["Universe"] = self._group_universe(clean["Universe"])
        return self._as_categories(clean)[self.seed_columns_]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)
