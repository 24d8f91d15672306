"""What stages hand each other and the run summary: typed results, one dataclass per stage.

A stage returns its result; the engine keeps it in `RunResult`, where later stages of the same run find it
(`ctx.results.process.versions` tells `train` exactly which table versions this run's processing wrote).
Each result says in `lines()` what the run summary prints for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from marvel.core.metrics import METRICS
from marvel.core.sources import Lineage


@dataclass(frozen=True)
class RowCounts:
    """rows_raw = rows_quarantined + rows_train + rows_test, checked where it is made."""

    rows_raw: int
    rows_quarantined: int
    rows_train: int
    rows_test: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"rows: raw {self.rows_raw} = quarantined {self.rows_quarantined} + train {self.rows_train} "
            f"+ test {self.rows_test}"
        )


@dataclass(frozen=True)
class TableVersions:
    """The versions one processing wrote (quarantine -1: none yet)."""

    raw: int
    train_set: int
    test_set: int
    quarantine: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class StageResult:
    summary: str = ""  # one line; the run summary prints it as "<stage>: <summary>"

    def lines(self) -> list[str]:
        """What the run summary shows of this stage above the one-line summaries (rows, metrics, ...)."""
        return []


@dataclass
class ProcessResult(StageResult):
    rows: RowCounts = field(default_factory=lambda: RowCounts(0, 0, 0, 0))
    versions: TableVersions = field(default_factory=lambda: TableVersions(-1, -1, -1, -1))
    lineage: Lineage | None = None
    reused_from: str | None = None

    def lines(self) -> list[str]:
        return [self.rows.line()]


@dataclass
class CVResult(StageResult):
    """`train.mode=cv` (a sweep job): metrics on validation folds of the training rows only."""

    rows: RowCounts | None = None
    cv: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [self.rows.line()] if self.rows is not None else []


@dataclass
class Promotion:
    """The registry's verdict on a new model."""

    basic_name: str
    custom_name: str
    basic_version: str
    custom_version: str
    alias: str
    metric: str
    promoted: bool
    champion_version: str | None
    champion_metric: float
    reason: str = ""
    unchanged: bool = False  # an identical config on identical data: nothing was registered


@dataclass
class TrainResult(StageResult):
    rows: RowCounts | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    promotion: Promotion | None = None

    @property
    def promoted(self) -> bool:
        return bool(self.promotion and self.promotion.promoted)

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.rows is not None:
            out.append(self.rows.line())
        out.append(f"{'metric':<10} {'model':>8} {'baseline':>9}")
        for m in METRICS:
            out.append(f"{m:<10} {self.metrics[m]:>8.4f} {self.baseline[m]:>9.4f}")
        p = self.promotion
        if p is not None:
            out.append(p.reason)
            out.append(
                f"models: {p.basic_name} v{p.basic_version}, {p.custom_name} v{p.custom_version}"
                + (f" (alias {p.alias})" if p.promoted else "")
            )
        return out


@dataclass
class ScoreResult(StageResult):
    rows: int = 0
    model_version: str = ""
    table_version: int = -1


@dataclass
class DeployResult(StageResult):
    endpoint: Any = None  # LocalEndpoint | DatabricksEndpoint: running or stopped, `describe()`-able
    url: str = ""
    invocations_url: str = ""
    served_entities: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorResult(StageResult):
    alerts: list[Any] = field(default_factory=list)  # alerts new in this refresh
    alert_lines: list[str] = field(default_factory=list)
    rows_added: int = 0
    windows: int = 0
    windows_refreshed: int = 0
    alerts_open: int = 0  # opened by earlier refreshes and still open
    alerts_resolved: int = 0  # resolved by this refresh
    rows_quarantined: int = 0
    notes: list[str] = field(default_factory=list)  # one line each: what the refresh could not do
    report: str | None = None  # None when nothing changed (no report rebuilt)
    details: dict[str, Any] = field(default_factory=dict)  # whatever else the monitor reported


@dataclass
class SimulateResult(StageResult):
    requests: int = 0
    failed: int = 0
    labels: int = 0
    windows: int = 0
    first_window: Any = None
    drift_start: Any = None


@dataclass
class RunResult:
    """Every stage's result by name, in the order they ran, plus the run's id and duration."""

    stages: list[str]
    results: dict[str, StageResult] = field(default_factory=dict)
    run_id: str = ""
    seconds: float = 0.0
    dry_run: bool = False

    def _get(self, name: str, kind: type[StageResult]) -> Any:
        found = self.results.get(name)
        return found if isinstance(found, kind) else None

    @property
    def process(self) -> ProcessResult | None:
        return self._get("process", ProcessResult)

    @property
    def train(self) -> TrainResult | CVResult | None:
        return self._get("train", TrainResult) or self._get("train", CVResult)

    @property
    def deploy(self) -> DeployResult | None:
        return self._get("deploy", DeployResult)

    @property
    def monitor(self) -> MonitorResult | None:
        return self._get("monitor", MonitorResult)

    @property
    def score(self) -> ScoreResult | None:
        return self._get("score", ScoreResult)

    @property
    def simulate(self) -> SimulateResult | None:
        return self._get("simulate", SimulateResult)

    def summary(self) -> str:
        """The one summary a run prints: rows once, each stage's lines, then each stage's one-liner."""
        lines = [f"marvel run {self.run_id} ({', '.join(self.stages)}) in {self.seconds:.1f}s"]
        shown_rows = False
        for result in self.results.values():
            for line in result.lines():
                if line.startswith("rows: "):
                    if shown_rows:  # process and train speak of the same rows: say it once
                        continue
                    shown_rows = True
                lines.append(f"  {line}")
        lines += [f"  {name}: {r.summary}" for name, r in self.results.items() if r.summary]
        return "\n".join(lines)
