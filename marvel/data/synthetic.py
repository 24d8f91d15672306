"""Seeded synthetic Marvel characters, calibrated on the real Kaggle sample.

The real file cannot ship with the project, so tests, demos and load tests run on rows drawn from
distributions whose parameters (shares, missing rates, quantiles, a logistic model of ``Alive``) were computed
from the real sample by ``benchmarks/calibrate_synthetic.py`` and stored in ``conf/data/synthetic.yaml``.
No real row is stored: character names, creators, the universe/origin long tails and most team names are
generated from word pools; only the most frequent category values (facts such as "Earth-616" or "Avengers")
appear verbatim.

Everything is vectorised numpy: strings are only built for the *distinct* combinations of drawn codes and
then gathered, so 1M rows take a few seconds. A row depends only on ``(seed, partition)`` and the config, so
a Spark job can call ``generate(n, seed, partition=i)`` on each executor; the partition index is part of
every PageID, which keeps ids unique across partitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from scipy.special import expit, ndtr

from marvel.data.base import DataSource, conform
from marvel.errors import MarvelError
from marvel.schemas import MAX_HEIGHT_M, MAX_WEIGHT_KG, RAW_COLUMNS

# --------------------------------------------------------------------------------------------------------
# Features of the Alive model. Shared with benchmarks/calibrate_synthetic.py, which fits the logistic
# regression on the real sample with exactly these functions, so the coefficients in the config mean the
# same thing here.
# --------------------------------------------------------------------------------------------------------

ORIGIN_GROUPS: list[str] = ["mutant", "mutate", "artificial", "mystic", "alien", "human"]

# Ordered: the first matching group wins ("Human mutated by gamma radiation" is a mutate, not a human).
_ORIGIN_PATTERNS: list[tuple[str, str]] = [
    ("mutant", r"mutant"),
    ("mutate", r"mutat"),
    ("artificial", r"robot|android|cyborg|synthezoid|sentinel|life-model|artificial|machine|\bai\b"),
    ("mystic", r"god|deity|demon|asgardian|eternal|angel|celestial|vampire|magic|sorcer|spirit|ghost"),
    ("alien", r"alien|skrull|kree|shi'ar|xandarian|centaurian|symbiote|extraterrestrial"),
    ("human", r"human"),
]

ALIVE_FEATURES: list[str] = [
    "identity_secret",
    "identity_missing",
    "gender_female",
    "gender_other",
    "gender_missing",
    "marital_married",
    "marital_widowed",
    "marital_other",
    "marital_missing",
    "teams_log1p",
    "creators_log1p",
    "earth_616",
    *[f"origin_{g}" for g in ORIGIN_GROUPS],
    "origin_missing",
    "height_known",
    "weight_known",
]


def origin_group(origin: pd.Series) -> pd.Series:
    """Coarse group of the free-text Origin ("missing", one of ORIGIN_GROUPS, or "other")."""
    low = origin.astype("string").str.lower()
    group = pd.Series("other", index=origin.index, dtype=object)
    assigned = pd.Series(False, index=origin.index)
    for name, pattern in _ORIGIN_PATTERNS:
        hit = low.str.contains(pattern, regex=True).fillna(False).astype(bool) & ~assigned
        group[hit] = name
        assigned |= hit
    group[origin.isna()] = "missing"
    return group


def _identity_features(s: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"identity_secret": s.eq("Secret"), "identity_missing": s.isna()}, index=s.index)


def _gender_features(s: pd.Series) -> pd.DataFrame:
    low = s.astype("string").str.strip().str.lower()
    female, male, missing = low.eq("female").fillna(False), low.eq("male").fillna(False), s.isna()
    return pd.DataFrame(
        {"gender_female": female, "gender_other": ~(female | male | missing), "gender_missing": missing},
        index=s.index,
    )


def _marital_features(s: pd.Series) -> pd.DataFrame:
    married, widowed, missing = s.eq("Married"), s.eq("Widowed"), s.isna()
    other = ~(married | widowed | missing | s.eq("Single"))
    return pd.DataFrame(
        {
            "marital_married": married,
            "marital_widowed": widowed,
            "marital_other": other,
            "marital_missing": missing,
        },
        index=s.index,
    )


def _universe_features(s: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"earth_616": s.eq("Earth-616")}, index=s.index)


def _origin_features(s: pd.Series) -> pd.DataFrame:
    g = origin_group(s)
    cols = {f"origin_{name}": g.eq(name) for name in [*ORIGIN_GROUPS, "missing"]}
    return pd.DataFrame(cols, index=s.index)


# Raw column -> function of that column's values alone. The generator applies these to the small table of
# distinct values and gathers by code, instead of running string operations on every row.
_CATEGORY_FEATURES: dict[str, Callable[[pd.Series], pd.DataFrame]] = {
    "Identity": _identity_features,
    "Gender": _gender_features,
    "Marital Status": _marital_features,
    "Universe": _universe_features,
    "Origin": _origin_features,
}


def list_length(s: pd.Series) -> pd.Series:
    """Number of items of a "; "-separated list (0 when missing)."""
    return (s.astype("string").str.count("; ") + 1).fillna(0).astype("int64")


def alive_features(df: pd.DataFrame) -> pd.DataFrame:
    """The Alive model's features (ALIVE_FEATURES, float) of raw Kaggle rows."""
    parts = [fn(df[col]) for col, fn in _CATEGORY_FEATURES.items()]
    counts = pd.DataFrame(
        {
            "teams_log1p": np.log1p(list_length(df["Teams"])),
            "creators_log1p": np.log1p(list_length(df["Creators"])),
            "height_known": df["Height (m)"].notna(),
            "weight_known": df["Weight (kg)"].notna(),
        },
        index=df.index,
    )
    return pd.concat([*parts, counts], axis=1)[ALIVE_FEATURES].astype("float64")


