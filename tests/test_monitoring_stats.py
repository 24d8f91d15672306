"""Drift statistics against scipy on known distributions, and the window arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from marvel.core.errors import MarvelError
from marvel.monitoring.drift import compare, reference
from marvel.monitoring.stats import (
    MIN_EXPECTED,
    MISSING,
    OTHER,
    SMOOTHING,
    binned,
    bucket_counts,
    categorical_drift,
    distances,
    numeric_drift,
    pool_rare,
    quantile_edges,
)
from marvel.monitoring.windows import parse_granularity, window_start


def test_numeric_drift_matches_scipy_ks_and_wasserstein() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 800)
    out = numeric_drift(cur, ref, quantile_edges(ref))
    ks = stats.ks_2samp(cur, ref)
    assert out["ks_test.statistic"] == pytest.approx(ks.statistic)
    assert out["ks_test.pvalue"] == pytest.approx(ks.pvalue)
    assert out["wasserstein_distance"] == pytest.approx(stats.wasserstein_distance(cur, ref))
    # a normal shifted by 0.3: the distance is about the shift (plus the wider spread)
    assert 0.25 < out["wasserstein_distance"] < 0.45


def test_binned_distances_match_their_definitions() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.exponential(1.0, 4000), rng.exponential(1.5, 3000)
    edges = quantile_edges(ref, bins=10)
    assert len(edges) == 9  # deciles of a continuous sample are distinct
    r, c = binned(ref, edges), binned(cur, edges)
    assert r.sum() == len(ref)
    assert c.sum() == len(cur)
    # deciles: each baseline bin holds a tenth
    np.testing.assert_allclose(r / r.sum(), 0.1, atol=0.002)
    out = distances(c, r)
    p, q = r / r.sum(), c / c.sum()
    # PSI and JS on shares smoothed with SMOOTHING pseudo-counts per bin; TV and L-infinity on raw shares
    ps, qs = (
        (r + SMOOTHING) / (r.sum() + SMOOTHING * len(r)),
        (c + SMOOTHING) / (c.sum() + SMOOTHING * len(c)),
    )
    assert out["js_distance"] == pytest.approx(jensenshannon(ps, qs, base=2))
    assert out["tv_distance"] == pytest.approx(0.5 * np.abs(p - q).sum())
    assert out["l_infinity_distance"] == pytest.approx(np.abs(p - q).max())
    assert out["population_stability_index"] == pytest.approx(np.sum((qs - ps) * np.log(qs / ps)))
    # at these sizes smoothing changes PSI by well under 1%
    raw_psi = np.sum((q - p) * np.log(q / p))
    assert out["population_stability_index"] == pytest.approx(raw_psi, rel=0.01)


def test_smoothing_keeps_psi_of_small_undrifted_samples_small() -> None:
    # 12 values over 10 decile bins (a window's known heights): most bins are empty. A 1e-4 floor made each
    # empty bin worth ~0.1 * log(0.1 / 1e-4) ~ 0.7 of PSI; smoothing keeps an undrifted sample near its
    # sampling noise, and a real shift still stands out
    rng = np.random.default_rng(4)
    ref = rng.lognormal(0.5, 0.3, 5000)
    edges = quantile_edges(ref)
    clean = [distances(binned(rng.lognormal(0.5, 0.3, 12), edges), binned(ref, edges)) for _ in range(200)]
    shifted = [distances(binned(rng.lognormal(0.9, 0.3, 12), edges), binned(ref, edges)) for _ in range(200)]
    clean_psi = np.median([d["population_stability_index"] for d in clean])
    shifted_psi = np.median([d["population_stability_index"] for d in shifted])
    floored = np.median(
        [
            distances(binned(rng.lognormal(0.5, 0.3, 12), edges), binned(ref, edges), smoothing=0)[
                "population_stability_index"
            ]
            for _ in range(50)
        ]
    )
    assert clean_psi < 0.6
    assert shifted_psi > 2 * clean_psi
    assert floored > 5 * clean_psi  # what the floor did


def test_identical_distributions_have_zero_distance() -> None:
    counts = np.array([10.0, 20.0, 30.0])
    out = distances(counts * 3, counts)
    # equal shares; smoothing pulls the smaller sample a little more towards uniform, hence not exactly 0
    assert out["population_stability_index"] == pytest.approx(0.0, abs=1e-3)
    assert out["js_distance"] == pytest.approx(0.0, abs=1e-2)
    assert out["tv_distance"] == pytest.approx(0.0)
    exact = distances(counts * 3, counts, smoothing=0)
    assert exact["population_stability_index"] == pytest.approx(0.0)


def test_categorical_drift_matches_chi2_contingency() -> None:
    rng = np.random.default_rng(2)
    ref = pd.Series(rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])).value_counts()
    cur = pd.Series(rng.choice(["a", "b", "c"], 600, p=[0.4, 0.3, 0.3])).value_counts()
    out = categorical_drift(cur, ref, ["a", "b", "c"])
    table = np.vstack([cur.reindex(["a", "b", "c"]).to_numpy(), ref.reindex(["a", "b", "c"]).to_numpy()])
    expected = stats.chi2_contingency(table, correction=False)
    assert out["chi_squared_test.statistic"] == pytest.approx(expected.statistic)
    assert out["chi_squared_test.pvalue"] == pytest.approx(expected.pvalue)
    assert out["chi_squared_test.pvalue"] < 1e-3  # 0.2 -> 0.3 on 600 rows is real drift
    p = ref.reindex(["a", "b", "c"]) / ref.sum()
    q = cur.reindex(["a", "b", "c"]) / cur.sum()
    assert out["tv_distance"] == pytest.approx(0.5 * np.abs(p - q).sum())


def test_bucket_counts_pools_unknown_and_missing_values() -> None:
    counts = pd.Series([5, 3, 2, 4], index=pd.Index(["a", "zz", "yy", None], dtype=object))
    b = bucket_counts(counts, ["a", "b"])
    assert b.to_dict() == {"a": 5.0, "b": 0.0, OTHER: 5.0, MISSING: 4.0}
    # idempotent on already bucketed counts (the cached baseline)
    assert bucket_counts(b, ["a", "b"]).to_dict() == b.to_dict()


def test_pool_rare_leaves_chi_square_cells_with_enough_expected_counts() -> None:
    ref = np.array([5000, 3000, 1000, 30, 20, 10, 5], dtype=float)
    cur = np.array([100, 60, 25, 1, 0, 2, 0], dtype=float)
    c, r = pool_rare(cur, ref)
    assert c.sum() == cur.sum()
    assert r.sum() == ref.sum()
    assert np.all(r / r.sum() * c.sum() >= MIN_EXPECTED)


def test_empty_samples_give_missing_statistics_not_errors() -> None:
    out = numeric_drift(np.array([]), np.array([1.0, 2.0]), np.array([1.5]))
    assert np.isnan(out["ks_test.pvalue"])
    assert np.isnan(out["population_stability_index"])


def test_below_min_count_a_test_is_not_computed_and_says_why() -> None:
    rng = np.random.default_rng(5)
    ref = reference(pd.Series(rng.normal(0, 1, 1000), name="Height"), numeric=True)
    few = reference(pd.Series([5.0, 6.0, np.nan, 7.0], name="Height"), numeric=True)  # far off, but 3 values
    out = compare(few, ref, True, quantile_edges(ref.values), None, min_count=5, smoothing=SMOOTHING)
    assert np.isnan(out["ks_test.pvalue"])
    assert np.isnan(out["population_stability_index"])
    assert out["marvel_not_computed"] == "3 value(s) in the window < min_count 5"
    assert out["marvel_count"] == 3
    enough = compare(few, ref, True, quantile_edges(ref.values), None, min_count=3, smoothing=SMOOTHING)
    assert enough["ks_test.pvalue"] < 0.01
    assert enough["marvel_not_computed"] is None


def test_granularity_and_epoch_aligned_windows() -> None:
    step = parse_granularity("30 minutes")
    assert step == pd.Timedelta(minutes=30)
    assert parse_granularity("1 day") == pd.Timedelta(days=1)
    ts = pd.Series(pd.to_datetime(["2025-01-01 00:29:59", "2025-01-01 00:30:00", "2025-01-01 01:10:00"]))
    got = window_start(ts, step).tolist()
    assert got == list(pd.to_datetime(["2025-01-01 00:00", "2025-01-01 00:30", "2025-01-01 01:00"]))
    with pytest.raises(MarvelError, match="granularity"):
        parse_granularity("a fortnight")
