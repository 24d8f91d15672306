"""The source platform's features, reproduced exactly (``features=seed``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from marvel.features.origins import seed_group
from marvel.features.records import Columns, columns, record_columns, team_counts, to_records

CATEGORICAL = ("Universe", "Identity", "Gender", "Marital_Status", "Origin")


def origin_group(origin: pd.Series) -> pd.Series:
    return pd.Series([seed_group(o) for o in origin.tolist()], index=origin.index, dtype=object)


class SeedProcessor(TransformerMixin, BaseEstimator):
    """Universe missing -> "Unknown", rare universes -> "Other"; Teams -> has any team; Origin grouped; ...

    Fitted state: ``universes_`` (universes with at least `min_universe_count` training rows),
    ``categories_`` (the categories of every categorical column, so codes are stable at serving time) and
    ``seed_columns_`` (the output columns).
    """

    def __init__(self, min_universe_count: int = 50) -> None:
        self.min_universe_count = min_universe_count

    # -- the seed's cleaning, before any fitted state, as plain columns --------------------------------
    @staticmethod
    def _clean(r: Columns) -> dict[str, list | np.ndarray]:
        origins = r["Origin"]
        lower = [o.lower() if o is not None else "" for o in origins]
        return {
            "Height": r["Height"],
            "Weight": r["Weight"],
            "Universe": [u if u is not None else "Unknown" for u in r["Universe"]],
            "Identity": [v if v is not None else "Unknown" for v in r["Identity"]],
            "Gender": [g if g in ("Male", "Female") else "Other" for g in r["Gender"]],
            "Marital_Status": [
                "Unknown" if m is None else ("Widowed" if m == "Widow" else m) for m in r["Marital_Status"]
            ],
            "Origin": [seed_group(o) for o in origins],
            "Teams": [1 if t > 0 else 0 for t in team_counts(r["Teams"])],
            "Magic": [1 if "magic" in o else 0 for o in lower],
            "Mutant": [1 if ("mutate" in o or "mutant" in o) else 0 for o in lower],
        }

    def fit(self, X: pd.DataFrame, y: object = None) -> SeedProcessor:
        clean = self._clean(columns(to_records(X)))
        counts = pd.Series(clean["Universe"]).value_counts()
        self.universes_ = sorted(counts[counts >= self.min_universe_count].index)
        clean["Universe"] = self._group_universe(clean["Universe"])
        self.categories_ = {c: sorted(set(clean[c]) | {"Other", "Unknown"}) for c in CATEGORICAL}
        self.seed_columns_ = list(clean)
        self.feature_names_out_ = list(self.seed_columns_)
        return self

    def _group_universe(self, universe: list | np.ndarray) -> list[str]:
        keep = set(self.universes_) | {"Unknown"}
        return [u if u in keep else "Other" for u in universe]

    def _frame(self, clean: dict[str, list | np.ndarray], index: pd.Index) -> pd.DataFrame:
        """Columns to a frame; categoricals over the training categories, unseen values as "Other"."""
        data: dict[str, object] = {}
        for col, values in clean.items():
            if col in CATEGORICAL:
                data[col] = pd.Categorical(self._known(col, values), categories=self.categories_[col])
            elif isinstance(values, np.ndarray) and values.dtype.kind == "f":
                data[col] = values
            else:
                data[col] = np.asarray(values, dtype="int64")
        return pd.DataFrame(data, index=index)

    def _known(self, col: str, values: list | np.ndarray) -> list:
        """A categorical column's values over the training categories, unseen values as "Other"."""
        known = set(self.categories_[col])
        return [v if v in known else "Other" for v in values]

    def _transform_records(self, r: Columns) -> dict[str, list | np.ndarray]:
        clean = self._clean(r)
        clean["Universe"] = self._group_universe(clean["Universe"])
        return clean

    def _features(self, r: Columns) -> dict[str, list | np.ndarray]:
        """Every output column, unframed."""
        return self._transform_records(r)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        r = to_records(X)
        return self._frame(self._features(columns(r)), r.index)[self.feature_names_out_]

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, list | np.ndarray]:
        """The per-record path: exactly `transform`'s features for plain dict records, as columns in output
        order, without pandas; categorical columns hold their category ("Other" when unseen), numeric ones
        their numbers. Serving uses it for single records and small batches."""
        out = self._features(record_columns(records))
        return {
            col: self._known(col, out[col]) if col in CATEGORICAL else out[col]
            for col in self.feature_names_out_
        }

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)
