"""Property tests on the table contracts: valid rows pass and survive processing, invalid rows are
quarantined with a reason naming the column, and nothing is ever dropped."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import assert_valid_raw, invalidate, raw_frames

from marvel.core.quarantine import split_valid, to_split_rows
from marvel.core.schemas import RAW_NUMERIC, CharacterRecord, Features, Quarantine, RawCharacters, SplitTable
from marvel.core.sources import conform
from marvel.features.marvel import MarvelProcessor
from marvel.features.seed import SeedProcessor

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_valid(df, RawCharacters, table="raw", stage="test", run_id="r", numeric=RAW_NUMERIC)


@pytest.mark.slow
@SETTINGS
@given(raw_frames(min_rows=4))
def test_valid_frames_pass_and_survive_processing(df: pd.DataFrame) -> None:
    assert_valid_raw(df)
    good, quarantined = _split(conform(df))
    assert len(good) == len(df)
    assert quarantined.empty
    rows = SplitTable.validate(to_split_rows(good))
    CharacterRecord.validate(rows.drop(columns=["Alive"]))
    y = rows["Alive"].to_numpy()
    for processor in (SeedProcessor(min_universe_count=2), MarvelProcessor(min_universe_count=2, n_folds=2)):
        features = processor.fit(rows, y).transform(rows)
        Features.validate(features)
        assert len(features) == len(rows)
        assert features.index.equals(rows.index)


@pytest.mark.slow
@SETTINGS
@given(raw_frames(min_rows=4))
def test_processing_is_deterministic(df: pd.DataFrame) -> None:
    rows = to_split_rows(_split(conform(df))[0])
    y = rows["Alive"].to_numpy()
    a = MarvelProcessor(min_universe_count=2).fit(rows, y)
    b = MarvelProcessor(min_universe_count=2).fit(rows, y)
    pd.testing.assert_frame_equal(a.transform(rows), b.transform(rows))
    pd.testing.assert_frame_equal(a.transform(rows), a.transform(rows.copy()))
    pd.testing.assert_frame_equal(a.fit_transform(rows, y), b.fit_transform(rows, y))


@pytest.mark.slow
@SETTINGS
@given(data=st.data(), df=raw_frames(min_rows=5))
def test_invalid_values_are_quarantined_never_dropped(data: st.DataObject, df: pd.DataFrame) -> None:
    bad_rows = data.draw(st.lists(st.integers(0, len(df) - 1), min_size=1, max_size=len(df) - 1, unique=True))
    picks = data.draw(st.lists(st.integers(0, 100), min_size=len(bad_rows), max_size=len(bad_rows)))
    dirty, blame = invalidate(df, bad_rows, picks)
    good, quarantined = _split(conform(dirty))
    Quarantine.validate(quarantined)
    # accounted for: every row is either good or quarantined, never both, never neither
    assert len(good) + len(quarantined) == len(df)
    assert set(quarantined["row_index"]) == set(blame)
    for _, q in quarantined.iterrows():
        assert q["reason"].startswith(blame[q["row_index"]]) or blame[q["row_index"]] in q["reason"]
        # the whole row is kept as JSON, so it can be fixed and replayed
        assert json.loads(q["record"])["URL"] == df.loc[q["row_index"], "URL"]


def test_duplicate_ids_are_quarantined_with_reason() -> None:
    df = pd.DataFrame(
        {
            "PageID": ["a", "a", "b"],
            "Name": ["x", "y", "z"],
            "Alive": ["Alive", "Dead", "Alive"],
        }
    )
    good, quarantined = _split(conform(df))
    assert list(good["PageID"]) == ["b"]
    assert len(quarantined) == 2
    assert quarantined["reason"].str.contains("PageID").all()
