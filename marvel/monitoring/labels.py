"""Labels arriving after the predictions: which are new, which win, and which say nothing.

A refresh reads the label rows added since the last one (the `labels` table's change data feed), checks them
against the `Labels` contract (rows that fail are quarantined with the reason), and for every Id among them
takes the latest label in the whole table (`labelled_at`, then table order): a correction wins over the
label it corrects. Ids labelled more than once and labels for Ids never scored are counted and said.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marvel.core.quarantine import split_valid
from marvel.core.schemas import Labels, Quarantine, empty
from marvel.monitoring.lake import Lake

COLUMNS = ["Id", "label", "labelled_at"]


@dataclass
class NewLabels:
    winners: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"Id": [], "label": []}))
    rows: int = 0  # label rows read
    duplicated: int = 0  # Ids with more than one label (the latest wins)
    quarantined: pd.DataFrame = field(default_factory=lambda: empty(Quarantine))


def latest(labels: pd.DataFrame) -> pd.DataFrame:
    """One label per Id: the latest `labelled_at`, ties to the later row."""
    valid = labels[labels["Id"].notna() & labels["label"].isin([0, 1])]
    valid = valid.sort_values("labelled_at", kind="stable").drop_duplicates("Id", keep="last")
    return pd.DataFrame({"Id": valid["Id"].astype(str), "label": valid["label"].astype(float)})


def lookup(lake: Lake, table: str, version: int, ids: Sequence[str]) -> pd.DataFrame:
    """The winning label of each of `ids` in `table` at `version` (Ids without a label are left out)."""
    ids = [i for i in pd.unique(np.asarray(ids, dtype=object)) if i is not None and i == i]
    if version < 0 or not ids:
        return latest(pd.DataFrame({"Id": [], "label": [], "labelled_at": []}))
    found = lake.read(table, version, COLUMNS, match=("Id", ids)).to_pandas()
    return latest(found)


def new_labels(lake: Lake, table: str, after: int, upto: int, run_id: str, now: pd.Timestamp) -> NewLabels:
    """Labels added in versions (after, upto] of `table`, resolved to one per Id."""
    if upto < 0 or upto <= after:
        return NewLabels()
    added = lake.changes(table, after, upto).reset_index(drop=True)
    if added.empty:
        return NewLabels()
    good, bad = split_valid(added, Labels, table=table, stage="monitor", run_id=run_id)
    bad = bad.assign(quarantined_at=now)
    ids = good["Id"].astype(str).tolist()
    every = lake.read(table, upto, COLUMNS, match=("Id", sorted(set(ids)))).to_pandas()
    per_id = every[every["label"].isin([0, 1])].groupby("Id").size()
    return NewLabels(
        winners=latest(every),
        rows=len(added),
        duplicated=int((per_id > 1).sum()),
        quarantined=bad,
    )
