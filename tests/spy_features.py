"""A processor that records which characters it was shown, to prove selection never sees the test set."""

from __future__ import annotations

import pandas as pd

from marvel.features.marvel import MarvelProcessor

SEEN: set[str] = set()


class SpyProcessor(MarvelProcessor):
    def fit(self, X: pd.DataFrame, y: object = None) -> SpyProcessor:
        SEEN.update(X["Id"].astype(str))
        return super().fit(X, y)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        SEEN.update(X["Id"].astype(str))
        return super().transform(X)