# --------------------------------------------------------------------------------------------------------
# Word pools for generated strings. Invented or generic words, not taken from the data.
# --------------------------------------------------------------------------------------------------------

_FIRST = [
    "Aaron",
    "Abigail",
    "Adam",
    "Alan",
    "Alex",
    "Alice",
    "Amanda",
    "Amy",
    "Andrew",
    "Angela",
    "Anna",
    "Anthony",
    "Arthur",
    "Barbara",
    "Ben",
    "Betty",
    "Bill",
    "Bob",
    "Brian",
    "Carl",
    "Carol",
    "Chris",
    "Claire",
    "Daniel",
    "David",
    "Diana",
    "Donna",
    "Edward",
    "Elena",
    "Emily",
    "Eric",
    "Frank",
    "Gary",
    "George",
    "Grace",
    "Greg",
    "Hannah",
    "Harold",
    "Helen",
    "Henry",
    "Irene",
    "Jack",
    "James",
    "Jane",
    "Jason",
    "Jean",
    "Jeff",
    "Jennifer",
    "Jessica",
    "Jim",
    "John",
    "Joseph",
    "Julia",
    "Karen",
    "Kate",
    "Keith",
    "Kevin",
    "Laura",
    "Linda",
    "Lisa",
    "Marcus",
    "Maria",
    "Mark",
    "Martin",
    "Mary",
    "Matt",
    "Michael",
    "Mike",
    "Nancy",
    "Nathan",
    "Nina",
    "Oliver",
    "Paul",
    "Peter",
    "Rachel",
    "Ray",
    "Rita",
    "Robert",
    "Roger",
    "Ruth",
    "Sam",
    "Sarah",
    "Scott",
    "Sharon",
    "Simon",
    "Steve",
    "Susan",
    "Tom",
    "Tony",
    "Victor",
    "Walter",
    "Wendy",
]
_LAST = [
    "Adams",
    "Allen",
    "Baker",
    "Barnes",
    "Bell",
    "Bennett",
    "Brooks",
    "Brown",
    "Campbell",
    "Carter",
    "Clark",
    "Collins",
    "Cook",
    "Cooper",
    "Cox",
    "Davis",
    "Diaz",
    "Edwards",
    "Evans",
    "Fisher",
    "Flores",
    "Foster",
    "Garcia",
    "Gray",
    "Green",
    "Hall",
    "Harris",
    "Hayes",
    "Hill",
    "Hughes",
    "Jackson",
    "James",
    "Jenkins",
    "Johnson",
    "Jones",
    "Kelly",
    "Kim",
    "King",
    "Lee",
    "Lewis",
    "Long",
    "Lopez",
    "Martin",
    "Miller",
    "Mitchell",
    "Moore",
    "Morgan",
    "Morris",
    "Murphy",
    "Nelson",
    "Nguyen",
    "Parker",
    "Perez",
    "Perry",
    "Peterson",
    "Phillips",
    "Powell",
    "Price",
    "Reed",
    "Reyes",
    "Richardson",
    "Rivera",
    "Roberts",
    "Robinson",
    "Rogers",
    "Ross",
    "Russell",
    "Sanchez",
    "Sanders",
    "Scott",
    "Smith",
    "Stewart",
    "Sullivan",
    "Taylor",
    "Thomas",
    "Torres",
    "Turner",
    "Walker",
    "Ward",
    "Watson",
    "White",
    "Williams",
    "Wilson",
    "Wood",
    "Wright",
    "Young",
]
_ADJ = [
    "Black",
    "Blue",
    "Bright",
    "Broken",
    "Burning",
    "Crimson",
    "Dark",
    "Deadly",
    "Electric",
    "Emerald",
    "Fallen",
    "Final",
    "Frozen",
    "Golden",
    "Grim",
    "Hidden",
    "Hollow",
    "Infinite",
    "Iron",
    "Jade",
    "Last",
    "Living",
    "Lost",
    "Lunar",
    "Mad",
    "Midnight",
    "Mighty",
    "Night",
    "Obsidian",
    "Phantom",
    "Quantum",
    "Radiant",
    "Red",
    "Rogue",
    "Savage",
    "Scarlet",
    "Silent",
    "Silver",
    "Solar",
    "Steel",
    "Storm",
    "Swift",
    "Thunder",
    "Twilight",
    "Venom",
    "Violet",
    "White",
    "Wild",
    "Winter",
]
_NOUN = [
    "Angel",
    "Arrow",
    "Bat",
    "Beast",
    "Blade",
    "Bolt",
    "Claw",
    "Cobra",
    "Comet",
    "Crow",
    "Dagger",
    "Dragon",
    "Eagle",
    "Falcon",
    "Fang",
    "Flame",
    "Fox",
    "Ghost",
    "Giant",
    "Hammer",
    "Hawk",
    "Hornet",
    "Hound",
    "Hunter",
    "Jackal",
    "Knight",
    "Lance",
    "Lion",
    "Mantis",
    "Mask",
    "Moth",
    "Panther",
    "Raven",
    "Rider",
    "Scorpion",
    "Serpent",
    "Shade",
    "Shadow",
    "Shark",
    "Shield",
    "Skull",
    "Spark",
    "Spider",
    "Spirit",
    "Star",
    "Storm",
    "Talon",
    "Tiger",
    "Viper",
    "Wasp",
    "Widow",
    "Wolf",
    "Wraith",
]
_TITLE = [
    "Agent",
    "Baron",
    "Captain",
    "Count",
    "Doctor",
    "General",
    "Lady",
    "Lord",
    "Madame",
    "Major",
    "Mister",
    "Professor",
    "Sister",
]
_GROUP = [
    "Alliance",
    "Army",
    "Battalion",
    "Brigade",
    "Brotherhood",
    "Cabal",
    "Circle",
    "Clan",
    "Coalition",
    "Collective",
    "Corps",
    "Council",
    "Crew",
    "Cult",
    "Division",
    "Empire",
    "Force",
    "Gang",
    "Guard",
    "Guild",
    "League",
    "Legion",
    "Order",
    "Pack",
    "Patrol",
    "Society",
    "Squad",
    "Syndicate",
    "Team",
    "Tribe",
    "Union",
]
_PLACE = (
    (
        "Asgard Atlantis Chicago Counter-Earth Hell Kyiv Lagos Limbo London Madripoor Mars Mumbai Olympus Paris "
        "Saturn Tokyo Wakanda the_Abyss the_Dark_Dimension the_Microverse the_Negative_Zone the_Void"
    )
    .replace("_", " ")
    .split()
)
_ORIGIN_BASE = [
    "Human",
    "Mutant",
    "Alien",
    "Demon",
    "Robot",
    "Android",
    "Cyborg",
    "Deity",
    "Vampire",
    "Inhuman",
    "Symbiote",
    "Asgardian",
    "Atlantean",
    "Kree",
    "Skrull",
    "Eternal",
    "Deviant",
    "Troll",
    "Dragon",
    "Elemental",
    "Clone",
    "Golem",
    "Spirit",
    "Insectoid",
    "Reptilian",
    "Werewolf",
    "Celestial",
]
_AGENT = [
    "gamma radiation",
    "cosmic rays",
    "Terrigen Mist",
    "a super-soldier serum",
    "a mystic ritual",
    "an alien symbiote",
    "experimental drugs",
    "nanotechnology",
    "a cosmic entity",
    "a genetic experiment",
    "a demonic pact",
    "radioactive waste",
    "a meteorite",
    "dark magic",
    "a chemical accident",
    "a lightning strike",
]
_ENHANCEMENT = ["Cyborg", "cybernetic", "mystical", "bionic", "robotic", "technological"]
_ORIGIN_TEMPLATES = [
    "{b} mutated by {a}",
    "{b} transformed by {a}",
    "{b} empowered by {a}",
    "{b} / {b2} hybrid",
    "{b} with {e} enhancements",
    "{b} from {p}",
    "{b} ({b2} descent)",
]

