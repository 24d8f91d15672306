"""Drift statistics between a current sample and a reference sample (previous window or baseline).

Thin, tested wrappers over scipy, plus the binned distances (PSI, JS, TV, L-infinity) that scipy has no
single call for. Numeric columns are binned on the *reference's* quantiles, so every window of a column is
compared on the same bins and PSI stays comparable over time.

Small samples: a window of 200 records has ~12 known heights, so most of 10 bins are empty. PSI and JS are
computed on additively smoothed histograms (`SMOOTHING` pseudo-counts per bin, Jeffreys' 0.5 by default)
instead of flooring empty bins at 1e-4, which made an empty bin worth log(p / 1e-4) ~ 7 and clean windows'
PSI > 1. TV and L-infinity stay on the raw shares (they are bounded and unbiased enough); KS and chi-square
are exact tests that already account for the sample size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

MISSING = "(missing)"
OTHER = "(other)"
# Pseudo-count added to every bin of both histograms before PSI and JS (Jeffreys' prior; 1.0 is Laplace's).
SMOOTHING = 0.5
# Chi-square's approximation wants an expected count of at least 5 per cell; rarer categories are pooled.
MIN_EXPECTED = 5.0

NAN_NUMERIC: dict[str, float] = {
    "ks_test.statistic": np.nan,
    "ks_test.pvalue": np.nan,
    "wasserstein_distance": np.nan,
}
NAN_CATEGORICAL: dict[str, float] = {"chi_squared_test.statistic": np.nan, "chi_squared_test.pvalue": np.nan}
NAN_DISTANCES: dict[str, float] = {
    "population_stability_index": np.nan,
    "js_distance": np.nan,
    "tv_distance": np.nan,
    "l_infinity_distance": np.nan,
}


def quantile_edges(ref: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (ties collapse, so heavy ties give fewer bins)."""
    if len(ref) == 0:
        return np.array([])
    return np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))


def binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def smoothed(counts: np.ndarray, alpha: float = SMOOTHING) -> np.ndarray:
    """Shares with `alpha` pseudo-counts per bin: (c + alpha) / (n + k alpha), never zero when alpha > 0."""
    counts = np.asarray(counts, dtype=float)
    return (counts + alpha) / (counts.sum() + alpha * len(counts))


def distances(
    cur_counts: np.ndarray, ref_counts: np.ndarray, smoothing: float = SMOOTHING
) -> dict[str, float]:
    """PSI and Jensen-Shannon distance (base 2, in [0, 1]) on smoothed histograms; total variation and
    L-infinity on the raw shares."""
    nc, nr = cur_counts.sum(), ref_counts.sum()
    if nc == 0 or nr == 0:
        return dict(NAN_DISTANCES)
    p, q = ref_counts / nr, cur_counts / nc
    ps, qs = smoothed(ref_counts, smoothing), smoothed(cur_counts, smoothing)
    if smoothing <= 0:  # unsmoothed: empty bins only count where both are empty
        ps, qs = np.maximum(ps, 1e-12), np.maximum(qs, 1e-12)
    return {
        "population_stability_index": float(np.sum((qs - ps) * np.log(qs / ps))),
        "js_distance": float(jensenshannon(ps, qs, base=2)),
        "tv_distance": float(0.5 * np.abs(p - q).sum()),
        "l_infinity_distance": float(np.abs(p - q).max()),
    }


def numeric_drift(
    cur: np.ndarray, ref: np.ndarray, edges: np.ndarray, smoothing: float = SMOOTHING
) -> dict[str, float]:
    """KS test and Wasserstein on the raw non-null values; binned distances on `edges`."""
    if len(cur) == 0 or len(ref) == 0:
        return {**NAN_NUMERIC, **NAN_DISTANCES}
    ks = stats.ks_2samp(cur, ref)
    return {
        "ks_test.statistic": float(ks.statistic),
        "ks_test.pvalue": float(ks.pvalue),
        "wasserstein_distance": float(stats.wasserstein_distance(cur, ref)),
        **distances(binned(cur, edges), binned(ref, edges), smoothing),
    }


