"""The serving fast path: the processors' per-record path gives exactly the features of their frame path
(synthetic rows, the real sample, odd records), and the numpy LightGBM path gives exactly the pipeline's
probabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marvel.core.schemas import RAW_TO_INPUT
from marvel.data.kaggle import KaggleSource
from marvel.data.synthetic.source import SyntheticSource
from marvel.features.marvel import MarvelProcessor
from marvel.features.seed import SeedProcessor
from marvel.serving.examples import RAW_EXAMPLE, SOURCE_EXAMPLE

PROCESSORS = [SeedProcessor, MarvelProcessor]


def assert_same_features(processor: SeedProcessor, frame: pd.DataFrame) -> None:
    """`transform_records` on the frame's rows (as one batch and one at a time) == `transform(frame)`."""
    expected = processor.transform(frame)
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    batch = processor.transform_records(records)
    assert list(batch) == list(expected.columns)
    for col in expected.columns:
        want = expected[col]
        if isinstance(want.dtype, pd.CategoricalDtype):
            assert list(batch[col]) == want.astype(object).tolist(), col
        else:
            got = np.asarray(batch[col])
            assert got.dtype.kind == want.dtype.kind or {got.dtype.kind, want.dtype.kind} <= {"i", "u"}, col
            np.testing.assert_array_equal(got, want.to_numpy(), err_msg=col)
    step = max(1, len(records) // 50)
    for i in range(0, len(records), step):
        one = processor.transform_records([records[i]])
        for col in expected.columns:
            want_one = expected[col].iloc[i]
            got_one = one[col][0]
            if isinstance(want_one, float) and np.isnan(want_one):
                assert np.isnan(got_one), (i, col)
            else:
                assert got_one == want_one, (i, col, got_one, want_one)


def _fitted(cls: type[SeedProcessor], rows: pd.DataFrame, y: np.ndarray) -> SeedProcessor:
    processor = cls()
    processor.fit_transform(rows, y)
    return processor


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, np.ndarray]:
    raw = SyntheticSource(n_rows=6000, seed=7).load()
    y = (raw["Alive"] == "Alive").to_numpy(dtype=int)
    return raw.drop(columns=["Alive"]), y


@pytest.mark.parametrize("cls", PROCESSORS)
def test_per_record_features_equal_frame_features_on_synthetic_rows(
    cls: type[SeedProcessor], synthetic: tuple[pd.DataFrame, np.ndarray]
) -> None:
    raw, y = synthetic
    processor = _fitted(cls, raw.iloc[:4000], y[:4000])
    assert_same_features(processor, raw.iloc[4000:])  # Kaggle names, as the raw table has them
    served = raw.iloc[4000:].rename(columns=RAW_TO_INPUT)  # serving names, as a request has them
    assert_same_features(processor, served)


@pytest.mark.real_data
@pytest.mark.parametrize("cls", PROCESSORS)
def test_per_record_features_equal_frame_features_on_real_rows(
    cls: type[SeedProcessor], real_data: Path
) -> None:
    raw = KaggleSource(str(real_data)).load()  # every cell as text, numbers too, as the file has them
    raw = raw[raw["Alive"].isin(["Alive", "Dead"])].reset_index(drop=True)
    y = (raw["Alive"] == "Alive").to_numpy(dtype=int)
    half = len(raw) // 2
    processor = _fitted(cls, raw.iloc[:half].drop(columns=["Alive"]), y[:half])
    assert_same_features(processor, raw.iloc[half:].drop(columns=["Alive"]))


ODD_TEXT = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.sampled_from(
        ["Male", "Female", "Widow", "Widowed", "Earth-616", "Earth-TRN1", "Mutant", "Human mutate"]
    ),
    st.sampled_from(["0", "1", "12", "Avengers; X-Men", " ; ", "Stan Lee; Jack Kirby", "Magic robot"]),
    st.text(max_size=8),
)
ODD_NUMBER = st.one_of(
    st.none(), st.just(float("nan")), st.floats(0.01, 1e4), st.sampled_from(["1.5", " 2 ", "x"])
)


@st.composite
def odd_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 6))
    keys = ["Universe", "Identity", "Gender", "Marital_Status", "Teams", "Origin", "Creators"]
    return [
        {
            **{k: draw(ODD_TEXT) for k in keys},
            "Height": draw(ODD_NUMBER),
            "Weight": draw(ODD_NUMBER),
            "Id": f"odd-{i}",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def fitted_processors(synthetic: tuple[pd.DataFrame, np.ndarray]) -> list[SeedProcessor]:
    raw, y = synthetic
    return [_fitted(cls, raw.iloc[:3000], y[:3000]) for cls in PROCESSORS]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(records=odd_records())
def test_per_record_features_equal_frame_features_on_odd_records(
    fitted_processors: list[SeedProcessor], records: list[dict[str, Any]]
) -> None:
    frame = pd.DataFrame(records)
    for processor in fitted_processors:
        assert_same_features(processor, frame)


def test_the_examples_score_the_same_either_way(fitted_processors: list[SeedProcessor]) -> None:
    for processor in fitted_processors:
        assert_same_features(processor, pd.DataFrame([RAW_EXAMPLE, SOURCE_EXAMPLE]))


@pytest.fixture
def registered(trained: Path) -> Path:
    import mlflow

    uri = f"sqlite:///{trained}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return trained


@pytest.mark.parametrize("model", ["marvel_character_model_custom", "marvel_character_model_basic"])
def test_the_fast_path_answers_exactly_as_the_registered_model(registered: Path, model: str) -> None:
    """Both flavours, on the test set's rows (missing values, unseen categories), one at a time and batched."""
    from marvel.core.schemas import INPUT_COLUMNS
    from marvel.core.tables import DeltaTableStore
    from marvel.core.variants import Variant
    from marvel.serving import models
    from marvel.serving.validation import parse_request

    served = models.load(
        models.resolve(Variant("A", model, "latest-model", None, 100)), fast_max_records=10**6
    )
    assert served.fast is not None
    rows = DeltaTableStore(registered / "lake").read("test_set")[INPUT_COLUMNS].head(300)
    rows = rows.astype(object).where(rows.notna(), None)
    body = json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()
    records = parse_request(body, 1000).records
    fast = served.predict_records(records, return_probabilities=True)
    served.fast_max_records = 0
    frame = served.predict_records(records, return_probabilities=True)  # the frame path, as before
    assert fast == frame
    served.fast_max_records = 1
    assert [served.predict_records([r], True)["Probability alive"][0] for r in records[:40]] == frame[
        "Probability alive"
    ][:40]
    assert served.fast.predict_proba(records).tolist() == list(
        served.fast.predict_proba(records[:150]).tolist() + served.fast.predict_proba(records[150:]).tolist()
    )


def test_a_model_without_a_fast_path_is_served_by_the_frame_path(
    synthetic: tuple[pd.DataFrame, np.ndarray],
) -> None:
    from sklearn.pipeline import Pipeline

    from marvel.models.logistic import LogisticBaseline
    from marvel.serving.fast import FastScorer

    raw, y = synthetic
    pipeline = Pipeline([("processor", SeedProcessor()), ("model", LogisticBaseline())]).fit(
        raw.iloc[:2000], y[:2000]
    )
    assert FastScorer.build(pipeline) is None
