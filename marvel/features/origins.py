"""What a free-text Origin says: the one keyword table, read by both processors and the synthetic generator.

Each keyword is a lower-case substring of an Origin. A keyword may belong to a *family* (marvel's origin
flags and the generator's Alive model: a character is flagged for every family one of whose keywords its
origin contains) and may name a *seed group* (the source platform's grouping: the first group, in table
order, with a keyword the origin contains; none matches -> "Other").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Keyword:
    text: str
    family: str | None = None
    seed_group: str | None = None


# Order matters for seed groups only (first match wins, in the source platform's order).
KEYWORDS: tuple[Keyword, ...] = (
    Keyword("human", "human", "Human"),
    Keyword("mutate", "mutate", "Mutant"),
    Keyword("mutant", "mutant", "Mutant"),
    Keyword("asgardian", seed_group="Asgardian"),
    Keyword("alien", "alien", "Alien"),
    Keyword("kree", "alien"),
    Keyword("skrull", "alien"),
    Keyword("shi'ar", "alien"),
    Keyword("symbiote", seed_group="Symbiote"),
    Keyword("robot", "artificial", "Robot"),
    Keyword("android", "artificial"),
    Keyword("cyborg", "artificial"),
    Keyword("synthetic", "artificial"),
    Keyword("artificial", "artificial"),
    Keyword("sentinel", "artificial"),
    Keyword("decoy", "artificial"),
    Keyword("demon", "supernatural"),
    Keyword("god", "supernatural"),
    Keyword("deity", "supernatural"),
    Keyword("vampire", "supernatural"),
    Keyword("spirit", "supernatural"),
    Keyword("ghost", "supernatural"),
    Keyword("undead", "supernatural"),
    Keyword("zombie", "supernatural"),
    Keyword("cosmic being", "cosmic", "Cosmic Being"),
    Keyword("cosmic", "cosmic"),
    Keyword("celestial", "cosmic"),
    Keyword("elder", "cosmic"),
)

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(k.family for k in KEYWORDS if k.family))
SEED_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(k.seed_group for k in KEYWORDS if k.seed_group))
OTHER = "Other"
_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    f: tuple(k.text for k in KEYWORDS if k.family == f) for f in FAMILIES
}
_SEED_WORDS: tuple[tuple[str, str], ...] = tuple((k.text, k.seed_group) for k in KEYWORDS if k.seed_group)


@lru_cache(maxsize=65536)
def seed_group(origin: str | None) -> str:
    """The source platform's origin group of one origin. It fills a missing origin with "Unknown", which
    matches no keyword, so missing is "Other" too."""
    if origin is None:
        return OTHER
    lower = origin.lower()
    for text, group in _SEED_WORDS:
        if text in lower:
            return group
    return OTHER


@lru_cache(maxsize=65536)
def families(origin: str | None) -> frozenset[str]:
    """The keyword families an origin belongs to (none when missing)."""
    if origin is None:
        return frozenset()
    lower = origin.lower()
    return frozenset(f for f, words in _FAMILY_WORDS.items() if any(w in lower for w in words))


def family_flags(origins: Iterable[str | None]) -> dict[str, list[int]]:
    """``{family: [1/0 per origin]}`` for every family, in `FAMILIES` order."""
    found = [families(o) for o in origins]
    return {f: [int(f in fs) for fs in found] for f in FAMILIES}
