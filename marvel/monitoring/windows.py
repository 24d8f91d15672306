"""Time windows: fixed-size, epoch-aligned buckets of the request timestamp (Lakehouse's `granularity`)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from marvel.core.errors import MarvelError

_UNITS = {"minute": "min", "minutes": "min", "hour": "h", "hours": "h", "day": "D", "days": "D", "week": "W"}
_UNITS.update({"weeks": "W"})


def parse_granularity(text: str) -> pd.Timedelta:
    """ "30 minutes" / "1 hour" / "1 day" / "1 week" -> a Timedelta (calendar months are not supported)."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]+)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise MarvelError(
            f"monitor.granularity '{text}' is not understood: use e.g. '5 minutes', '30 minutes', '1 hour', '1 day'"
        )
    delta = pd.Timedelta(int(m.group(1)), unit=_UNITS[m.group(2).lower()])
    if delta <= pd.Timedelta(0):
        raise MarvelError(f"monitor.granularity must be positive, got '{text}'")
    return delta


def window_start(ts: pd.Series, granularity: pd.Timedelta) -> pd.Series:
    """The start of each timestamp's window; windows are aligned to the Unix epoch, so every run agrees."""
    ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    step = granularity.value
    return pd.Series((ns // step * step).astype("datetime64[ns]"), index=ts.index)