# --------------------------------------------------------------------------------------------------------
# Tail pools: long lists of generated values, deterministic (independent of seed and partition, so every
# partition draws from the same "multiverse"), shuffled so popularity rank is unrelated to spelling.
# --------------------------------------------------------------------------------------------------------

_POOL_SEED = 20_240_616


def _shuffled_unique(candidates: Sequence[str], exclude: frozenset[str], size: int, key: int) -> np.ndarray:
    uniq = list(dict.fromkeys(c for c in candidates if c not in exclude))
    order = np.random.default_rng([_POOL_SEED, key]).permutation(len(uniq))
    return np.array([uniq[i] for i in order[:size]], dtype=object)


@lru_cache(maxsize=32)
def _universe_pool(
    size: int, trn_share: float, digits: tuple[tuple[int, float], ...], exclude: frozenset[str]
) -> np.ndarray:
    rng = np.random.default_rng([_POOL_SEED, 1])
    n_trn = round(size * trn_share)
    names: list[str] = [f"Earth-TRN{i}" for i in rng.permutation(np.arange(1, 4 * n_trn + 2))[:n_trn]]
    total = sum(p for _, p in digits) or 1.0
    for d, p in digits:
        lo, hi = 10 ** (d - 1), 10**d
        k = min(round((size - n_trn) * p / total) + 1, hi - lo)
        # integer population: numpy samples without replacement without materialising 10^9 candidates
        names += [f"Earth-{v + lo}" for v in rng.choice(hi - lo, size=k, replace=False)]
    return _shuffled_unique(names, exclude, size, 2)


