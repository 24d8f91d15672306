"""The processors: the seed's semantics exactly, fitted state from training rows only, and both the source
platform's serving example and raw Kaggle records scoring through the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marvel.core.schemas import RAW_TO_INPUT, Features
from marvel.features.marvel import MarvelProcessor, universe_family
from marvel.features.records import team_count, to_records
from marvel.features.seed import SeedProcessor, origin_group
from marvel.serving.examples import SOURCE_EXAMPLE

SERVING_EXAMPLE = SOURCE_EXAMPLE
RAW_EXAMPLE = {
    "Id": "Logan_(Earth-616)",
    "Name": "Logan",
    "Height": None,
    "Weight": None,
    "Universe": "Earth-616",
    "Identity": "Public",
    "Gender": "Male",
    "Marital_Status": None,
    "Teams": "Avengers; X-Men",
    "Origin": "Human mutate",
    "Creators": "Len Wein; Roy Thomas",
}


def _train_frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    universes = rng.choice(["Earth-616", "Earth-1610", "Earth-9999"], n, p=[0.6, 0.3, 0.1])
    df = pd.DataFrame(
        {
            "Id": [f"c{i}" for i in range(n)],
            "Universe": universes,
            "Identity": rng.choice(["Public", "Secret", None], n),
            "Gender": rng.choice(["Male", "Female", "Agender", None], n),
            "Marital_Status": rng.choice(["Single", "Widow", None], n),
            "Teams": rng.choice(["Avengers", "A; B", None], n),
            "Height": rng.choice([1.8, np.nan], n),
            "Weight": rng.choice([80.0, np.nan], n),
            "Origin": rng.choice(["Human", "Mutant", "Magic user", None], n),
            "Creators": rng.choice(["Stan Lee; Jack Kirby", "Stan Lee", None], n),
        }
    )
    return df, rng.integers(0, 2, n)


def test_seed_semantics_exactly() -> None:
    df, y = _train_frame()
    proc = SeedProcessor(min_universe_count=50).fit(df, y)
    probe = pd.DataFrame(
        [
            {
                "Universe": None,
                "Identity": None,
                "Gender": "Agender",
                "Marital_Status": None,
                "Teams": None,
                "Origin": None,
            },
            {
                "Universe": "Earth-9999",
                "Identity": "Secret",
                "Gender": "Female",
                "Marital_Status": "Widow",
                "Teams": "X-Men",
                "Origin": "Human mutate",
            },
            {
                "Universe": "Earth-616",
                "Identity": "Public",
                "Gender": "Male",
                "Marital_Status": "Single",
                "Teams": "",
                "Origin": "Mutant magic",
            },
        ]
    )
    out = proc.transform(probe)
    assert list(out["Universe"]) == ["Unknown", "Other", "Earth-616"]  # Earth-9999 has < 50 training rows
    assert list(out["Identity"]) == ["Unknown", "Secret", "Public"]
    assert list(out["Gender"]) == ["Other", "Female", "Male"]
    assert list(out["Marital_Status"]) == ["Unknown", "Widowed", "Single"]
    assert list(out["Teams"]) == [0, 1, 0]
    assert list(out["Origin"]) == ["Other", "Human", "Mutant"]
    assert list(out["Magic"]) == [0, 0, 1]
    assert list(out["Mutant"]) == [0, 1, 1]
    Features.validate(out)


@pytest.mark.parametrize(
    ("origin", "group"),
    [
        ("Human", "Human"),
        ("Mutant human", "Human"),  # Human is checked first
        ("mutant", "Mutant"),
        ("Asgardian god", "Asgardian"),
        ("Alien Symbiote", "Alien"),
        ("Klyntar symbiote", "Symbiote"),
        ("Robot", "Robot"),
        ("cosmic being", "Cosmic Being"),
        ("Gamma Mutate", "Mutant"),  # "mutate" or "mutant", as the source platform
        ("Mutated Horse", "Mutant"),
        ("Demon", "Other"),
        (None, "Other"),  # the source platform fills "Unknown", which matches no keyword
    ],
)
def test_origin_groups_first_match_in_order(origin: str | None, group: str) -> None:
    assert origin_group(pd.Series([origin], dtype=object)).iloc[0] == group


def test_fitted_state_comes_from_training_rows_only() -> None:
    df, y = _train_frame()
    proc = SeedProcessor(min_universe_count=50).fit(df, y)
    assert proc.universes_ == ["Earth-1610", "Earth-616"]
    # a universe only ever seen at transform time is "Other", whatever its count there
    out = proc.transform(pd.DataFrame({"Universe": ["Earth-42"] * 100}))
    assert set(out["Universe"]) == {"Other"}
    m = MarvelProcessor(min_universe_count=50).fit(df, y)
    assert set(m.universe_freq_) == set(df["Universe"])
    assert m.prior_ == pytest.approx(float(np.mean(y)))


def test_unseen_categories_become_other_not_nan() -> None:
    df, y = _train_frame()
    proc = MarvelProcessor().fit(df, y)
    out = proc.transform(pd.DataFrame([{**RAW_EXAMPLE, "Identity": "Known to Authorities", "Gender": "???"}]))
    assert out["Identity"].iloc[0] == "Other"
    assert out["Gender"].iloc[0] == "Other"
    assert not out.select_dtypes("category").isna().any().any()


def test_kaggle_and_serving_names_give_the_same_records() -> None:
    kaggle = pd.DataFrame(
        [
            {
                "PageID": "x",
                "Height (m)": "1.88",
                "Marital Status": "Single",
                "Teams": "A; B",
                "Universe": "Earth-616",
            }
        ]
    )
    serving = pd.DataFrame(
        [{"Id": "x", "Height": 1.88, "Marital_Status": "Single", "Teams": "A; B", "Universe": "Earth-616"}]
    )
    pd.testing.assert_frame_equal(to_records(kaggle), to_records(serving))


def test_team_count_reads_lists_and_the_seed_flag() -> None:
    teams = pd.Series(["1", "0", "Avengers; X-Men", None, "", "Solo"], dtype=object)
    assert list(team_count(teams)) == [1, 0, 2, 0, 0, 1]
    # digits int() refuses, and numbers too long to be a flag, are names (found by the fast-path property test)
    odd = pd.Series(["²", "٣", "1" * 30], dtype=object)
    assert list(team_count(odd)) == [1, 1, 1]


def test_universe_families() -> None:
    u = pd.Series(["Earth-616", "Earth-1610", "Earth-TRN743", "Mojoverse", None], dtype=object)
    assert list(universe_family(u)) == ["earth_616", "earth_numbered", "earth_lettered", "named", "unknown"]


def test_out_of_fold_encoding_does_not_see_its_own_label() -> None:
    # every creator appears once, labels are random: an in-sample encoding would reproduce each label exactly
    n = 400
    df = pd.DataFrame({"Creators": [f"creator{i}" for i in range(n)]})
    y = np.random.default_rng(0).integers(0, 2, n)
    proc = MarvelProcessor(creator_min_count=1, creator_smoothing=0.0, n_folds=5)
    train_enc = proc.fit_transform(df, y)["creator_alive_rate"].to_numpy()
    full_enc = proc.transform(df)["creator_alive_rate"].to_numpy()
    assert np.allclose(full_enc, y - y.mean())  # fitted on all rows: the label itself
    assert np.allclose(train_enc, 0.0)  # out of fold: no other row knows this creator, so no information


def _source_platform_origin(origin: object) -> str:
    """The source platform's origin grouping, re-expressed here independently of marvel's keyword table."""
    text = "Unknown" if origin is None or (isinstance(origin, float) and np.isnan(origin)) else str(origin)
    x = text.lower()
    if "human" in x:
        return "Human"
    if "mutate" in x or "mutant" in x:
        return "Mutant"
    if "asgardian" in x:
        return "Asgardian"
    if "alien" in x:
        return "Alien"
    if "symbiote" in x:
        return "Symbiote"
    if "robot" in x:
        return "Robot"
    if "cosmic being" in x:
        return "Cosmic Being"
    return "Other"


@pytest.mark.real_data
def test_seed_origin_groups_equal_the_source_platform_on_every_real_row(real_data: Path) -> None:
    raw = pd.read_csv(real_data, dtype=str)
    records = raw.rename(columns=RAW_TO_INPUT)
    out = SeedProcessor().fit(records).transform(records)
    expected = [_source_platform_origin(o) for o in raw["Origin"].tolist()]
    got = out["Origin"].astype(str).tolist()
    assert len(got) == len(raw) > 8000
    mismatches = [(o, g, e) for o, g, e in zip(raw["Origin"], got, expected, strict=True) if g != e]
    assert mismatches == []
    assert sum(e == "Mutant" for e in expected) > 0
