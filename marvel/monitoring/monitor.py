"""`LocalMonitor`: refresh the monitoring tables from the inference table, incrementally and all or nothing.

Tables (next to the inference table, named as Lakehouse Monitoring names its outputs):
`model_monitoring` (one row per scored record), `model_monitoring_profile_metrics`, `..._drift_metrics`,
`..._alerts` (each alert once, with its lifecycle), `..._baselines` (each serving model's reference
distributions, built once from its own training data) and `..._state` (the refresh log and progress marker).

A refresh reads only what is new: inference rows and labels committed since the last refresh (change data
feed), the monitoring rows of the windows they touch, and recomputes those windows (plus the next window's
consecutive drift). Nothing new, nothing written, no report rebuilt. A changed config that shapes the
metrics (columns, bins, granularity, slices, ...) rebuilds everything; changed alert rules re-evaluate every
window. `marvel.monitoring.refresh` has the commit protocol that makes a crash lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from omegaconf import DictConfig, OmegaConf

from marvel.core.cards import Card
from marvel.core.errors import MarvelError
from marvel.core.locks import exclusive, machine_lock
from marvel.core.schemas import INPUT_REQUIRED
from marvel.core.settings import Between
from marvel.core.tables import TableStore
from marvel.features.records import NUMERIC_INPUTS
from marvel.monitoring import alerts as alerting
from marvel.monitoring import report
from marvel.monitoring.baseline import BaselineBuilder
from marvel.monitoring.groups import slices
from marvel.monitoring.lake import Lake, in_windows
from marvel.monitoring.refresh import Outcome, Plan, Refresh
from marvel.monitoring.schemas import Alerts, DriftMetrics, ProfileMetrics, empty_flat, flat, flat_columns
from marvel.monitoring.stats import SMOOTHING
from marvel.monitoring.windows import parse_granularity

log = logging.getLogger(__name__)

# the model's required inputs, as the schema lists them, plus what the model answered and the label
DEFAULT_NUMERIC = [*NUMERIC_INPUTS, "probability"]
DEFAULT_CATEGORICAL = [*(c for c in INPUT_REQUIRED if c not in NUMERIC_INPUTS), "prediction", "label"]
# bump when the meaning of a metric changes: tables of another revision are rebuilt (`monitor_version`)
METRICS_REVISION = 2
REPORT_SAMPLE = 20_000  # recent records the report's distributions are drawn from


def _plain(x: Any) -> Any:
    return OmegaConf.to_container(x, resolve=True) if isinstance(x, DictConfig) else x


def _hash(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


class LocalMonitor:
    """Drift and quality from the inference table, with pandas and Delta tables on this machine."""

    def __init__(
        self,
        granularity: str = "30 minutes",
        inference_table: str = "custom_model_payload",
        monitoring_table: str = "model_monitoring",
        baseline_table: str = "train_set",
        test_table: str = "test_set",
        labels_table: str = "labels",
        quarantine_table: str = "quarantine",
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        slicing_exprs: Sequence[str] | None = None,
        bins: Annotated[int, Between(2, None)] = 10,
        max_categories: Annotated[int, Between(1, None)] = 20,
        min_count: Annotated[int, Between(1, None)] = 5,
        smoothing: Annotated[float, Between(0, None)] = SMOOTHING,
        alerts: Mapping[str, Any] | None = None,
        fail_on_alert: bool = False,
        report_windows: Annotated[int, Between(1, None)] = 6,
        report_history: Annotated[int, Between(1, None)] = 96,
        report: bool = True,
    ) -> None:
        self.granularity = str(granularity)
        self.step = parse_granularity(self.granularity)
        self.inference_table = inference_table
        self.monitoring_table = monitoring_table
        self.baseline_table = baseline_table
        self.test_table = test_table
        self.labels_table = labels_table
        self.quarantine_table = quarantine_table
        self.numeric = list(_plain(numeric) or DEFAULT_NUMERIC)
        self.categorical = list(_plain(categorical) or DEFAULT_CATEGORICAL)
        self.cuts = slices(_plain(slicing_exprs))
        self.bins = int(bins)
        self.max_categories = int(max_categories)
        self.min_count = int(min_count)
        self.smoothing = float(smoothing)
        self.rules: dict[str, Any] = dict(_plain(alerts) or {})
        alerting.check(self.rules, flat_columns(DriftMetrics), flat_columns(ProfileMetrics))
        self.fail_on_alert = bool(fail_on_alert)
        self.report_windows = int(report_windows)
        self.report_history = int(report_history)
        self.report = bool(report)
        self.revision = METRICS_REVISION
        if self.min_count < 1:
            raise MarvelError(f"monitor.min_count must be at least 1, got {min_count}")

    # table names, as Lakehouse Monitoring names its outputs after the monitored table
    @property
    def profile_table(self) -> str:
        return f"{self.monitoring_table}_profile_metrics"

    @property
    def drift_table(self) -> str:
        return f"{self.monitoring_table}_drift_metrics"

    @property
    def alerts_table_name(self) -> str:
        return f"{self.monitoring_table}_alerts"

    @property
    def baselines_table(self) -> str:
        return f"{self.monitoring_table}_baselines"

    @property
    def state_table(self) -> str:
        return f"{self.monitoring_table}_state"

    def config_hash(self) -> str:
        """What shapes the metric rows: a change rebuilds every table."""
        shape = [self.revision, self.granularity, self.numeric, self.categorical, self.bins]
        shape += [self.max_categories, self.min_count, self.smoothing, [c.key for c in self.cuts]]
        return _hash([*shape, self.baseline_table, self.test_table])

    def rules_hash(self) -> str:
        return _hash(self.rules)

    # ---------------------------------------------------------------------------------------------------
    def refresh(self, ctx: Any) -> dict[str, Any]:
        """Bring the monitoring tables up to date; returns new alerts, a summary and (locally) the report."""
        started = time.perf_counter()
        store: TableStore = ctx.store
        self.lake = Lake(store, f"marvel-monitor/{self.monitoring_table}")
        self.baselines = BaselineBuilder(
            self.lake,
            self.baselines_table,
            self.baseline_table,
            self.test_table,
            self.numeric,
            self.categorical,
            self.bins,
            self.max_categories,
            self.cuts,
            self.revision,
        )
        if not self.lake.exists(self.inference_table):
            return {
                "alerts": [],
                "summary": f"nothing to monitor: table '{self.inference_table}' does not exist yet "
                "(serve the model with stages=[deploy] or run +experiment=drift)",
                "rows_added": 0,
                "windows_refreshed": 0,
            }
        # one refresh of a monitoring table at a time: a second (a scheduler's overlapping run) would take the
        # first's uncommitted plan for a crashed one and redo it beside it, and report its alerts again
        lock = machine_lock(store.uri(self.monitoring_table))
        waiting = f"monitor: another refresh of {self.monitoring_table} is running; waiting for it to end"
        with exclusive(lock, waiting):
            return self._refresh(ctx, started)

    def _refresh(self, ctx: Any, started: float) -> dict[str, Any]:
        run_id = str(getattr(ctx, "run_id", "") or "")
        outcomes: list[Outcome] = []
        pending = self.pending()
        if pending is not None:
            log.warning("monitor: resuming refresh %d, interrupted before it committed", pending.refresh)
            outcomes.append(Refresh(self, pending, run_id or f"refresh-{pending.refresh}").run())
        plan = self.plan()
        if plan is not None:
            self.lake.write(
                self.state_table,
                pa.Table.from_pandas(plan.row("planned"), preserve_index=False),
                plan.refresh,
                mode="overwrite" if self._legacy_state() else "append",
                check=False,
            )
            outcomes.append(Refresh(self, plan, run_id or f"refresh-{plan.refresh}").run())
        return self._result(ctx, outcomes, pending is not None, started)

    # -- planning ---------------------------------------------------------------------------------------
    def _legacy_state(self) -> bool:
        """A state table from before the refresh log (an older marvel): rebuilt on the next refresh."""
        return self.lake.exists(self.state_table) and "refresh" not in self.lake.columns(self.state_table)

    def _state(self) -> pd.DataFrame:
        if not self.lake.exists(self.state_table) or self._legacy_state():
            return pd.DataFrame(columns=["refresh", "status"])
        return self.lake.read(self.state_table).to_pandas().sort_values(["refresh", "status"])

    def pending(self) -> Plan | None:
        """The plan of a refresh that started and never committed, if the last one did not."""
        state = self._state()
        if state.empty:
            return None
        last = state[state["refresh"] == state["refresh"].max()]
        if (last["status"] == "committed").any():
            return None
        return self._from_row(last.iloc[0], state)

    def _from_row(self, row: pd.Series, state: pd.DataFrame) -> Plan:
        before = state[(state["status"] == "committed") & (state["refresh"] < row["refresh"])]
        prev_rules = before.iloc[-1]["rules_hash"] if len(before) else None
        return Plan(
            refresh=int(row["refresh"]),
            planned_at=pd.Timestamp(row["planned_at"]),
            full=bool(row["full"]),
            payload_from=int(row["payload_from"]),
            payload_to=int(row["payload_to"]),
            labels_from=int(row["labels_from"]),
            labels_to=int(row["labels_to"]),
            config_hash=str(row["config_hash"]),
            rules_hash=str(row["rules_hash"]),
            rules_changed=prev_rules is not None and prev_rules != row["rules_hash"],
        )

    def plan(self) -> Plan | None:
        """What the next refresh reads, or None when nothing changed since the last one."""
        state = self._state()
        done = state[state["status"] == "committed"] if len(state) else state
        last = done.iloc[-1] if len(done) else None
        payload_to = self.lake.version(self.inference_table)
        labels_to = self.lake.version(self.labels_table)
        config, rules = self.config_hash(), self.rules_hash()
        full = (
            last is None
            or last["config_hash"] != config
            or not self.lake.exists(self.monitoring_table)
            or payload_to < int(last["payload_to"])
            or labels_to < int(last["labels_to"])
        )
        if last is not None and not full:
            same = payload_to == int(last["payload_to"]) and labels_to == int(last["labels_to"])
            if same and last["rules_hash"] == rules:
                return None
        return Plan(
            refresh=int(state["refresh"].max()) + 1 if len(state) else 1,
            planned_at=pd.Timestamp.now(tz="UTC").tz_localize(None).floor("ms"),
            full=full,
            payload_from=-1 if full or last is None else int(last["payload_to"]),
            payload_to=payload_to,
            labels_from=-1 if full or last is None else int(last["labels_to"]),
            labels_to=labels_to,
            config_hash=config,
            rules_hash=rules,
            rules_changed=last is not None and last["rules_hash"] != rules,
        )

    # -- reading back -----------------------------------------------------------------------------------
    def alerts_table(self) -> pd.DataFrame:
        if not self.lake.exists(self.alerts_table_name):
            return empty_flat(Alerts)
        return flat(self.lake.read(self.alerts_table_name))

    def metric_tables(self, since: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(profile, drift) rows, flat; from window `since` on when given."""
        where = None if since is None else ds.field("window", "start") >= pa.scalar(since, pa.timestamp("us"))
        out = []
        for name in (self.profile_table, self.drift_table):
            if self.lake.exists(name):
                out.append(flat(self.lake.read(name, where=where)))
            else:
                out.append(pd.DataFrame(columns=["window.start", "column_name", "model_id"]))
        return out[0], out[1]

    def windows(self) -> list[pd.Timestamp]:
        if not self.lake.exists(self.profile_table):
            return []
        starts = self.lake.read(self.profile_table, columns=["window"]).column("window").combine_chunks()
        found = pd.unique(starts.field("start").to_numpy(zero_copy_only=False))
        return sorted(pd.Timestamp(w) for w in found)

    def alert_horizon(self) -> pd.Timestamp | None:
        last = self.rules.get("last_windows")
        if not last:
            return None
        wins = self.windows()
        return wins[-1] - self.step * (int(last) - 1) if wins else None

    # -- the result -------------------------------------------------------------------------------------
    def _result(self, ctx: Any, outcomes: list[Outcome], resumed: bool, started: float) -> dict[str, Any]:
        total = Outcome()
        for o in outcomes:
            for name in ("rows_added", "rows_quarantined", "labels_read", "labels_applied"):
                setattr(total, name, getattr(total, name) + getattr(o, name))
            for name in ("labels_duplicated", "labels_unknown", "windows_refreshed", "alerts_resolved"):
                setattr(total, name, getattr(total, name) + getattr(o, name))
            total.new_alerts += o.new_alerts
            total.notes += o.notes
            for k, v in o.timings.items():
                total.timings[k] = round(total.timings.get(k, 0.0) + v, 3)
        table = self.alerts_table()
        open_now = table[table["status"] == "open"] if len(table) else table
        new_keys = {(a.window_start, a.column_name, a.model_id, a.slice_key, a.key) for a in total.new_alerts}
        still_open = len(open_now) - len(new_keys)
        windows = self.windows()
        summary = self._summary(total, len(windows), still_open, resumed, not outcomes)
        result: dict[str, Any] = {
            "alerts": total.new_alerts,
            "alert_lines": [a.line() for a in total.new_alerts],
            "summary": summary,
            "rows_added": total.rows_added,
            "windows": len(windows),
            "windows_refreshed": total.windows_refreshed,
            "alerts_open": still_open,
            "alerts_resolved": total.alerts_resolved,
            "rows_quarantined": total.rows_quarantined,
            "notes": total.notes,
            "details": alerting.summarise(total.new_alerts),
            "tables": [self.monitoring_table, self.profile_table, self.drift_table, self.alerts_table_name],
            "rebuilt": any(o.full for o in outcomes),
        }
        wanted = self.report and getattr(ctx, "out_dir", None) is not None
        if wanted and any(o.changed for o in outcomes) and windows:
            tick = time.perf_counter()
            result["card"] = self._report(ctx, windows, open_now, result)
            total.timings["report"] = round(time.perf_counter() - tick, 3)
        result["timings"] = total.timings
        result["seconds"] = time.perf_counter() - started
        return result

    @staticmethod
    def _summary(o: Outcome, windows: int, still_open: int, resumed: bool, noop: bool) -> str:
        if noop:
            head = f"nothing new; {windows} window(s)"
        else:
            head = f"{windows} window(s), +{o.rows_added} row(s), {o.windows_refreshed} recomputed"
        parts = [
            head,
            f"alerts: {len(o.new_alerts)} new, {still_open} still open, {o.alerts_resolved} resolved",
        ]
        if o.rows_quarantined:
            parts.append(f"{o.rows_quarantined} request(s) scored nothing (quarantined with the reason)")
        if o.labels_read:
            line = f"labels: {o.labels_read} read, {o.labels_applied} applied"
            if o.labels_duplicated:
                line += f", {o.labels_duplicated} id(s) labelled more than once (latest wins)"
            if o.labels_unknown:
                line += f", {o.labels_unknown} for ids not monitored (yet)"
            parts.append(line)
        if resumed:
            parts.append("resumed an interrupted refresh")
        return "; ".join(parts)

    def _report(self, ctx: Any, windows: list[pd.Timestamp], open_now: pd.DataFrame, result: dict) -> Card:
        since = windows[-1] - self.step * (self.report_history - 1)
        profile_df, drift_df = self.metric_tables(since)
        recent_w = windows[-self.report_windows :]
        where = in_windows("timestamp", recent_w, self.step)
        used = list(dict.fromkeys(["timestamp", "model_id", *self.numeric, *self.categorical]))
        recent = self.lake.read(self.monitoring_table, columns=used, where=where)
        if recent.num_rows > REPORT_SAMPLE:  # plotted distributions: every k-th row is as good as all
            recent = recent.take(list(range(0, recent.num_rows, recent.num_rows // REPORT_SAMPLE + 1)))
        recent = recent.to_pandas()
        model = _newest_model(recent)
        found = self.baselines.cached([model]) if model else {}
        baseline = found[model].slices.get((None, None)) if model in found else None
        facts = {
            "inference table": f"{self.inference_table} (v{self.lake.version(self.inference_table)})",
            "baseline": (
                f"{model}: {', '.join(sorted(set(baseline.source.values())))}" if baseline else "none"
            ),
            "granularity": self.granularity,
            "windows": result["windows"],
            "rows added by this refresh": result.get("rows_added", 0),
            "windows recomputed": result.get("windows_refreshed", 0),
            "alerts open": len(open_now),
            "recent = last windows": len(recent_w),
        }
        drift_type = self.rules.get("drift_type", "BASELINE")
        return report.build(
            ctx.out_dir,
            profile_df,
            drift_df,
            alerting.as_alerts(open_now),
            baseline,
            recent,
            self.numeric,
            self.categorical,
            facts,
            drift_type,
        )


def _newest_model(recent: pd.DataFrame) -> str | None:
    """The model that answered the newest record (its baseline is the one the report plots)."""
    if recent.empty:
        return None
    return str(recent.sort_values("timestamp")["model_id"].iloc[-1])
