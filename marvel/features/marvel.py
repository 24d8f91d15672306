"""marvel's own feature set (``features=marvel``, the default): the seed's columns plus what helps on real data.

Every addition was kept only if it improved held-out ROC AUC and log loss on the real sample
(see benchmarks/bench_features.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from marvel.features.records import split_list, team_count, to_records
from marvel.features.seed import SeedProcessor

ORIGIN_KEYWORDS: dict[str, tuple[str, ...]] = {
    "origin_human": ("human",),
    "origin_mutate": ("mutate", "mutated"),
    "origin_mutant": ("mutant",),
    "origin_alien": ("alien", "kree", "skrull", "shi'ar"),
    "origin_artificial": ("robot", "android", "cyborg", "synthetic", "artificial", "sentinel", "decoy"),
    "origin_supernatural": ("demon", "god", "deity", "vampire", "spirit", "ghost", "undead", "zombie"),
    "origin_cosmic": ("cosmic", "celestial", "elder"),
}


def universe_family(universe: pd.Series) -> pd.Series:
    """Earth-616 / numbered Earths / lettered Earths (Earth-TRN...) / named realities / unknown."""
    u = universe.fillna("")
    fam = pd.Series("named", index=universe.index, dtype=object)
    fam[u.str.match(r"^Earth-[0-9]+$")] = "earth_numbered"
    fam[u.str.match(r"^Earth-.*[A-Za-z]")] = "earth_lettered"
    fam[u.eq("Earth-616")] = "earth_616"
    fam[u.eq("")] = "unknown"
    return fam


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
    def _creator_table(self, creators: pd.Series, y: np.ndarray) -> tuple[dict[str, float], float]:
        prior = float(np.mean(y)) if len(y) else 0.5
        lists = split_list(creators)
        exploded = pd.DataFrame({"creator": lists, "y": y}).explode("creator").dropna()
        stats = exploded.groupby("creator")["y"].agg(["sum", "count"])
        stats = stats[stats["count"] >= self.creator_min_count]
        m = self.creator_smoothing
        rate = (stats["sum"] + m * prior) / (stats["count"] + m)
        return rate.to_dict(), prior

    def _creator_score(self, creators: pd.Series, table: dict[str, float], prior: float) -> pd.Series:
        def score(names: list[str]) -> float:
            rates = [table[n] for n in names if n in table]
            return float(np.mean(rates)) - prior if rates else 0.0

        return split_list(creators).map(score).astype("float64")

    def fit(self, X: pd.DataFrame, y: object = None) -> MarvelProcessor:
        super().fit(X, y)
        r = to_records(X)
        universe = r["Universe"].fillna("Unknown")
        self.universe_freq_ = universe.value_counts(normalize=True).to_dict()
        yy = np.zeros(len(r)) if y is None else np.asarray(y, dtype=float)
        self.creator_rate_, self.prior_ = self._creator_table(r["Creators"], yy)
        self.feature_names_out_ = list(self._extra(r, super().transform(X)).columns)
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
        for fit_idx, enc_idx in folds.split(np.zeros(len(yy)), yy.astype(int)):
            table, prior = self._creator_table(r["Creators"].iloc[fit_idx], yy[fit_idx])
            oof[enc_idx] = self._creator_score(r["Creators"].iloc[enc_idx], table, prior).to_numpy()
        out["creator_alive_rate"] = oof
        return out

    # -- features -----------------------------------------------------------------------------------
    def _extra(self, r: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
        out = base.copy()
        lower = r["Origin"].fillna("").str.lower()
        out["n_teams"] = team_count(r["Teams"])
        out["n_creators"] = split_list(r["Creators"]).map(len).astype("int64")
        out["height_known"] = r["Height"].notna().astype("int64")
        out["weight_known"] = r["Weight"].notna().astype("int64")
        out["identity_known"] = r["Identity"].notna().astype("int64")
        out["marital_known"] = r["Marital_Status"].notna().astype("int64")
        out["origin_known"] = r["Origin"].notna().astype("int64")
        out["universe_family"] = pd.Categorical(
            universe_family(r["Universe"]),
            categories=["earth_616", "earth_numbered", "earth_lettered", "named", "unknown"],
        )
        universe = r["Universe"].fillna("Unknown")
        out["universe_freq"] = universe.map(self.universe_freq_).fillna(0.0).astype("float64")
        for name, words in ORIGIN_KEYWORDS.items():
            hit = pd.Series(False, index=r.index)
            for w in words:
                hit |= lower.str.contains(w, regex=False)
            out[name] = hit.astype("int64")
        out["creator_alive_rate"] = self._creator_score(r["Creators"], self.creator_rate_, self.prior_)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        r = to_records(X)
        return self._extra(r, super().transform(X))[self.feature_names_out_]
