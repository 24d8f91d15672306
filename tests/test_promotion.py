"""The promotion rules, one by one (a pure function: no registry needed)."""

from __future__ import annotations

import math

import pytest

from marvel.core.sources import GENERATED, REAL, Lineage
from marvel.training.promotion import Challenger, Champion, decide

SYN = Lineage(GENERATED, "synthetic", "synthetic:aaa", "n_rows=2000,seed=42")
SYN_OTHER_SEED = Lineage(GENERATED, "synthetic", "synthetic:aaa", "n_rows=2000,seed=7")
DRIFTED = Lineage(GENERATED, "synthetic", "synthetic+drift(height_scale):bbb", "n_rows=2000,seed=42")
KAGGLE = Lineage(REAL, "kaggle", "kaggle:marvel.csv", "sha256:1")
KAGGLE_NEW = Lineage(REAL, "kaggle", "kaggle:marvel.csv", "sha256:2")
TABLE = Lineage(REAL, "table", "table:raw", "v3")


def verdict(
    new: Lineage | None, metric: float, champion: Champion | None, allow: bool = False
) -> tuple[bool, str]:
    v = decide("roc_auc", Challenger(new, metric, 0.5), champion, margin=0.01, allow_new_lineage=allow)
    return v.promote, v.reason


def test_a_first_model_must_beat_the_baseline_by_the_margin() -> None:
    assert verdict(SYN, 0.62, None)[0]
    promoted, reason = verdict(SYN, 0.505, None)
    assert not promoted
    assert "always-majority baseline" in reason


def test_within_one_lineage_the_better_model_wins_and_a_tie_keeps_the_champion() -> None:
    champ = Champion("3", SYN, 0.60)
    assert verdict(SYN_OTHER_SEED, 0.61, champ)[0]  # another seed: the same lineage, compared on these rows
    promoted, reason = verdict(SYN, 0.60, champ)
    assert not promoted
    assert "ties champion v3" in reason
    assert not verdict(SYN, 0.59, champ)[0]
    assert verdict(KAGGLE_NEW, 0.70, Champion("4", KAGGLE, 0.69))[0]  # a new export of the same file


def test_real_data_supersedes_generated_data_and_never_the_other_way() -> None:
    promoted, reason = verdict(KAGGLE, 0.55, Champion("2", SYN, math.nan))
    assert promoted
    assert "supersedes" in reason
    promoted, reason = verdict(SYN, 0.99, Champion("5", KAGGLE, math.nan), allow=True)
    assert not promoted
    assert "generated data" in reason


@pytest.mark.parametrize(("new", "old"), [(TABLE, KAGGLE), (DRIFTED, SYN)])
def test_another_change_of_lineage_needs_the_users_word(new: Lineage, old: Lineage) -> None:
    champ = Champion("2", old, math.nan)
    promoted, reason = verdict(new, 0.7, champ)
    assert not promoted
    assert "promotion.allow_new_lineage=true" in reason
    assert verdict(new, 0.7, champ, allow=True)[0]
    assert not verdict(new, 0.505, champ, allow=True)[0]  # the baseline gate still holds


def test_a_champion_without_lineage_is_never_compared() -> None:
    legacy = Champion("1", None, math.nan)
    promoted, reason = verdict(SYN, 0.9, legacy)
    assert not promoted
    assert "no recorded data lineage" in reason
    assert verdict(SYN, 0.9, legacy, allow=True)[0]


def test_log_loss_is_lower_is_better() -> None:
    v = decide(
        "log_loss",
        Challenger(SYN, 0.50, 0.56),
        Champion("1", SYN, 0.52),
        margin=0.01,
        allow_new_lineage=False,
    )
    assert v.promote
    v = decide("log_loss", Challenger(SYN, 0.555, 0.56), None, margin=0.01, allow_new_lineage=False)
    assert not v.promote
