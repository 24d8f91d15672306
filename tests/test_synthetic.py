"""The synthetic generator: schema, determinism, partitions, drift, dirt, calibration and transfer."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors
import pytest
from conftest import real_data_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from marvel.core.errors import MarvelError
from marvel.core.schemas import RAW_COLUMNS, RawCharacters
from marvel.data.synthetic.alive import alive_features, list_length
from marvel.data.synthetic.source import SyntheticSource

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "data" / "synthetic.yaml"
CALIBRATION = ROOT / "marvel" / "data" / "synthetic" / "calibration.yaml"


@pytest.fixture(scope="module")
def calibration() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(CALIBRATION), resolve=True)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def synth_20k(calibration: dict[str, Any]) -> pd.DataFrame:
    return SyntheticSource(n_rows=20_000, seed=11, calibration=calibration).load()


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    path = real_data_path()
    if path is None:
        pytest.skip("needs the real Kaggle sample: set MARVEL_REAL_DATA (neither it nor the file was found)")
    return pd.read_csv(path, index_col=0)


def alive(df: pd.DataFrame) -> pd.Series:
    return df["Alive"].eq("Alive").astype(int)


# --------------------------------------------------------------------------------------------- contract
drift_strategy = st.fixed_dictionaries(
    {},
    optional={
        "height_scale": st.floats(0.05, 20.0),
        "weight_scale": st.floats(0.05, 20.0),
        "gender_shares": st.dictionaries(
            st.sampled_from(["Male", "Female", "Agender", "Non-Binary"]), st.floats(0.01, 1.0), min_size=1
        ),
        "universe_shares": st.dictionaries(
            st.sampled_from(["Earth-616", "Earth-1610", "Earth-NEW"]), st.floats(0.0, 0.33), max_size=3
        ),
        "origin_shares": st.dictionaries(
            st.sampled_from(["Human", "Mutant", "Cosmic being"]), st.floats(0.0, 0.33), max_size=3
        ),
        "alive_rate": st.floats(0.02, 0.98),
    },
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), drift=drift_strategy, n=st.integers(1, 400))
def test_output_passes_schema_for_any_seed_and_drift(
    calibration: dict[str, Any], seed: int, drift: dict[str, Any], n: int
) -> None:
    df = SyntheticSource(n_rows=n, seed=seed, calibration=calibration, drift=drift).load()
    assert list(df.columns) == RAW_COLUMNS
    assert len(df) == n
    RawCharacters.validate(df)
    assert set(df["Alive"]) <= {"Alive", "Dead"}
    # the raw contract's dtypes: text as object holding str/None, numbers as float64
    assert df["Height (m)"].dtype == np.float64
    assert df["Name"].dtype == object
    assert df["URL"].str.startswith("https://marvel.fandom.com/wiki/").all()
    assert (
        df["PageID"].str.replace("'", "%27") == df["URL"].str.removeprefix("https://marvel.fandom.com/wiki/")
    ).all()


def test_default_calibration_and_hydra_config_instantiate() -> None:
    hydra_utils = pytest.importorskip("hydra.utils")
    cfg = OmegaConf.merge(OmegaConf.create({"seed": 5}), {"data": OmegaConf.load(CONF)})
    assert cfg.data.calibration is None  # the statistics are the shipped file's, not the config's
    src = hydra_utils.instantiate(cfg.data)
    assert isinstance(src, SyntheticSource)
    assert src.n_rows == 20_000
    assert src.seed == 5
    assert src.dirty_rate == 0.0
    df = src.load()
    RawCharacters.validate(df)
    assert len(df) == 20_000
    # no calibration argument: the shipped file is loaded, so the output is the same
    assert SyntheticSource(n_rows=500, seed=5).load().equals(src.generate(500, 5))


def test_lists_are_sorted_distinct_and_counts_match_features(synth_20k: pd.DataFrame) -> None:
    for col in ("Teams", "Creators"):
        lists = synth_20k[col].dropna().str.split("; ")
        assert lists.map(lambda xs: xs == sorted(xs)).all()
        assert (lists.map(lambda xs: len(set(xs)) == len(xs))).mean() > 0.999
    assert list_length(synth_20k["Teams"]).max() > 5  # long lists exist, as in the wiki
    feats = alive_features(synth_20k)
    assert feats.notna().all().all()


# -------------------------------------------------------------------------------------- determinism/ids
def test_same_seed_same_rows_other_seed_other_rows(calibration: dict[str, Any]) -> None:
    a = SyntheticSource(n_rows=2_000, seed=3, calibration=calibration).load()
    b = SyntheticSource(n_rows=2_000, seed=3, calibration=calibration).load()
    c = SyntheticSource(n_rows=2_000, seed=4, calibration=calibration).load()
    pd.testing.assert_frame_equal(a, b)
    assert not a.drop(columns=["PageID", "URL"]).equals(c.drop(columns=["PageID", "URL"]))
    assert (a["Name"] != c["Name"]).mean() > 0.9


def test_partitions_have_unique_ids_and_differ(calibration: dict[str, Any]) -> None:
    src = SyntheticSource(calibration=calibration)
    parts = [src.generate(3_000, seed=9, partition=i) for i in range(4)]
    ids = pd.concat([p["PageID"] for p in parts])
    assert ids.is_unique
    assert len(ids) == 12_000
    assert (parts[0]["Name"].to_numpy() != parts[1]["Name"].to_numpy()).mean() > 0.9
    # a partition is a pure function of (n, seed, partition): recomputing one gives the same frame
    pd.testing.assert_frame_equal(parts[2], SyntheticSource(calibration=calibration).generate(3_000, 9, 2))


def test_pickled_source_generates_the_same_rows(calibration: dict[str, Any]) -> None:
    # what a Spark executor receives
    src = SyntheticSource(calibration=calibration, drift={"alive_rate": 0.6})
    before = src.generate(1_000, seed=1, partition=3)
    clone = pickle.loads(pickle.dumps(src))
    pd.testing.assert_frame_equal(before, clone.generate(1_000, seed=1, partition=3))


# ---------------------------------------------------------------------------------------------- drift
def test_height_and_weight_scale(calibration: dict[str, Any]) -> None:
    base = SyntheticSource(n_rows=20_000, seed=2, calibration=calibration).load()
    drifted = SyntheticSource(
        n_rows=20_000, seed=2, calibration=calibration, drift={"height_scale": 1.5, "weight_scale": 0.5}
    ).load()
    assert drifted["Height (m)"].mean() == pytest.approx(1.5 * base["Height (m)"].mean(), rel=0.01)
    assert drifted["Height (m)"].median() == pytest.approx(1.5 * base["Height (m)"].median(), rel=0.01)
    assert drifted["Weight (kg)"].mean() == pytest.approx(0.5 * base["Weight (kg)"].mean(), rel=0.01)
    # missingness does not drift with scale
    assert drifted["Height (m)"].isna().equals(base["Height (m)"].isna())


def test_gender_shares_70_30(calibration: dict[str, Any]) -> None:
    n = 20_000
    df = SyntheticSource(
        n_rows=n, seed=8, calibration=calibration, drift={"gender_shares": {"Male": 0.7, "Female": 0.3}}
    ).load()
    present = df["Gender"].dropna()
    assert set(present) == {"Male", "Female"}
    sigma = math.sqrt(0.7 * 0.3 / len(present))
    assert abs((present == "Male").mean() - 0.7) < 4 * sigma
    # the calibrated missing rate is kept
    assert df["Gender"].isna().mean() == pytest.approx(calibration["gender"]["missing"], abs=0.006)


@pytest.mark.parametrize("target", [0.3, 0.5, 0.9])
def test_alive_rate_target(calibration: dict[str, Any], target: float) -> None:
    n = 20_000
    df = SyntheticSource(n_rows=n, seed=13, calibration=calibration, drift={"alive_rate": target}).load()
    assert abs(alive(df).mean() - target) < 4 * math.sqrt(target * (1 - target) / n)


def test_default_alive_rate_is_calibrated(synth_20k: pd.DataFrame, calibration: dict[str, Any]) -> None:
    rate = calibration["alive_rate"]
    assert abs(alive(synth_20k).mean() - rate) < 4 * math.sqrt(rate * (1 - rate) / len(synth_20k))


def test_universe_and_origin_shares_override_and_renormalise(calibration: dict[str, Any]) -> None:
    n = 20_000
    drift = {"universe_shares": {"Earth-616": 0.6}, "origin_shares": {"Mutant": 0.3, "Cosmic being": 0.1}}
    df = SyntheticSource(n_rows=n, seed=21, calibration=calibration, drift=drift).load()
    tol = 4 * math.sqrt(0.25 / n)
    assert abs(df["Universe"].eq("Earth-616").mean() - 0.6) < tol
    assert abs(df["Origin"].eq("Mutant").mean() - 0.3) < tol
    assert abs(df["Origin"].eq("Cosmic being").mean() - 0.1) < tol
    # the rest keeps its proportions: Human vs missing Origin ratio is unchanged
    cal = calibration["origin"]
    ratio = df["Origin"].eq("Human").sum() / df["Origin"].isna().sum()
    assert ratio == pytest.approx(cal["values"]["Human"] / cal["missing"], rel=0.1)


@pytest.mark.parametrize(
    "drift",
    [
        {"height_scale": 0},
        {"weight_scale": -1},
        {"alive_rate": 1.0},
        {"universe_shares": {"Earth-616": 0.8, "Earth-1610": 0.5}},
        {"gender_shares": {"Male": 0.0}},
        {"no_such_option": 1},
    ],
)
def test_invalid_drift_is_a_user_error(calibration: dict[str, Any], drift: dict[str, Any]) -> None:
    with pytest.raises(MarvelError):
        SyntheticSource(n_rows=10, calibration=calibration, drift=drift).load()


# ---------------------------------------------------------------------------------------------- dirt
@pytest.mark.parametrize("rate", [0.01, 0.05, 0.3])
def test_dirty_rows_are_exactly_the_failing_rows(calibration: dict[str, Any], rate: float) -> None:
    n = 3_000
    clean = SyntheticSource(n_rows=n, seed=17, calibration=calibration).load()
    dirty = SyntheticSource(n_rows=n, seed=17, calibration=calibration, dirty_rate=rate).load()
    changed = set(np.flatnonzero(~((clean == dirty) | (clean.isna() & dirty.isna())).all(axis=1)))
    assert len(changed) == round(rate * n)
    with pytest.raises(pandera.errors.SchemaErrors) as err:
        RawCharacters.validate(dirty, lazy=True)
    failing = set(err.value.failure_cases["index"].dropna().astype(int))
    assert failing == changed
    # without dirt, the same seed passes
    RawCharacters.validate(clean)


def test_dirty_rate_must_be_a_share(calibration: dict[str, Any]) -> None:
    with pytest.raises(MarvelError):
        SyntheticSource(calibration=calibration, dirty_rate=1.5)


# -------------------------------------------------------------------------------- closeness to real data
@pytest.mark.real_data
def test_calibration_close_to_real_sample(
    real: pd.DataFrame, synth_20k: pd.DataFrame, calibration: dict[str, Any]
) -> None:
    syn = synth_20k
    for col in RAW_COLUMNS:
        assert abs(syn[col].isna().mean() - real[col].isna().mean()) < 0.015, col
    top = {
        "Universe": ["Earth-616", "Earth-199999", "Earth-1610"],
        "Origin": ["Human", "Mutant", "Human mutate", "Human Mutate"],
        "Gender": ["Male", "Female", "Agender"],
        "Identity": ["Public", "Secret"],
        "Marital Status": ["Single", "Married", "Widowed"],
    }
    for col, values in top.items():
        for v in values:
            assert abs(syn[col].eq(v).mean() - real[col].eq(v).mean()) < 0.015, (col, v)
    # Only ~6% of rows have a height, so take quantiles on a larger draw; beyond 95% the inverse CDF is
    # steep (2.4 m at 95%, 30 m at 99%), so sampling error there is tens of percent on either side.
    big = SyntheticSource(n_rows=100_000, seed=12, calibration=calibration).load()
    for col in ("Height (m)", "Weight (kg)"):
        for q in (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9):
            assert big[col].quantile(q) == pytest.approx(real[col].quantile(q), rel=0.1), (col, q)
        for q in (0.95, 0.99):
            assert big[col].quantile(q) == pytest.approx(real[col].quantile(q), rel=0.5), (col, q)
        assert big[col].max() <= real[col].max() * 1.001
        assert big[col].max() > real[col].quantile(0.99)  # the heavy tail is there
    assert abs(alive(syn).mean() - real["Alive"].eq("Alive").mean()) < 0.015
    # long tails: many distinct universes/origins, teams/creators list lengths alike
    assert syn["Universe"].nunique() > 1_000
    assert syn["Origin"].nunique() > 1_000
    for col in ("Teams", "Creators"):
        assert list_length(syn[col]).mean() == pytest.approx(list_length(real[col]).mean(), rel=0.1), col


@pytest.mark.slow
@pytest.mark.real_data
def test_calibration_script_reproduces_the_shipped_statistics(
    real: pd.DataFrame, calibration: dict[str, Any]
) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "calibrate_synthetic.py"), str(real_data_path())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fresh = OmegaConf.to_container(OmegaConf.create(out), resolve=True)
    assert fresh == calibration
    assert "fandom.com/wiki" not in out  # statistics only, never a row


@pytest.mark.slow
@pytest.mark.real_data
def test_model_trained_on_synthetic_transfers_to_real(
    real: pd.DataFrame, calibration: dict[str, Any]
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    def features(df: pd.DataFrame) -> pd.DataFrame:
        x = pd.DataFrame(
            {
                "teams": list_length(df["Teams"]),
                "creators": list_length(df["Creators"]),
                "earth_616": df["Universe"].eq("Earth-616").astype(int),
                "height_known": df["Height (m)"].notna().astype(int),
            }
        )
        for col, values in {
            "Identity": ["Public", "Secret"],
            "Gender": ["Male", "Female"],
            "Marital Status": ["Single", "Married", "Widowed"],
        }.items():
            for v in values:
                x[f"{col}={v}"] = df[col].eq(v).astype(int)
            x[f"{col}=missing"] = df[col].isna().astype(int)
        return x

    syn = SyntheticSource(n_rows=20_000, seed=123, calibration=calibration).load()
    labelled = real[real["Alive"].isin(["Alive", "Dead"])]
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    model.fit(features(syn), alive(syn))
    auc = roc_auc_score(alive(labelled), model.predict_proba(features(labelled))[:, 1])
    assert auc > 0.55


@pytest.mark.slow
def test_one_million_rows_have_unique_ids(calibration: dict[str, Any]) -> None:
    """A million rows in one call; how fast is benchmarks/bench_synthetic.py's to say (never a timed assert)."""
    df = SyntheticSource(calibration=calibration).generate(1_000_000, seed=0)
    assert df["PageID"].is_unique
    assert len(df) == 1_000_000


def test_a_partial_calibration_says_it_replaces_the_whole_file() -> None:
    """`+data.calibration.alive_rate=0.5` gives a one-key calibration: refused when the source is made (the
    process stage's check, before a run opens), naming what is missing and the knob that moves one statistic."""
    with pytest.raises(
        MarvelError, match=r"missing \['alive_model'.*data\.drift \(e\.g\. data\.drift\.alive_rate"
    ):
        SyntheticSource(n_rows=10, calibration={"alive_rate": 0.5})
