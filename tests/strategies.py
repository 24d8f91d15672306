"""Hypothesis strategies for the raw table, built from the `RawCharacters` contract's columns.

pandera's own strategies draw arbitrary unicode for every text column, which says little about the shapes
the wiki produces (lists with "; ", wiki markup, "Earth-616"); these draw from those shapes and from noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from marvel.core.schemas import RAW_COLUMNS, RawCharacters

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
UNIVERSES = st.one_of(st.sampled_from(["Earth-616", "Earth-1610", "Mojoverse", "Earth-TRN743"]), TEXT)
ORIGINS = st.one_of(
    st.sampled_from(
        ["Human", "Human mutate", "Mutant", "Asgardian", "Magic Robot", "Alien Symbiote", "Cosmic Being"]
    ),
    TEXT,
)
NAME_LISTS = st.lists(
    st.sampled_from(["Avengers", "X-Men", "Stan Lee", "Jack Kirby", "A; B"]), max_size=4
).map(lambda xs: "; ".join(xs) or None)


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


@st.composite
def raw_row(draw: st.DrawFn, index: int) -> dict:
    page = f"Char_{index}"
    return {
        "PageID": page,
        "Name": draw(_maybe(TEXT)),
        "Universe": draw(_maybe(UNIVERSES)),
        "URL": f"https://marvel.fandom.com/wiki/{page}",
        "Identity": draw(_maybe(st.one_of(st.sampled_from(["Public", "Secret"]), TEXT))),
        "Gender": draw(_maybe(st.one_of(st.sampled_from(["Male", "Female", "Agender"]), TEXT))),
        "Alive": draw(st.sampled_from(["Alive", "Dead"])),
        "Marital Status": draw(_maybe(st.sampled_from(["Single", "Married", "Widow", "Widowed", "Engaged"]))),
        "Teams": draw(NAME_LISTS),
        "Height (m)": draw(_maybe(st.floats(0.01, 500, allow_nan=False))),
        "Weight (kg)": draw(_maybe(st.floats(0.1, 5000, allow_nan=False))),
        "Origin": draw(_maybe(ORIGINS)),
        "Creators": draw(NAME_LISTS),
    }


@st.composite
def raw_frames(draw: st.DrawFn, min_rows: int = 1, max_rows: int = 40) -> pd.DataFrame:
    """Frames that satisfy `RawCharacters`."""
    n = draw(st.integers(min_rows, max_rows))
    rows = [draw(raw_row(i)) for i in range(n)]
    df = pd.DataFrame(rows, columns=RAW_COLUMNS)
    for col in ("Height (m)", "Weight (kg)"):
        df[col] = df[col].astype("float64")
    return df


# invalid values per column, with the column the reason must name
INVALID: list[tuple[str, object]] = [
    ("Alive", "Ghost"),
    ("Alive", "Unknown"),
    ("Alive", None),
    ("Height (m)", -1.0),
    ("Height (m)", 0.0),
    ("Weight (kg)", -80.0),
    ("Height (m)", "tall"),
    ("Weight (kg)", "1,5 t"),
    ("PageID", None),
]


def invalidate(df: pd.DataFrame, rows: list[int], picks: list[int]) -> tuple[pd.DataFrame, dict[int, str]]:
    """Put an invalid value into each of `rows`; return the frame and row -> column to blame."""
    df = df.astype({"Height (m)": object, "Weight (kg)": object}).copy()
    blame: dict[int, str] = {}
    for row, pick in zip(rows, picks, strict=True):
        col, value = INVALID[pick % len(INVALID)]
        df.at[row, col] = value
        blame[row] = col
    return df, blame


def assert_valid_raw(df: pd.DataFrame) -> None:
    RawCharacters.validate(df, lazy=True)
    assert not np.any(df["PageID"].duplicated())
