"""One refresh, all or nothing: a plan pinned in the state table, every table written once, the marker last.

1. A `planned` row in `<monitoring>_state` pins what the refresh reads: inference table versions
   (payload_from, payload_to], labels versions (labels_from, labels_to], the config and rules hashes.
2. Writes, each carrying Delta's app transaction (app_id, refresh), in this order: quarantine (requests that
   scored nothing, label rows that fail their contract), model_monitoring (append; overwrite on a rebuild),
   its labels (MERGE on the windows they touch), baselines (new model versions), profile metrics and drift
   metrics (MERGE per window), alerts (MERGE by key).
3. A `committed` row: the progress marker, written only after every table has committed.

A crash anywhere leaves a `planned` row without its `committed` row; the next refresh resumes that plan with
the same pinned versions, skips every write the crashed one committed (the table already carries its
transaction) and recomputes everything else from the tables, so it ends where an uninterrupted refresh would.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from marvel.core.quarantine import record_json
from marvel.core.schemas import Quarantine
from marvel.monitoring import alerts as alerting
from marvel.monitoring.baseline import BaselineBuilder, Missing, ModelBaseline, by_key
from marvel.monitoring.drift import drift
from marvel.monitoring.groups import Slice
from marvel.monitoring.labels import lookup, new_labels
from marvel.monitoring.lake import Lake, in_windows
from marvel.monitoring.parse import split_payload
from marvel.monitoring.profile import profile
from marvel.monitoring.schemas import (
    Alerts,
    DriftMetrics,
    ModelMonitoring,
    MonitorState,
    ProfileMetrics,
    arrow_schema,
    empty_flat,
    flat,
    nest,
)
from marvel.monitoring.windows import window_start


class Monitor(Protocol):
    """What a refresh reads off the monitor that runs it (`LocalMonitor`)."""

    inference_table: str
    monitoring_table: str
    labels_table: str
    quarantine_table: str
    granularity: str
    step: pd.Timedelta
    numeric: list[str]
    categorical: list[str]
    cuts: list[Slice]
    min_count: int
    smoothing: float
    max_categories: int
    revision: int
    rules: dict[str, Any]
    lake: Lake
    baselines: BaselineBuilder

    @property
    def profile_table(self) -> str: ...
    @property
    def drift_table(self) -> str: ...
    @property
    def alerts_table_name(self) -> str: ...
    @property
    def state_table(self) -> str: ...
    def metric_tables(self, since: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]: ...
    def alerts_table(self) -> pd.DataFrame: ...
    def alert_horizon(self) -> pd.Timestamp | None: ...


log = logging.getLogger(__name__)
VALIDATE_SAMPLE = 5_000  # parse sets every dtype; pandera checks values on a sample
PROFILE_KEYS = ["window.start", "log_type", "slice_key", "slice_value", "model_id", "column_name"]
DRIFT_KEYS = ["window.start", "drift_type", "slice_key", "slice_value", "model_id", "column_name"]


@dataclass(frozen=True)
class Plan:
    refresh: int
    planned_at: pd.Timestamp
    full: bool
    payload_from: int
    payload_to: int
    labels_from: int
    labels_to: int
    config_hash: str
    rules_hash: str
    rules_changed: bool = False

    def row(self, status: str, **counts: int) -> pd.DataFrame:
        names = ["rows_added", "rows_quarantined", "labels_applied", "windows_refreshed"]
        names += ["alerts_new", "alerts_resolved"]
        row: dict[str, Any] = {
            "refresh": self.refresh,
            "status": status,
            "planned_at": self.planned_at,
            "full": self.full,
            "payload_from": self.payload_from,
            "payload_to": self.payload_to,
            "labels_from": self.labels_from,
            "labels_to": self.labels_to,
            "config_hash": self.config_hash,
            "rules_hash": self.rules_hash,
            **{n: int(counts.get(n, 0)) for n in names},
        }
        return MonitorState.validate(pd.DataFrame([row]))


@dataclass
class Outcome:
    rows_added: int = 0
    rows_quarantined: int = 0
    labels_read: int = 0
    labels_applied: int = 0
    labels_duplicated: int = 0
    labels_unknown: int = 0
    windows_refreshed: int = 0
    alerts_new: int = 0
    alerts_open: int = 0
    alerts_resolved: int = 0
    new_alerts: list[alerting.Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    full: bool = False

    @property
    def changed(self) -> bool:
        alerts = self.alerts_new or self.alerts_resolved
        return bool(self.rows_added or self.labels_applied or self.windows_refreshed or alerts)


class Refresh:
    """Carries out one `Plan` for a monitor."""

    def __init__(self, monitor: Monitor, plan: Plan, run_id: str) -> None:
        self.m, self.plan, self.run_id = monitor, plan, run_id
        self.lake = monitor.lake
        self.out = Outcome(full=plan.full)
        self._t = time.perf_counter()

    def _tick(self, name: str) -> None:
        now = time.perf_counter()
        self.out.timings[name] = round(self.out.timings.get(name, 0.0) + now - self._t, 3)
        self._t = now

    def run(self) -> Outcome:
        m, p, lake = self.m, self.plan, self.lake
        payload = lake.changes(m.inference_table, p.payload_from, p.payload_to)
        self._tick("read_payload")
        rows, failed = split_payload(payload)
        rows = rows.drop_duplicates(["databricks_request_id", "record_index"], ignore_index=True)
        rows = ModelMonitoring.validate(rows, sample=min(len(rows), VALIDATE_SAMPLE), random_state=0)
        self._tick("parse")
        labels = new_labels(lake, m.labels_table, p.labels_from, p.labels_to, self.run_id, p.planned_at)
        self._quarantine(payload, failed, labels.quarantined)
        known = lookup(lake, m.labels_table, p.labels_to, rows["Id"].tolist())
        rows["label"] = rows["Id"].map(known.set_index("Id")["label"]).astype(float)
        self.out.rows_added, self.out.labels_read = len(rows), labels.rows
        self.out.labels_duplicated = labels.duplicated
        self._tick("labels")

        if p.full:
            lake.write(
                m.monitoring_table, pa.Table.from_pandas(rows, preserve_index=False), p.refresh, "overwrite"
            )
        elif len(rows) and not lake.done(m.monitoring_table, p.refresh):
            rows = self._unseen(rows)
            self.out.rows_added = len(rows)
            if len(rows):
                lake.write(m.monitoring_table, pa.Table.from_pandas(rows, preserve_index=False), p.refresh)
        wins = window_start(rows["timestamp"], m.step)
        affected = set(wins.unique())
        if p.full:
            matched = labels.winners["Id"].isin(rows["Id"])
            self.out.labels_applied = int(rows["label"].notna().sum())
        else:
            matched, label_windows = self._apply_labels(labels.winners)
            affected |= label_windows
            self.out.labels_applied = int(matched.sum())
        self.out.labels_unknown = int((~matched).sum())
        self._tick("monitoring_table")

        data = rows.assign(window_start=wins) if p.full else self._read_windows(affected)
        present = set(data["window_start"].unique())
        profile_windows = sorted(w for w in affected if w in present)
        drift_windows = sorted(w for w in affected | {w + m.step for w in affected} if w in present)
        self.out.windows_refreshed = len(set(profile_windows) | set(drift_windows))
        self._tick("read_windows")

        in_drift = data["window_start"].isin(drift_windows)
        baselines = self._baselines(set(data.loc[in_drift, "model_id"]))
        self._tick("baselines")
        version = lake.version(m.monitoring_table)
        prof = profile(
            data[data["window_start"].isin(profile_windows)],
            m.numeric,
            m.categorical,
            m.step,
            m.cuts,
            {k: b.accuracy for k, b in baselines.items()},
        ).assign(logging_table_commit_version=version)
        self._tick("profile")
        dr = drift(
            data,
            drift_windows,
            by_key(baselines),
            m.numeric,
            m.categorical,
            m.step,
            m.cuts,
            m.min_count,
            m.smoothing,
            m.max_categories,
        )
        self._tick("drift")
        for frame in (prof, dr):
            frame["granularity"], frame["monitor_version"] = m.granularity, m.revision
        mode = "overwrite" if p.full else "merge"
        prof = self._metrics(m.profile_table, prof, ProfileMetrics, profile_windows, PROFILE_KEYS, mode)
        dr = self._metrics(m.drift_table, dr, DriftMetrics, drift_windows, DRIFT_KEYS, mode)
        self._tick("write_metrics")

        evaluated, quality = set(drift_windows), set(profile_windows)
        if p.rules_changed and not p.full:
            prof, dr = m.metric_tables()
            evaluated = quality = set(prof["window.start"]) if len(prof) else set()
        self._alerts(prof, dr, evaluated, quality)
        self._tick("alerts")
        row = p.row(
            "committed",
            rows_added=self.out.rows_added,
            rows_quarantined=self.out.rows_quarantined,
            labels_applied=self.out.labels_applied,
            windows_refreshed=self.out.windows_refreshed,
            alerts_new=self.out.alerts_new,
            alerts_resolved=self.out.alerts_resolved,
        )
        lake.write(m.state_table, pa.Table.from_pandas(row, preserve_index=False), p.refresh, check=False)
        self._tick("state")
        return self.out

    # -- steps ------------------------------------------------------------------------------------------
    def _quarantine(self, payload: pd.DataFrame, failed: pd.DataFrame, bad_labels: pd.DataFrame) -> None:
        m, p = self.m, self.plan
        source = payload.reset_index(drop=True)
        rows = pd.DataFrame(
            {
                "run_id": self.run_id,
                "stage": "monitor",
                "table": m.inference_table,
                "row_index": failed["position"].astype("int64"),
                "reason": failed["reason"].astype(str),
                "record": [record_json(source.iloc[int(i)]) for i in failed["position"]],
                "quarantined_at": p.planned_at,
            },
            columns=list(Quarantine.to_schema().columns),
        )
        both = pd.concat([rows, bad_labels.assign(run_id=self.run_id)], ignore_index=True)
        self.out.rows_quarantined = len(rows)
        if len(bad_labels):
            self.out.notes.append(f"{len(bad_labels)} label row(s) fail the Labels contract: quarantined")
        if len(both):
            table = pa.Table.from_pandas(Quarantine.validate(both), preserve_index=False)
            self.lake.write(m.quarantine_table, table, p.refresh)

    def _unseen(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows whose request is not in the monitoring table yet: an inference row logged twice (a serving
        journal replayed after a crash) is counted once. Looked up in the windows of `rows` only."""
        m = self.m
        wins = window_start(rows["timestamp"], m.step)
        where = in_windows("timestamp", sorted(wins.unique()), m.step)
        ids = rows["databricks_request_id"].unique().tolist()
        if where is None or not self.lake.exists(m.monitoring_table):
            return rows
        seen = self.lake.read(
            m.monitoring_table,
            columns=["databricks_request_id"],
            where=where,
            match=("databricks_request_id", ids),
        )
        if not seen.num_rows:
            return rows
        known = set(seen.column("databricks_request_id").to_pylist())
        return rows[~rows["databricks_request_id"].isin(known)].reset_index(drop=True)

    def _apply_labels(self, winners: pd.DataFrame) -> tuple[pd.Series, set[pd.Timestamp]]:
        """MERGE the winning labels into the monitoring rows they belong to; (matched?, windows touched).

        The windows are those of every row an Id names, whether its label changed or not, so a rerun after
        the MERGE committed recomputes exactly the windows the crashed refresh would have."""
        m, p = self.m, self.plan
        if winners.empty or not self.lake.exists(m.monitoring_table):
            return pd.Series(False, index=winners.index), set()
        ids = winners["Id"].tolist()
        hits = self.lake.read(m.monitoring_table, columns=["Id", "timestamp"], match=("Id", ids)).to_pandas()
        matched = winners["Id"].isin(hits["Id"])
        if not len(hits):
            return matched, set()
        wins = window_start(pd.to_datetime(hits["timestamp"]), m.step)
        source = pa.Table.from_pandas(winners[matched].reset_index(drop=True), preserve_index=False)
        self.lake.set_labels(m.monitoring_table, source, wins.min(), wins.max() + m.step, p.refresh)
        return matched, set(wins.unique())

    def _read_windows(self, affected: set[pd.Timestamp]) -> pd.DataFrame:
        """The monitoring rows of `affected` windows and of the windows either side (consecutive drift)."""
        m = self.m
        needed = affected | {w - m.step for w in affected} | {w + m.step for w in affected}
        where = in_windows("timestamp", sorted(needed), m.step)
        if where is None or not self.lake.exists(m.monitoring_table):
            return empty_monitoring()
        data = self.lake.read(m.monitoring_table, where=where).to_pandas()
        data["timestamp"] = pd.to_datetime(data["timestamp"]).astype("datetime64[ns]")
        data = data.sort_values(["timestamp", "databricks_request_id", "record_index"], ignore_index=True)
        return data.assign(window_start=window_start(data["timestamp"], m.step))

    def _baselines(self, models: set[str]) -> dict[str, ModelBaseline]:
        b = self.m.baselines
        found = b.cached(models)
        built = []
        for model_id in sorted(models - set(found)):
            try:
                built.append(b.build(model_id))
            except Missing as why:
                self.out.notes.append(f"no baseline for {why}; BASELINE drift of its windows is skipped")
                log.warning("monitor: no baseline for %s", why)
        b.save(built, self.plan.planned_at, self.plan.refresh)
        found.update({mb.model_id: mb for mb in built})
        return found

    def _metrics(
        self,
        name: str,
        frame: pd.DataFrame,
        model: Any,
        windows: list[pd.Timestamp],
        keys: list[str],
        mode: str,
    ) -> pd.DataFrame:
        """Write the rows of `windows`; returns them as the table holds them (flat), for the alert rules."""
        p = self.plan
        if frame.empty:
            if mode == "overwrite":  # a rebuild with no rows left: an empty table
                self.lake.write(name, arrow_schema(model).empty_table(), p.refresh, "overwrite")
            return empty_flat(model)
        table = nest(frame.sort_values(keys, kind="stable", na_position="first"), model)
        if mode == "overwrite":
            self.lake.write(name, table, p.refresh, "overwrite")
        elif windows:
            self.lake.replace_windows(name, table, windows, keys, p.refresh)
        return flat(table)

    def _alerts(
        self, prof: pd.DataFrame, dr: pd.DataFrame, evaluated: set[pd.Timestamp], quality: set[pd.Timestamp]
    ) -> None:
        m, p = self.m, self.plan
        since = m.alert_horizon()
        fired = alerting.evaluate(dr, prof, m.rules, m.numeric, m.categorical, since)
        existing = m.alerts_table()
        changes = alerting.lifecycle(existing, fired, evaluated, m.step, p.refresh, p.planned_at, quality)
        if len(changes) or not self.lake.exists(m.alerts_table_name):  # the table exists, alerts or not
            self.lake.upsert(m.alerts_table_name, nest(changes, Alerts), alerting.KEYS, p.refresh)
        after = m.alerts_table()
        found = alerting.counts(after, p.refresh)
        self.out.alerts_new, self.out.alerts_open = found["new"], found["open"]
        self.out.alerts_resolved = found["resolved"]
        if len(after):
            new = after[(after["status"] == "open") & (after["opened_refresh"] == p.refresh)]
            self.out.new_alerts = alerting.as_alerts(new)


def empty_monitoring() -> pd.DataFrame:
    rows = ModelMonitoring.to_schema().coerce_dtype(
        pd.DataFrame(columns=list(ModelMonitoring.to_schema().columns))
    )
    return rows.assign(window_start=pd.Series(dtype="datetime64[ns]"))