def pool_rare(cur: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aligned counts where categories expected fewer than MIN_EXPECTED times in `cur` are pooled.

    Expected counts come from the reference's shares at the current sample's size; a pooled cell that is
    still too small is merged into the smallest kept category, so chi-square's approximation holds.
    """
    cur, ref = np.asarray(cur, dtype=float), np.asarray(ref, dtype=float)
    scale = cur.sum() / max(ref.sum(), 1.0)
    keep = ref * scale >= MIN_EXPECTED
    kc, kr = cur[keep].copy(), ref[keep].copy()
    rc, rr = cur[~keep].sum(), ref[~keep].sum()
    if rc + rr > 0:
        if rr * scale >= MIN_EXPECTED or not keep.any():
            kc, kr = np.append(kc, rc), np.append(kr, rr)
        else:
            smallest = int(np.argmin(kr))
            kc[smallest] += rc
            kr[smallest] += rr
    return kc, kr


def chi_squared(cur_counts: np.ndarray, ref_counts: np.ndarray) -> dict[str, float]:
    """Chi-square test of homogeneity (2 x k contingency table) between the two samples."""
    used = (cur_counts + ref_counts) > 0
    if used.sum() < 2 or cur_counts.sum() == 0 or ref_counts.sum() == 0:
        return dict(NAN_CATEGORICAL)
    res = stats.chi2_contingency(np.vstack([cur_counts[used], ref_counts[used]]), correction=False)
    return {"chi_squared_test.statistic": float(res.statistic), "chi_squared_test.pvalue": float(res.pvalue)}


def top_categories(counts: pd.Series, k: int) -> list[str]:
    """The k most frequent non-missing values (ties broken by value, so every run picks the same)."""
    c = counts[counts.index.notna()]
    c = c.groupby(c.index.astype(str)).sum()
    return list(c.sort_index().sort_values(ascending=False, kind="stable").index[:k])


def bucket_counts(counts: pd.Series, categories: list[str]) -> pd.Series:
    """Value counts (NaN key = missing) regrouped onto `categories` + OTHER + MISSING.

    High-cardinality columns (Universe, Teams, Origin have thousands of rare values) would otherwise make
    every window look new: a value seen once and never in the reference is noise, not drift.
    """
    k = len(categories)
    idx = counts.index
    codes = pd.Index(categories, dtype=object).get_indexer(idx.astype(object))  # hash lookup, -1 = unknown
    codes[codes < 0] = k
    # NaN is missing; so is the MISSING label of counts that were bucketed already (cached baselines)
    codes[np.asarray(pd.isna(idx)) | np.asarray(idx.astype(object) == MISSING)] = k + 1
    summed = np.bincount(codes, weights=counts.to_numpy(dtype=float), minlength=k + 2)
    return pd.Series(summed, index=[*categories, OTHER, MISSING])


def categorical_drift(
    cur: pd.Series, ref: pd.Series, categories: list[str], smoothing: float = SMOOTHING
) -> dict[str, float]:
    """Raw value counts in; chi-square (on pooled counts) and distances (on `categories` buckets) out."""
    cur_b, ref_b = bucket_counts(cur, categories), bucket_counts(ref, categories)
    if cur_b.sum() == 0 or ref_b.sum() == 0:
        return {**NAN_CATEGORICAL, **NAN_DISTANCES}
    # buckets empty on both sides (a category neither sample has) are no evidence either way
    used = (cur_b.to_numpy() + ref_b.to_numpy()) > 0
    return {
        **chi_squared(*pool_rare(cur_b.to_numpy(), ref_b.to_numpy())),
        **distances(cur_b.to_numpy()[used], ref_b.to_numpy()[used], smoothing),
    }
