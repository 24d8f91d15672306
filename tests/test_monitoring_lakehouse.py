"""The metric tables speak Lakehouse Monitoring: its documented columns with its types, SQL written for a
Databricks monitor runs on them, slices from config."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from deltalake import DeltaTable, QueryBuilder
from monitoring_helpers import STEP, T0, ctx, monitor, scorer, table, use_registry

from marvel.core.errors import MarvelError
from marvel.core.tables import DeltaTableStore
from marvel.monitoring.payload import synthetic_stream
from marvel.monitoring.schemas import OURS, DriftMetrics, ProfileMetrics, arrow_schema, spark_type

DOCUMENTED = yaml.safe_load((Path(__file__).parent / "data" / "lakehouse_metric_columns.yaml").read_text())


@pytest.mark.parametrize(
    ("model", "kind"), [(ProfileMetrics, "profile_metrics"), (DriftMetrics, "drift_metrics")]
)
def test_metric_tables_have_every_documented_column_with_its_type(model, kind: str) -> None:
    ours = {f.name: spark_type(f.type) for f in arrow_schema(model)}
    for column, documented in DOCUMENTED[kind].items():
        assert column in ours, f"{kind}: documented column {column} is missing"
        assert ours[column] == documented, f"{kind}.{column}: ours {ours[column]}, documented {documented}"
    for column in DOCUMENTED.get(f"{kind}_unconfirmed", []):
        assert column in ours, f"{kind}: documented column {column} is missing"
    # anything of our own is named so that a column Databricks adds later cannot collide with it
    extra = set(ours) - set(DOCUMENTED[kind]) - set(DOCUMENTED.get(f"{kind}_unconfirmed", []))
    assert all(c.startswith(OURS) for c in extra), sorted(c for c in extra if not c.startswith(OURS))


def test_the_documented_list_has_what_dashboards_query() -> None:
    assert "window_start" not in DOCUMENTED["drift_metrics"]
    assert DOCUMENTED["drift_metrics"]["ks_test"] == "struct<statistic: double, pvalue: double>"
    assert DOCUMENTED["profile_metrics"]["window"] == "struct<start: timestamp, end: timestamp>"


@pytest.fixture
def refreshed(trained: Path) -> DeltaTableStore:
    use_registry(trained)
    store = DeltaTableStore(trained / "lake")
    clean, _ = synthetic_stream(2, 200, T0, STEP, scorer=scorer("1"), seed=21)
    drifted, _ = synthetic_stream(
        2,
        200,
        T0 + STEP * 2,
        STEP,
        first_partition=2,
        scorer=scorer("1"),
        seed=21,
        drift={"height_scale": 2.0},
    )
    store.write("custom_model_payload", clean)
    store.write("custom_model_payload", drifted, mode="append")
    monitor(slicing_exprs=["Universe = 'Earth-616'"]).refresh(ctx(store))
    return store


def test_dashboard_sql_written_for_lakehouse_tables_runs_on_ours(refreshed: DeltaTableStore) -> None:
    q = QueryBuilder()
    q.register("drift", DeltaTable(refreshed.uri("model_monitoring_drift_metrics")))
    q.register("profile", DeltaTable(refreshed.uri("model_monitoring_profile_metrics")))
    drifted = pa.table(
        q.execute(
            "SELECT window.start AS start, ks_test.pvalue AS p FROM drift WHERE column_name = 'Height' "
            "AND drift_type = 'BASELINE' AND slice_key IS NULL AND ks_test.pvalue < 0.005 ORDER BY start"
        ).read_all()
    )
    assert drifted.column("start").to_pylist() == [T0 + STEP * 2, T0 + STEP * 3]
    counts = pa.table(
        q.execute(
            "SELECT window.start AS start, count FROM profile WHERE column_name = ':table' "
            "AND slice_key IS NULL AND model_id = ':all' AND log_type = 'INPUT' ORDER BY start"
        ).read_all()
    )
    assert counts.column("count").to_pylist() == [200] * 4


def test_slices_from_config_get_their_own_rows(refreshed: DeltaTableStore) -> None:
    prof = table(refreshed, "model_monitoring_profile_metrics")
    rows = prof[(prof["column_name"] == ":table") & (prof["window.start"] == T0)]
    by_slice = {(r["slice_key"], r["slice_value"]): r["count"] for _, r in rows.iterrows()}
    whole = by_slice.pop((None, None))
    assert set(by_slice) == {("Universe = 'Earth-616'", "true"), ("Universe = 'Earth-616'", "false")}
    assert sum(by_slice.values()) == whole
    universe = prof[(prof["column_name"] == "Universe") & (prof["slice_value"] == "true")]
    assert all(len(items) == 1 and items[0]["item"] == "Earth-616" for items in universe["frequent_items"])
    drift = table(refreshed, "model_monitoring_drift_metrics")
    sliced = drift[(drift["slice_value"] == "true") & (drift["drift_type"] == "BASELINE")]
    assert set(sliced["marvel_baseline"].dropna()) == {"train_set@v0", "test_set@v0 model answers"}


def test_a_bad_slicing_expression_says_what_to_write(trained: Path) -> None:
    use_registry(trained)
    store = DeltaTableStore(trained / "lake")
    payload, _ = synthetic_stream(1, 50, T0, STEP)
    store.write("custom_model_payload", payload)
    with pytest.raises(MarvelError, match=r"monitor\.slicing_exprs: cannot evaluate 'Planet = 3'"):
        monitor(slicing_exprs=["Planet = 3"]).refresh(ctx(store))
