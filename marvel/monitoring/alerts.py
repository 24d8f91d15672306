"""Alert rules over the metric tables, and the alerts table's lifecycle.

A rule is a set of conditions that must *all* hold, e.g. "KS p-value below 0.005 and KS statistic above
0.2": significant (not noise at this window's size) and large (worth a person's time). `monitor.alerts`:

    drift_type: BASELINE          # which comparison alerts (CONSECUTIVE also fires once at every step change)
    last_windows: null            # only the N most recent windows raise alerts (null: every window)
    numeric: {ks_test: {pvalue: {below: 0.005}, statistic: {above: 0.2}}}
    categorical: {chi_squared_test: {pvalue: {below: 0.005}}, population_stability_index: {above: 0.1}}
    columns: {Teams: null}        # per-column rule replacing its kind's (null: never alert on it)
    quality: {marvel_estimated_accuracy_drop: {above: 0.05}}   # on the `:table` rows of the profile table

Metrics are the metric tables' columns; a struct field is written nested (as above) or dotted
(``ks_test.pvalue``). Each alert is kept once in `model_monitoring_alerts`, keyed by window, slice, model,
column and rule: opened the first refresh it fires, `last_seen` while it keeps firing, resolved when its
window is recomputed and it no longer fires (e.g. late labels), reopened if it fires again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marvel.core.errors import MarvelError
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN

OPS = ("below", "above")
KEYS = ["window.start", "slice_key", "slice_value", "model_id", "column_name", "rule"]


class DriftAlert(MarvelError):
    """Raised with `monitor.fail_on_alert=true`: a scheduler sees a distinct exit code for "drift", not a bug."""

    exit_code = 3


@dataclass(frozen=True)
class Alert:
    window_start: pd.Timestamp
    model_id: str
    column_name: str
    kind: str  # "drift" | "quality"
    rule: str  # the conditions that fired, with the measured values
    slice_key: str | None = None
    slice_value: str | None = None
    key: str = ""  # the rule's name in the alerts table: "drift:BASELINE", "quality"

    def line(self) -> str:
        model = "" if self.model_id == ALL_MODELS else f" [{self.model_id}]"
        where = f" [{self.slice_key} = {self.slice_value}]" if self.slice_key else ""
        return f"{self.window_start:%Y-%m-%d %H:%M} {self.column_name}{model}{where}: {self.rule}"


def conditions(rule: Mapping[str, Any] | None, prefix: str = "") -> dict[str, dict[str, float]]:
    """A rule, nested or dotted, as {"ks_test.pvalue": {"below": 0.005}, ...}."""
    out: dict[str, dict[str, float]] = {}
    for name, cond in (rule or {}).items():
        path = f"{prefix}{name}"
        if isinstance(cond, Mapping) and cond and all(k in OPS for k in cond):
            out[path] = {str(k): float(v) for k, v in cond.items()}
        elif isinstance(cond, Mapping) and cond:
            out.update(conditions(cond, f"{path}."))
        else:
            raise MarvelError(f"monitor.alerts: '{path}' needs a condition, e.g. {{below: 0.005}}")
    return out


def check(rules: Mapping[str, Any], drift_columns: list[str], profile_columns: list[str]) -> None:
    """Fail before any work on a rule that names no metric-table column or has no condition."""
    for kind, columns in (
        ("numeric", drift_columns),
        ("categorical", drift_columns),
        ("quality", profile_columns),
    ):
        rule_sets = [rules.get(kind)]
        if kind != "quality":
            rule_sets += list((rules.get("columns") or {}).values())
        for rule in rule_sets:
            for metric in conditions(rule):
                if metric not in columns:
                    raise MarvelError(
                        f"monitor.alerts.{kind}: unknown metric '{metric}'; use a column of the "
                        f"{'profile' if kind == 'quality' else 'drift'} metrics table "
                        "(struct fields dotted, e.g. ks_test.pvalue)"
                    )


def _mask(frame: pd.DataFrame, conds: Mapping[str, Mapping[str, float]]) -> pd.Series:
    """Rows where every condition holds (NaN never fires)."""
    ok = pd.Series(True, index=frame.index)
    for metric, cond in conds.items():
        if metric not in frame.columns:
            raise MarvelError(
                f"monitor.alerts: unknown metric '{metric}'; use a metric table column "
                "(struct fields dotted, e.g. ks_test.pvalue)"
            )
        values = pd.to_numeric(frame[metric], errors="coerce")
        for op, threshold in cond.items():
            if op == "below":
                ok &= values < threshold
            elif op == "above":
                ok &= values > threshold
            else:
                raise MarvelError(f"monitor.alerts.{metric}: use 'below' or 'above', got '{op}'")
    return ok.fillna(False).astype(bool)


def _describe(row: Any, conds: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for metric, cond in conds.items():
        for op, threshold in cond.items():
            parts.append(f"{metric}={row[metric]:.4g} ({op} {threshold:g})")
    return ", ".join(parts)


def evaluate(
    drift: pd.DataFrame,
    profile: pd.DataFrame,
    rules: Mapping[str, Any],
    numeric: list[str],
    categorical: list[str],
    since: pd.Timestamp | None = None,
) -> list[Alert]:
    """Every alert the (flat) metric rows raise under `rules` (the `monitor.alerts` block); windows before
    `since` (the `last_windows` horizon) raise none."""
    alerts: list[Alert] = []
    per_column: Mapping[str, Any] = rules.get("columns") or {}
    drift_type = rules.get("drift_type", "BASELINE")
    d = drift[drift["drift_type"] == drift_type] if len(drift) else drift
    if since is not None and len(d):
        d = d[d["window.start"] >= since]
    for col in [*numeric, *categorical]:
        rule = (
            per_column[col]
            if col in per_column
            else rules.get("numeric" if col in numeric else "categorical")
        )
        conds = conditions(rule)
        if not conds or d.empty:
            continue
        rows = d[d["column_name"] == col]
        for _, r in rows[_mask(rows, conds)].iterrows():
            alerts.append(_alert(r, col, f"drift:{drift_type}", _describe(r, conds)))
    quality = conditions(rules.get("quality"))
    if quality and len(profile) and "log_type" in profile.columns:
        t = profile[(profile["column_name"] == TABLE_COLUMN) & (profile["log_type"] == "INPUT")]
        if since is not None:
            t = t[t["window.start"] >= since]
        for _, r in t[_mask(t, quality)].iterrows():
            alerts.append(_alert(r, TABLE_COLUMN, "quality", _describe(r, quality)))
    return sorted(alerts, key=lambda a: (a.window_start, a.column_name, a.model_id, a.slice_key or ""))


def _alert(r: pd.Series, column: str, key: str, detail: str) -> Alert:
    return Alert(
        pd.Timestamp(r["window.start"]),
        str(r["model_id"]),
        column,
        "quality" if key == "quality" else "drift",
        detail,
        None if pd.isna(r.get("slice_key")) else str(r["slice_key"]),
        None if pd.isna(r.get("slice_value")) else str(r["slice_value"]),
        key,
    )


# -- lifecycle ---------------------------------------------------------------------------------------------
def lifecycle(
    existing: pd.DataFrame,
    fired: list[Alert],
    evaluated: set[pd.Timestamp],
    step: pd.Timedelta,
    refresh: int,
    now: pd.Timestamp,
    evaluated_quality: set[pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """The alerts-table rows refresh `refresh` changes (flat, for a MERGE by `KEYS`).

    Fired and absent: opened. Fired and open: last seen now. Fired and resolved: reopened. Open, its window
    evaluated (`evaluated` for drift rules, `evaluated_quality` for quality rules: a window's drift is also
    recomputed when only the window before it changed, its profile is not), and not fired: resolved.
    Everything else is left as it is.
    """
    fired_rows = pd.DataFrame(
        [
            {
                "window.start": a.window_start,
                "slice_key": a.slice_key,
                "slice_value": a.slice_value,
                "model_id": a.model_id,
                "column_name": a.column_name,
                "rule": a.key,
                "detail": a.rule,
            }
            for a in fired
        ],
        columns=[*KEYS, "detail"],
    )
    old = existing.copy()
    key = lambda f: list(map(tuple, f[KEYS].astype(object).where(f[KEYS].notna(), None).to_numpy()))  # noqa: E731
    old.index = pd.Index(key(old), tupleize_cols=False) if len(old) else pd.Index([])
    changes: list[dict[str, Any]] = []
    fired_keys = set()
    for k, r in zip(key(fired_rows), fired_rows.to_dict("records"), strict=True):
        fired_keys.add(k)
        if k in old.index:
            prev = old.loc[[k]].iloc[0].to_dict()
            reopened = prev["status"] != "open"
            changes.append(
                {
                    **prev,
                    "detail": r["detail"],
                    "status": "open",
                    "last_seen": now,
                    "last_refresh": refresh,
                    "resolved_at": None,
                    "resolved_refresh": None,
                    "opened_refresh": refresh if reopened else prev["opened_refresh"],
                }
            )
        else:
            changes.append(
                {
                    **r,
                    "status": "open",
                    "first_seen": now,
                    "last_seen": now,
                    "resolved_at": None,
                    "first_refresh": refresh,
                    "opened_refresh": refresh,
                    "resolved_refresh": None,
                    "last_refresh": refresh,
                }
            )
    if len(old):
        quality = evaluated if evaluated_quality is None else evaluated_quality
        in_scope = np.where(
            old["rule"] == "quality",
            old["window.start"].isin(list(quality)),
            old["window.start"].isin(list(evaluated)),
        )
        gone = old[
            (old["status"] == "open")
            & in_scope
            & ~pd.Series([k in fired_keys for k in old.index], index=old.index)
        ]
        for prev in gone.to_dict("records"):
            changes.append(
                {**prev, "status": "resolved", "resolved_at": now, "resolved_refresh": refresh}
                | {"last_refresh": refresh}
            )
    out = pd.DataFrame(changes)
    if len(out):
        out["window.end"] = pd.to_datetime(out["window.start"]) + step
    return out


def counts(table: pd.DataFrame, refresh: int) -> dict[str, int]:
    """New, still open and resolved alerts of refresh `refresh`, read off the alerts table."""
    if table.empty:
        return {"new": 0, "open": 0, "resolved": 0}
    is_open = table["status"] == "open"
    return {
        "new": int((is_open & (table["opened_refresh"] == refresh)).sum()),
        "open": int((is_open & (table["opened_refresh"] != refresh)).sum()),
        "resolved": int(((table["status"] == "resolved") & (table["resolved_refresh"] == refresh)).sum()),
    }


def as_alerts(table: pd.DataFrame) -> list[Alert]:
    """Alerts-table rows as `Alert`s (for printing and the report)."""
    out = []
    for r in table.to_dict("records"):
        kind = "quality" if r["rule"] == "quality" else "drift"
        out.append(
            Alert(
                pd.Timestamp(r["window.start"]),
                str(r["model_id"]),
                str(r["column_name"]),
                kind,
                str(r["detail"]),
                None if pd.isna(r["slice_key"]) else str(r["slice_key"]),
                None if pd.isna(r["slice_value"]) else str(r["slice_value"]),
                str(r["rule"]),
            )
        )
    return sorted(out, key=lambda a: (a.window_start, a.column_name, a.model_id, a.slice_key or ""))


def summarise(alerts: list[Alert]) -> str:
    """One line per alerting column: in which windows (the stage prints this)."""
    if not alerts:
        return "no alerts"
    lines = []
    by_col: dict[tuple[str, str], list[Alert]] = {}
    for a in alerts:
        by_col.setdefault((a.column_name, a.model_id), []).append(a)
    for (col, model), items in sorted(by_col.items()):
        when = ", ".join(f"{a.window_start:%m-%d %H:%M}" for a in items[:6])
        more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
        tag = "" if model == ALL_MODELS else f" [{model}]"
        lines.append(f"{col}{tag}: {len(items)} window(s): {when}{more}")
    return "\n".join(lines)