@lru_cache(maxsize=32)
def _origin_pool(size: int, exclude: frozenset[str]) -> np.ndarray:
    cands: list[str] = []
    for t in _ORIGIN_TEMPLATES:
        for b in _ORIGIN_BASE:
            fills = (
                [{"a": a} for a in _AGENT]
                if "{a}" in t
                else [{"b2": b2} for b2 in _ORIGIN_BASE if b2 != b]
                if "{b2}" in t
                else [{"e": e} for e in _ENHANCEMENT]
                if "{e}" in t
                else [{"p": p} for p in _PLACE]
            )
            cands += [t.format(b=b, **f) for f in fills]
    # the wiki spells the same thing in several cases ("Human mutate"/"Human Mutate"): keep some variants
    cands += [c.lower().capitalize() for c in cands[::7]]
    return _shuffled_unique(cands, exclude, size, 3)


@lru_cache(maxsize=32)
def _team_pool(size: int, exclude: frozenset[str]) -> np.ndarray:
    cands = [f"{a} {n}" for a in _ADJ for n in _NOUN] + [f"{a} {g}" for a in _ADJ for g in _GROUP]
    cands += [f"{g} of {p}" for g in _GROUP for p in _PLACE] + [f"{n} {g}" for n in _NOUN for g in _GROUP]
    cands += [f"{a} {n} {g}" for a in _ADJ for n in _NOUN for g in _GROUP[:8]]
    return _shuffled_unique(cands, exclude, size, 4)


@lru_cache(maxsize=32)
def _creator_pool(size: int, exclude: frozenset[str]) -> np.ndarray:
    # Plain "First Last" names take the popular ranks; middle-initial variants only extend the pool.
    plain = _shuffled_unique([f"{f} {la}" for f in _FIRST for la in _LAST], exclude, size, 5)
    initials = [f"{f} {m}. {la}" for m in "ABCDEFGHJKLMNPRSTW" for f in _FIRST for la in _LAST]
    extra = _shuffled_unique(initials, exclude, max(0, size - len(plain)), 6)
    return np.concatenate([plain, extra])


def _pool(kind: str, tail: Mapping[str, Any], exclude: frozenset[str]) -> np.ndarray:
    size = int(tail.get("pool_size", 1000))
    if "values" in tail:  # explicit list (e.g. rare gender spellings)
        return np.array([v for v in tail["values"] if v not in exclude], dtype=object)
    if kind == "universe":
        digits = tuple(sorted((int(k), float(v)) for k, v in tail.get("digits", {4: 1.0}).items()))
        return _universe_pool(size, float(tail.get("trn_share", 0.0)), digits, exclude)
    builders = {"origin": _origin_pool, "teams": _team_pool, "creators": _creator_pool}
    if kind not in builders:
        raise MarvelError(f"synthetic calibration: {kind} has a tail share but no tail `values` list")
    return builders[kind](size, exclude)


def zipf_cdf(n: int, exponent: float, offset: float = 0.0) -> np.ndarray:
    """CDF over ranks 1..n of a truncated Zipf-Mandelbrot law, p_k ~ (k + offset)^-exponent.

    The offset lets a tail continue the rank-frequency curve after the named values (rank 31 onwards for
    universes) instead of restarting at rank 1, which would make the top tail value more popular than the
    named ones.
    """
    w = (np.arange(1, n + 1, dtype=np.float64) + float(offset)) ** -float(exponent)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


# --------------------------------------------------------------------------------------------------------
# Prepared distributions
# --------------------------------------------------------------------------------------------------------

_TAIL = "\x00tail"  # sentinel outcome keys inside a share dict
_MISSING = "\x00missing"


@dataclass(frozen=True)
class _Categorical:
    """A categorical column: named values, a Zipf tail pool, and missing.

    ``table`` holds every value a code can point to (named, then tail pool, then ``None`` last), so one
    ``table[codes]`` gather makes the column.
    """

    table: np.ndarray
    cdf: np.ndarray  # over outcomes: named values..., tail, missing
    n_named: int
    tail_cdf: np.ndarray | None

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        k = np.searchsorted(self.cdf, rng.random(n), side="right")
        codes = k.astype(np.int64)
        tail = k == self.n_named
        if self.tail_cdf is not None and tail.any():
            codes[tail] = self.n_named + np.searchsorted(
                self.tail_cdf, rng.random(int(tail.sum())), side="right"
            )
        codes[k == self.n_named + 1] = len(self.table) - 1
        return codes


