"""marvel's own feature set (``features=marvel``, the default): the seed's columns plus what helps on real data.

Every addition was kept only if it improved held-out ROC AUC and log loss on the real sample
(see benchmarks/bench_features.py).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from marvel.features.origins import family_flags
from marvel.features.records import Columns, columns, list_items, team_counts, to_records
from marvel.features.seed import SeedProcessor

_FAMILIES = ["earth_616", "earth_numbered", "earth_lettered", "named", "unknown"]
_NUMBERED = re.compile(r"^Earth-[0-9]+$")
_LETTERED = re.compile(r"^Earth-.*[A-Za-z]")


@lru_cache(maxsize=65536)
def _family(u: str | None) -> str:
    if not u:
        return "unknown"
    if u == "Earth-616":
        return "earth_616"
    if _NUMBERED.match(u):
        return "earth_numbered"
    if _LETTERED.match(u):
        return "earth_lettered"
    return "named"


def universe_family(universe: pd.Series) -> pd.Series:
    """Earth-616 / numbered Earths / lettered Earths (Earth-TRN...) / named realities / unknown."""
    return pd.Series([_family(u) for u in universe.tolist()], index=universe.index, dtype=object)


class MarvelProcessor(SeedProcessor):
    """Seed features plus list sizes, missing-value indicators, universe families and frequencies, origin
    keywords and an out-of-fold target encoding of creators.

    Fitted state (beyond the seed's): ``universe_freq_`` (training share of each universe),
    ``creator_rate_`` (smoothed alive rate per creator), ``prior_`` (training alive rate).
    """

    def __init__(
        self,
        min_universe_count: int = 50,
        creator_smoothing: float = 20.0,
        creator_min_count: int = 5,
        n_folds: int = 5,
        random_state: int = 0,
    ) -> None:
        super().__init__(min_universe_count=min_universe_count)
        self.creator_smoothing = creator_smoothing
        self.creator_min_count = creator_min_count
        self.n_folds = n_folds
        self.random_state = random_state

    # -- fitted statistics ------------------------------------------------------------------------
    def _creator_table(self, creators: list[list[str]], y: np.ndarray) -> tuple[dict[str, float], float]:
        prior = float(np.mean(y)) if len(y) else 0.5
        exploded = pd.DataFrame({"creator": creators, "y": y}).explode("creator").dropna()
        stats = exploded.groupby("creator")["y"].agg(["sum", "count"])
        stats = stats[stats["count"] >= self.creator_min_count]
        m = self.creator_smoothing
        rate = (stats["sum"] + m * prior) / (stats["count"] + m)
        return rate.to_dict(), prior

    @staticmethod
    def _creator_score(creators: list[list[str]], table: dict[str, float], prior: float) -> np.ndarray:
        out = np.zeros(len(creators))
        for i, names in enumerate(creators):
            rates = [table[n] for n in names if n in table]
            if rates:
                out[i] = float(np.mean(rates)) - prior
        return out

    def fit(self, X: pd.DataFrame, y: object = None) -> MarvelProcessor:
        super().fit(X, y)
        r = to_records(X)
        universe = r["Universe"].fillna("Unknown")
        self.universe_freq_ = universe.value_counts(normalize=True).to_dict()
        yy = np.zeros(len(r)) if y is None else np.asarray(y, dtype=float)
        self.creator_rate_, self.prior_ = self._creator_table(list_items(r["Creators"].tolist()), yy)
        self.feature_names_out_ = self.seed_columns_ + list(self._extra(columns(r.head(1))))
        return self

    def fit_transform(self, X: pd.DataFrame, y: object = None, **fit_params: object) -> pd.DataFrame:
        """Fit, then transform the training rows with an out-of-fold creator encoding.

        Scoring a training row with a creator rate that counted that row's own label leaks the label and makes
        the model trust the encoding far more than it should on new rows; as scikit-learn's TargetEncoder,
        each training row is encoded by statistics from the other folds.
        """
        self.fit(X, y)
        out = self.transform(X)
        if y is None or self.n_folds < 2:
            return out
        r = to_records(X)
        yy = np.asarray(y, dtype=float)
        oof = np.zeros(len(r))
        # with fewer rows of a class than folds there is no honest out-of-fold estimate: encode nothing
        n_folds = min(self.n_folds, int(np.bincount(yy.astype(int), minlength=2).min()))
        if n_folds < 2:
            out["creator_alive_rate"] = oof
            return out
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=self.random_state)
        creators = list_items(r["Creators"].tolist())
        for fit_idx, enc_idx in folds.split(np.zeros(len(yy)), yy.astype(int)):
            table, prior = self._creator_table([creators[i] for i in fit_idx], yy[fit_idx])
            oof[enc_idx] = self._creator_score([creators[i] for i in enc_idx], table, prior)
        out["creator_alive_rate"] = oof
        return out

    # -- features -----------------------------------------------------------------------------------
    def _extra(self, r: Columns) -> dict[str, list | np.ndarray]:
        origins = r["Origin"]
        creators = list_items(r["Creators"])
        universes = r["Universe"]
        out: dict[str, list | np.ndarray] = {
            "n_teams": team_counts(r["Teams"]),
            "n_creators": [len(c) for c in creators],
            "height_known": (~np.isnan(r["Height"])).astype("int64"),
            "weight_known": (~np.isnan(r["Weight"])).astype("int64"),
            "identity_known": [int(v is not None) for v in r["Identity"]],
            "marital_known": [int(v is not None) for v in r["Marital_Status"]],
            "origin_known": [int(o is not None) for o in origins],
            "universe_family": [_family(u) for u in universes],
            "universe_freq": np.array(
                [self.universe_freq_.get(u if u is not None else "Unknown", 0.0) for u in universes],
                dtype="float64",
            ),
        }
        for family, flags in family_flags(origins).items():
            out[f"origin_{family}"] = flags
        out["creator_alive_rate"] = self._creator_score(creators, self.creator_rate_, self.prior_)
        return out

    def _frame(self, clean: dict[str, list | np.ndarray], index: pd.Index) -> pd.DataFrame:
        family = clean.pop("universe_family", None)
        frame = super()._frame(clean, index)
        if family is not None:
            frame["universe_family"] = pd.Categorical(family, categories=_FAMILIES)
        return frame

    def _features(self, r: Columns) -> dict[str, list | np.ndarray]:
        return {**self._transform_records(r), **self._extra(r)}
