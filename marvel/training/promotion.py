"""Whether a new model takes the champion alias: a pure decision, so every rule is a unit test.

Metrics compare only on the same test rows, which means within one data lineage (`core.sources.Lineage`).
Across lineages the rule is by kind: real data (a Kaggle file, a table) supersedes a generated-data champion;
generated data never displaces a real-data champion; any other change of lineage is the user's call
(``promotion.allow_new_lineage=true``). Every promotion also has to beat the always-majority baseline by a
margin; a tie with the champion keeps the champion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from marvel.core.metrics import improvement
from marvel.core.sources import Lineage

ALLOW = "promotion.allow_new_lineage=true"


@dataclass(frozen=True)
class Challenger:
    lineage: Lineage | None
    metric: float  # on this run's test rows
    baseline: float  # the always-majority baseline on the same rows


@dataclass(frozen=True)
class Champion:
    version: str
    lineage: Lineage | None
    metric: float  # on this run's test rows when the lineages match (NaN: not compared, or not scorable)


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str  # one line for the run summary


def comparable(challenger: Lineage | None, champion: Lineage | None) -> bool:
    """Whether two models' metrics on this run's test rows may be compared: one lineage, both known."""
    return challenger is not None and champion is not None and challenger.key == champion.key


def decide(
    metric: str,
    new: Challenger,
    champion: Champion | None,
    *,
    margin: float,
    allow_new_lineage: bool,
) -> Verdict:
    m, b = new.metric, new.baseline
    gain = improvement(metric, m, b)
    if math.isnan(m) or not gain >= margin:
        return Verdict(
            False,
            f"not promoted: {metric} {m:.4f} does not beat the always-majority baseline {b:.4f} by {margin:g} "
            "(promotion.min_improvement_over_baseline)",
        )
    if champion is None:
        return Verdict(True, f"promoted (first model): {metric} {m:.4f}, baseline {b:.4f}")
    v, mine, theirs = champion.version, new.lineage, champion.lineage
    if mine is None or theirs is None:
        which = f"champion v{v}" if theirs is None else "this model's tables"
        if allow_new_lineage:
            return Verdict(True, f"promoted: {which} has no recorded data lineage; {ALLOW}")
        return Verdict(
            False,
            f"not promoted: {which} has no recorded data lineage (made before lineage was recorded), so the "
            f"models are not compared; {ALLOW} promotes",
        )
    if mine.key == theirs.key:
        if math.isnan(champion.metric):
            return Verdict(True, f"promoted: champion v{v} could not be scored on these test rows")
        delta = improvement(metric, m, champion.metric)
        if delta > 0:
            return Verdict(
                True,
                f"promoted: {metric} {m:.4f} > champion v{v} {champion.metric:.4f} on the same test rows",
            )
        how = "ties" if delta == 0 else "is worse than"
        return Verdict(
            False,
            f"not promoted: {metric} {m:.4f} {how} champion v{v} {champion.metric:.4f} on the same test rows",
        )
    if mine.real and not theirs.real:
        return Verdict(
            True, f"promoted: real data ({mine.key}) supersedes champion v{v} trained on generated data"
        )
    if theirs.real and not mine.real:
        return Verdict(
            False,
            f"not promoted: trained on generated data ({mine.key}); champion v{v} is trained on real data "
            f"({theirs.key}), which only real data displaces",
        )
    if allow_new_lineage:
        return Verdict(True, f"promoted: new data lineage {mine.key} (champion v{v}: {theirs.key}); {ALLOW}")
    return Verdict(
        False,
        f"not promoted: data lineage {mine.key} differs from champion v{v}'s ({theirs.key}), whose metrics "
        f"are on other test rows; {ALLOW} promotes",
    )