def _cdf(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    if p.sum() <= 0:
        raise MarvelError("synthetic data: a distribution has no positive share")
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return cdf


def _override(shares: dict[str, float], overrides: Mapping[str, float] | None, what: str) -> dict[str, float]:
    """Set the given outcomes to their target shares and scale every other outcome to fill the rest."""
    if not overrides:
        return shares
    over = {str(k): float(v) for k, v in overrides.items()}
    if any(v < 0 for v in over.values()) or sum(over.values()) > 1.0 + 1e-9:
        raise MarvelError(f"synthetic drift: {what} shares must be >= 0 and sum to at most 1, got {over}")
    total = sum(shares.values())
    rest = {k: v / total for k, v in shares.items() if k not in over}
    scale = (1.0 - sum(over.values())) / (sum(rest.values()) or 1.0)
    return {**{k: v * scale for k, v in rest.items()}, **over}


def _categorical(
    kind: str, spec: Mapping[str, Any], overrides: Mapping[str, float] | None = None
) -> _Categorical:
    shares: dict[str, float] = {str(k): float(v) for k, v in (spec.get("values") or {}).items()}
    tail = spec.get("tail") or {}
    shares[_TAIL] = float(tail.get("share", 0.0))
    shares[_MISSING] = float(spec.get("missing", 0.0))
    shares = _override(shares, overrides, kind)
    named = [k for k in shares if k not in (_TAIL, _MISSING)]
    pool = _pool(kind, tail, frozenset(named)) if shares[_TAIL] > 0 else np.array([], dtype=object)
    if len(pool) == 0:
        shares[_TAIL] = 0.0
    probs = [shares[k] for k in named] + [shares[_TAIL], shares[_MISSING]]
    table = np.array([*named, *pool, None], dtype=object)
    tail_cdf = (
        zipf_cdf(len(pool), float(tail.get("zipf_exponent", 1.0)), float(tail.get("rank_offset", 0.0)))
        if len(pool)
        else None
    )
    return _Categorical(table=table, cdf=_cdf(np.array(probs)), n_named=len(named), tail_cdf=tail_cdf)


@dataclass(frozen=True)
class _ListColumn:
    """A "; "-joined list column: missing or a length, then that many distinct slot values, sorted."""

    slots: _Categorical  # never missing: the whole list is missing or not
    rank: np.ndarray  # slot code -> index into sorted_table
    sorted_table: np.ndarray  # slot values in alphabetical order, so sorting codes sorts names
    missing: float
    length_cdf: np.ndarray  # over lengths 1..len(length_cdf)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.rank[self.slots.draw(rng, n)]


def _list_column(kind: str, spec: Mapping[str, Any]) -> _ListColumn:
    cat = _categorical(kind, {"values": spec.get("values"), "tail": spec.get("tail"), "missing": 0.0})
    # The wiki lists teams and creators alphabetically: re-code slots into alphabetical order.
    values = cat.table[:-1]
    order = np.argsort(values.astype(str), kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = len(order)
    lengths = spec.get("lengths") or {1: 1.0}
    p = np.zeros(max(int(k) for k in lengths))
    for k, v in lengths.items():
        p[int(k) - 1] = float(v)
    return _ListColumn(
        slots=cat,
        rank=rank,
        sorted_table=np.array([*values[order], None], dtype=object),
        missing=float(spec.get("missing", 0.0)),
        length_cdf=_cdf(p),
    )


@dataclass(frozen=True)
class _Quantiles:
    """Inverse CDF through calibrated quantile knots, log-linear between knots.

    Equivalently a mixture of log-uniform segments weighted by the knot spacing: it reproduces every
    calibrated quantile (1%..99%, min and max) exactly and keeps the heavy tail up to the max.
    """

    probs: np.ndarray
    log_values: np.ndarray

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(u, self.probs, self.log_values))


def _quantiles(spec: Mapping[Any, Any], what: str) -> _Quantiles:
    items = sorted((float(k), float(v)) for k, v in spec.items())
    probs, values = np.array([k for k, _ in items]), np.array([v for _, v in items])
    if probs[0] != 0.0 or probs[-1] != 1.0 or np.any(np.diff(values) < 0) or values[0] <= 0:
        raise MarvelError(f"synthetic calibration: {what} quantiles need knots 0 and 1, increasing, > 0")
    return _Quantiles(probs=probs, log_values=np.log(values))


NO_DRIFT: dict[str, Any] = {
    "height_scale": 1.0,
    "weight_scale": 1.0,
    "gender_shares": None,
    "universe_shares": None,
    "origin_shares": None,
    "alive_rate": None,
}

_DIRTY_KINDS: list[str] = [
    "alive_unknown",
    "alive_ghost",
    "alive_missing",
    "height_negative",
    "height_absurd",
    "weight_zero",
    "page_id_empty",
]

_REFERENCE_ROWS = 50_000  # rows of the fixed reference draw that sets the Alive intercept shift
_URL_PREFIX = "https://marvel.fandom.com/wiki/"


def _plain(x: Any) -> Any:
    """Hydra hands over DictConfig/ListConfig; the generator wants plain containers."""
    if isinstance(x, DictConfig | ListConfig):
        return OmegaConf.to_container(x, resolve=True)
    return x


def default_calibration() -> dict[str, Any]:
    """The ``calibration`` block of conf/data/synthetic.yaml (repo checkout or installed wheel)."""
    here = Path(__file__).resolve()
    for path in (
        here.parents[2] / "conf" / "data" / "synthetic.yaml",
        here.parents[1] / "_conf" / "data" / "synthetic.yaml",
    ):
        if path.exists():
            return OmegaConf.to_container(OmegaConf.load(path).calibration, resolve=True)  # type: ignore[return-value]
    raise MarvelError("synthetic data: conf/data/synthetic.yaml not found; pass `calibration` explicitly")


class SyntheticSource(DataSource):
    """Synthetic raw character rows, calibrated on the real sample, with optional drift and dirt.

    Args:
        n_rows: rows returned by ``load()``.
        seed: the seed; same seed and config give the same rows.
        calibration: the statistics (see conf/data/synthetic.yaml); ``None`` loads that file's block.
        drift: distribution shift for monitoring demos; every option defaults to "no drift" (NO_DRIFT).
        dirty_rate: share of rows deliberately made invalid (quarantine demos); 0 means all rows pass
            ``RawCharacters``.
        id_prefix: marks synthetic PageIDs, which carry a "(<prefix>-<partition>-<row>)" qualifier.
    """

    def __init__(
        self,
        n_rows: int = 20000,
        seed: int = 42,
        calibration: dict | None = None,
        drift: dict | None = None,
        dirty_rate: float = 0.0,
        id_prefix: str = "syn",
    ) -> None:
        self.n_rows = int(n_rows)
        self.seed = int(seed)
        self.calibration: dict[str, Any] = _plain(calibration) or default_calibration()
        given = {k: v for k, v in (_plain(drift) or {}).items() if v is not None}
        unknown = set(given) - set(NO_DRIFT)
        if unknown:
            raise MarvelError(f"synthetic drift: unknown options {sorted(unknown)}; known: {list(NO_DRIFT)}")
        self.drift: dict[str, Any] = {**NO_DRIFT, **given}
        self.dirty_rate = float(dirty_rate)
        if not 0.0 <= self.dirty_rate <= 1.0:
            raise MarvelError(f"synthetic data: dirty_rate must be in [0, 1], got {dirty_rate}")
        self.id_prefix = str(id_prefix)
        drifted = [k for k, v in self.drift.items() if v != NO_DRIFT[k]]
        self.description = (
            f"synthetic(n_rows={self.n_rows}, seed={self.seed}, dirty_rate={self.dirty_rate}"
            + (f", drift={drifted}" if drifted else "")
            + ")"
        )
        self._prepared: dict[str, Any] | None = None

    # ---------------------------------------------------------------------------------------------------
    def load(self) -> pd.DataFrame:
        return self.generate(self.n_rows, self.seed, partition=0)

    def __getstate__(self) -> dict[str, Any]:
        # Spark ships the source to executors; the prepared tables rebuild quickly there.
        return {**self.__dict__, "_prepared": None}

    # ---------------------------------------------------------------------------------------------------
    def _prepare(self) -> dict[str, Any]:
        if self._prepared is not None:
            return self._prepared
        cal, drift = self.calibration, self.drift
        try:
            gender_spec = dict(cal["gender"])
            if drift["gender_shares"]:
                # Replaces the distribution of the present values; the missing rate stays calibrated.
                miss = float(gender_spec.get("missing", 0.0))
                shares = {str(k): float(v) for k, v in drift["gender_shares"].items()}
                if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
                    raise MarvelError(f"synthetic drift: gender_shares must be >= 0 and not all 0: {shares}")
                tot = sum(shares.values())
                gender_spec = {
                    "values": {k: v / tot * (1 - miss) for k, v in shares.items()},
                    "missing": miss,
                }
            p: dict[str, Any] = {
                "Universe": _categorical("universe", cal["universe"], drift["universe_shares"]),
                "Identity": _categorical("identity", cal["identity"]),
                "Gender": _categorical("gender", gender_spec),
                "Marital Status": _categorical("marital_status", cal["marital_status"]),
                "Origin": _categorical("origin", cal["origin"], drift["origin_shares"]),
                "Teams": _list_column("teams", cal["teams"]),
                "Creators": _list_column("creators", cal["creators"]),
                "height": _quantiles(cal["height"]["quantiles"], "height"),
                "weight": _quantiles(cal["weight"]["quantiles"], "weight"),
                "name_words": _cdf(np.array([float(cal["name"]["words"].get(k, 0.0)) for k in (1, 2, 3)])),
                "person_share": float(cal["name"]["person_share"]),
            }
            m = cal["measurements"]
            p["measured_cdf"] = _cdf(
                np.array(
                    [
                        m["both"],
                        m["height_only"],
                        m["weight_only"],
                        1.0 - m["both"] - m["height_only"] - m["weight_only"],
                    ]
                )
            )
            # Gaussian copula correlation from the Spearman rank correlation of known (height, weight).
            rs = float(m.get("rank_correlation", 0.0))
            p["rho"] = 2.0 * math.sin(math.pi * rs / 6.0)
            model = cal["alive_model"]
            coef = {k: float(v) for k, v in model["coefficients"].items()}
            target = float(drift["alive_rate"] if drift["alive_rate"] is not None else cal["alive_rate"])
        except KeyError as e:
            raise MarvelError(f"synthetic calibration: missing key {e}; see conf/data/synthetic.yaml") from e
        for key in ("height_scale", "weight_scale"):
            if not float(drift[key]) > 0:
                raise MarvelError(f"synthetic drift: {key} must be > 0, got {drift[key]}")
        if not 0.0 < target < 1.0:
            raise MarvelError(f"synthetic drift: alive_rate must be strictly between 0 and 1, got {target}")
        # Per-value logit contribution of each categorical column, so the Alive model is one gather per
        # column instead of a rows x features matrix.
        contrib: dict[str, np.ndarray] = {}
        for col, fn in _CATEGORY_FEATURES.items():
            feats = fn(pd.Series(p[col].table, dtype=object)).astype("float64")
            contrib[col] = feats.to_numpy() @ np.array([coef.get(f, 0.0) for f in feats.columns])
        p["contrib"], p["coef"], p["intercept"] = contrib, coef, float(model["intercept"])
        # The features here are drawn independently of each other, unlike the real data, so the fitted
        # intercept alone misses the real alive rate; shift it so a large fixed reference draw hits target.
        ref = self._draw(np.random.default_rng([_POOL_SEED, 99]), _REFERENCE_ROWS, p)
        lo, hi = -30.0, 30.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expit(ref["logit"] + mid).mean() < target else (lo, mid)
        p["shift"] = (lo + hi) / 2
        self._prepared = p
        return p

    def _draw(self, rng: np.random.Generator, n: int, p: dict[str, Any]) -> dict[str, Any]:
        """Codes and numbers for n rows (no strings yet) plus the Alive logit without shift."""
        out: dict[str, Any] = {}
        for col in ("Universe", "Identity", "Gender", "Marital Status", "Origin"):
            out[col] = p[col].draw(rng, n)
        for col in ("Teams", "Creators"):
            lc: _ListColumn = p[col]
            lengths = np.searchsorted(lc.length_cdf, rng.random(n), side="right") + 1
            lengths[rng.random(n) < lc.missing] = 0
            out[col + "_len"] = lengths
        kind = np.searchsorted(p["measured_cdf"], rng.random(n), side="right")
        out["h_known"], out["w_known"] = (kind == 0) | (kind == 1), (kind == 0) | (kind == 2)
        coef = p["coef"]
        logit = np.full(n, p["intercept"])
        for col, c in p["contrib"].items():
            logit += c[out[col]]
        logit += coef.get("teams_log1p", 0.0) * np.log1p(out["Teams_len"])
        logit += coef.get("creators_log1p", 0.0) * np.log1p(out["Creators_len"])
        logit += (
            coef.get("height_known", 0.0) * out["h_known"] + coef.get("weight_known", 0.0) * out["w_known"]
        )
        out["logit"] = logit
        return out

    # ---------------------------------------------------------------------------------------------------
    def generate(self, n_rows: int, seed: int, partition: int = 0) -> pd.DataFrame:
        """``n_rows`` rows in the raw contract (`conform`), determined by (seed, partition) and the config.

        PageIDs carry the partition index, so frames from different partitions of one seed never collide.
        """
        p = self._prepare()
        n = int(n_rows)
        rng = np.random.default_rng([int(seed), int(partition)])
        d = self._draw(rng, n, p)
        alive = rng.random(n) < expit(d["logit"] + p["shift"])

        # Heights/weights through a Gaussian copula so giants are also heavy, as in the data.
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        z2 = p["rho"] * z1 + math.sqrt(max(0.0, 1.0 - p["rho"] ** 2)) * z2
        height = np.full(n, np.nan)
        weight = np.full(n, np.nan)
        hk, wk = d["h_known"], d["w_known"]
        height[hk] = p["height"](ndtr(z1[hk])) * float(self.drift["height_scale"])
        weight[wk] = p["weight"](ndtr(z2[wk])) * float(self.drift["weight_scale"])
        # The wiki gives two decimals; clip so scaled values stay inside the schema's physical bounds.
        height = np.clip(np.round(height, 2), 0.01, MAX_HEIGHT_M)
        weight = np.clip(np.round(weight, 2), 0.01, MAX_WEIGHT_KG)

        names, names_u = self._names(rng, n, p)
        uni_table = p["Universe"].table
        universe = uni_table[d["Universe"]]
        uni_u = np.array([None if u is None else u.replace(" ", "_") for u in uni_table], dtype=object)
        uni_url = np.array([None if u is None else quote(u, safe="()_-.,:!~*") for u in uni_u], dtype=object)
        qual_prefix = f"{self.id_prefix}-{int(partition)}-" if self.id_prefix else f"{int(partition)}-"
        qual = "_(" + qual_prefix + np.arange(n).astype(str).astype(object) + ")_("
        page_id = names_u[0] + qual + uni_u[d["Universe"]] + ")"
        url = _URL_PREFIX + names_u[1] + qual + uni_url[d["Universe"]] + ")"

        df = pd.DataFrame(
            {
                "PageID": page_id,
                "Name": names,
                "Universe": universe,
                "URL": url,
                "Identity": p["Identity"].table[d["Identity"]],
                "Gender": p["Gender"].table[d["Gender"]],
                "Alive": np.where(alive, "Alive", "Dead").astype(object),
                "Marital Status": p["Marital Status"].table[d["Marital Status"]],
                "Teams": self._lists(rng, d["Teams_len"], p["Teams"]),
                "Height (m)": height,
                "Weight (kg)": weight,
                "Origin": p["Origin"].table[d["Origin"]],
                "Creators": self._lists(rng, d["Creators_len"], p["Creators"]),
            }
        )
        if self.dirty_rate > 0:
            # A separate stream, so the clean rows are identical to the dirty_rate=0 output.
            self._dirty(np.random.default_rng([int(seed), int(partition), 0xD1]), df)
        return conform(df)[RAW_COLUMNS]

    def _names(
        self, rng: np.random.Generator, n: int, p: dict[str, Any]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Character names (1-3 words), plus their PageID and URL spellings.

        Strings are built only for the distinct drawn combinations (a few thousand), then gathered.
        """
        words = np.searchsorted(p["name_words"], rng.random(n), side="right") + 1
        person = rng.random(n) < p["person_share"]
        a, b, c = rng.integers(0, 1 << 30, n), rng.integers(0, 1 << 30, n), rng.integers(0, 1 << 30, n)
        # style codes: 1 word codename, 2 words person or adjective+noun, 3 words title + person
        style = np.where(words == 1, 0, np.where(words == 3, 3, np.where(person, 1, 2)))
        pools: list[tuple[list[str], ...]] = [
            (_ADJ + _NOUN, [w.lower() for w in _NOUN]),  # "Shadowhawk", "Ironwolf"
            (_FIRST, _LAST),
            (_ADJ, _NOUN),
            (_TITLE, _FIRST, _LAST),
        ]
        code = np.zeros(n, dtype=np.int64)
        for s, parts in enumerate(pools):
            rows = style == s
            idx = [x[rows] % len(part) for x, part in zip((a, b, c), parts, strict=False)]
            k = idx[0]
            for i, part in zip(idx[1:], parts[1:], strict=True):
                k = k * len(part) + i
            code[rows] = k * 4 + s
        uniq, inv = np.unique(code, return_inverse=True)
        built: list[str] = []
        for u in uniq.tolist():
            s, k = u % 4, u // 4
            parts = pools[s]
            pieces: list[str] = []
            for part in reversed(parts):
                pieces.append(part[k % len(part)])
                k //= len(part)
            pieces.reverse()
            built.append("".join(pieces) if s == 0 else " ".join(pieces))
        table = np.array(built, dtype=object)
        table_u = np.array([t.replace(" ", "_") for t in built], dtype=object)
        table_url = np.array([quote(t, safe="()_-.,:!~*") for t in table_u], dtype=object)
        return table[inv], (table_u[inv], table_url[inv])

    @staticmethod
    def _lists(rng: np.random.Generator, lengths: np.ndarray, lc: _ListColumn) -> np.ndarray:
        """ "; "-joined, alphabetically sorted lists of distinct slot values (None where length is 0)."""
        out = np.full(len(lengths), None, dtype=object)
        table = lc.sorted_table
        for k in np.unique(lengths[lengths > 0]).tolist():
            rows = np.flatnonzero(lengths == k)
            codes = lc.draw(rng, len(rows) * k).reshape(len(rows), k)
            if k > 1:
                codes.sort(axis=1)
                # Redraw rows holding the same value twice (popular teams collide); a few tries suffice.
                for _ in range(8):
                    dup = (np.diff(codes, axis=1) == 0).any(axis=1)
                    if not dup.any():
                        break
                    codes[dup] = lc.draw(rng, int(dup.sum()) * k).reshape(-1, k)
                    codes.sort(axis=1)
            joined = table[codes[:, 0]]
            for j in range(1, k):
                joined = joined + "; " + table[codes[:, j]]
            out[rows] = joined
        return out

    def _dirty(self, rng: np.random.Generator, df: pd.DataFrame) -> None:
        """Break exactly round(dirty_rate * n) rows, each in one way the schema rejects."""
        n = len(df)
        k = round(self.dirty_rate * n)
        if k == 0:
            return
        rows = rng.choice(n, size=k, replace=False)
        kinds = rng.integers(0, len(_DIRTY_KINDS), size=k)
        for i, kind in enumerate(_DIRTY_KINDS):
            r = rows[kinds == i]
            if len(r) == 0:
                continue
            if kind == "alive_unknown":
                df.loc[r, "Alive"] = "Unknown"
            elif kind == "alive_ghost":
                df.loc[r, "Alive"] = "Ghost"
            elif kind == "alive_missing":
                df.loc[r, "Alive"] = None
            elif kind == "height_negative":
                df.loc[r, "Height (m)"] = -rng.uniform(0.5, 2.5, len(r)).round(2)
            elif kind == "height_absurd":
                df.loc[r, "Height (m)"] = MAX_HEIGHT_M * 10
            elif kind == "weight_zero":
                df.loc[r, "Weight (kg)"] = 0.0
            elif kind == "page_id_empty":
                df.loc[r, "PageID"] = ""
