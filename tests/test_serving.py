"""Serving, end to end: a real model trained once for the module, real endpoints on ephemeral ports, real
HTTP, and the inference table read back from the Delta lake."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from hydra.utils import instantiate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_kit import ENDPOINT, CliServer, config, home_with_challenger, post, serve, table

from marvel.core.compute import PandasCompute
from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.schemas import INPUT_REQUIRED, MAX_HEIGHT_M
from marvel.core.tracking import configure
from marvel.core.variants import Variant
from marvel.serving.client import Client, ServingError
from marvel.serving.deployer import LocalDeployer, LocalEndpoint
from marvel.serving.examples import RAW_EXAMPLE, SOURCE_EXAMPLE
from marvel.serving.routing import Router

# the source platform's example request, verbatim, and a record with the Kaggle file's values
EXAMPLE = {"dataframe_records": [SOURCE_EXAMPLE]}
RAW = RAW_EXAMPLE
LABELS = {"alive", "dead"}


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MARVEL_HOME with a trained, registered model (v1, alias latest-model: a copy of the session's trained
    home) and a second version of the custom model at alias challenger, so the A/B variants are different
    versions."""
    return home_with_challenger(trained_home, tmp_path_factory.mktemp("serving") / "marvel_home")


@pytest.fixture(scope="module")
def endpoint(home: Path) -> Iterator[LocalEndpoint]:
    with serve(
        home,
        "deploy.inference_table=payload_main",
        "deploy.max_batch_records=50",
        "deploy.max_body_bytes=65536",
        "deploy.flush.max_seconds=0.2",
    ) as ep:
        yield ep


# -- payload formats ---------------------------------------------------------------------------------------
def test_source_example_answers_in_the_source_shape(endpoint: LocalEndpoint) -> None:
    r = post(endpoint.invocations_url, EXAMPLE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"predictions", "variant"}
    assert set(body["predictions"]) == {"Survival prediction"}
    assert body["predictions"]["Survival prediction"][0] in LABELS
    assert body["variant"] == r.headers["X-Marvel-Variant"] == "A"
    assert r.headers["x-request-id"]


def test_every_payload_format_and_route_gives_the_same_answer(endpoint: LocalEndpoint) -> None:
    records = [RAW, {**EXAMPLE["dataframe_records"][0], "Id": "seed-1"}, {**RAW, "Id": "x", "Height": None}]
    cols = sorted({k for r in records for k in r})
    bodies = {
        "dataframe_records": {"dataframe_records": records},
        "dataframe_split": {
            "dataframe_split": {"columns": cols, "data": [[r.get(c) for c in cols] for r in records]}
        },
        "instances": {"instances": records},
        "inputs": {"inputs": {c: [r.get(c) for r in records] for c in cols}},  # columnar
    }
    answers = {}
    for fmt, body in bodies.items():
        for url in (endpoint.invocations_url, f"{endpoint.url}/invocations"):
            r = post(url, {**body, "params": {"return_probabilities": True}})
            assert r.status_code == 200, (fmt, r.text)
            answers[(fmt, url)] = r.json()["predictions"]
    first = next(iter(answers.values()))
    assert all(a == first for a in answers.values())
    assert len(first["Survival prediction"]) == 3
    assert set(first["Survival prediction"]) <= LABELS
    assert all(0.0 <= p <= 1.0 for p in first["Probability alive"])
    # the label is the probability against the model's threshold
    assert [p >= 0.5 for p in first["Probability alive"]] == [
        s == "alive" for s in first["Survival prediction"]
    ]


def test_answers_match_the_registered_model_in_process(endpoint: LocalEndpoint) -> None:
    """The endpoint adds nothing of its own to the model's answer (same records -> same probabilities)."""
    import mlflow

    from marvel.features.records import to_records

    model = mlflow.pyfunc.load_model(endpoint.app.models["A"].uri)
    records = [RAW, EXAMPLE["dataframe_records"][0]]
    expected = model.predict(to_records(pd.DataFrame(records)), params={"return_probabilities": True})
    got = post(
        endpoint.invocations_url, {"dataframe_records": records, "params": {"return_probabilities": True}}
    )
    assert got.json()["predictions"] == expected


def test_raw_kaggle_values_and_kaggle_column_names_score(endpoint: LocalEndpoint) -> None:
    kaggle_names = {
        "PageID": RAW["Id"],
        "Height (m)": RAW["Height"],
        "Weight (kg)": RAW["Weight"],
        "Marital Status": RAW["Marital_Status"],
        **{k: RAW[k] for k in ("Universe", "Identity", "Gender", "Teams", "Origin")},
    }
    a = post(endpoint.invocations_url, {"dataframe_records": [RAW], "params": {"return_probabilities": True}})
    b = post(
        endpoint.invocations_url,
        {"dataframe_records": [kaggle_names], "params": {"return_probabilities": True}},
    )
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()


def test_client_helper(endpoint: LocalEndpoint) -> None:
    client = Client(endpoint.url)
    assert client.ping()
    one = client.predict(RAW, return_probabilities=True, client_request_id="client-helper-1")
    assert set(one["predictions"]) == {"Survival prediction", "Probability alive"}
    frame = pd.DataFrame([RAW, {**RAW, "Height": float("nan"), "Id": "nan-height"}])  # NaN is sent as null
    assert len(client.predict(frame)["predictions"]["Survival prediction"]) == 2
    assert Client(f"{endpoint.url}/invocations").predict([RAW])["variant"] == "A"
    assert client.describe()["served_entities"][0]["entity_version"] == "1"
    with pytest.raises(ServingError) as err:
        client.predict({**RAW, "Height": "tall"})
    assert err.value.status == 400
    assert err.value.body["field"] == "Height"


# -- validation at the edge --------------------------------------------------------------------------------
GOOD = {**RAW, "Id": "good"}
ROUTE_BODY_LIMIT, BATCH_LIMIT = 65536, 50


@st.composite
def bad_request(draw: st.DrawFn) -> tuple[bytes, int, str | None, int | None]:
    """(body, expected status, expected field, expected record index) of a request that must be refused."""
    kind = draw(
        st.sampled_from(
            [
                "garbage",
                "missing",
                "wrong_type",
                "non_finite",
                "out_of_range",
                "params",
                "shape",
                "batch",
                "size",
            ]
        )
    )
    n = draw(st.integers(1, 3))
    idx = draw(st.integers(0, n - 1))
    records = [dict(GOOD, Id=f"r{i}") for i in range(n)]
    if kind == "garbage":
        text = draw(
            st.sampled_from(["{", "[1, 2", '{"dataframe_records": [', "null", "\xff\xfe", "", "nope"])
        )
        return text.encode("latin-1"), 400, None, None
    if kind == "missing":
        field = draw(st.sampled_from(INPUT_REQUIRED))
        del records[idx][field]
        return json.dumps({"dataframe_records": records}).encode(), 400, field, idx
    if kind == "wrong_type":
        field = draw(st.sampled_from(INPUT_REQUIRED))
        bad = st.one_of(
            st.booleans(),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        )
        if field in ("Height", "Weight"):
            bad = st.one_of(bad, st.sampled_from(["tall", "", "1.8m", "NaN-ish"]))
        records[idx][field] = draw(bad)
        return json.dumps({"dataframe_records": records}).encode(), 400, field, idx
    if kind == "non_finite":
        field = draw(st.sampled_from(["Height", "Weight"]))
        # Infinity literals; NaN is MLflow's encoding of a missing value, accepted as null (issue 10, see
        # tests/test_serving_clients.py)
        records[idx][field] = draw(st.sampled_from([float("inf"), float("-inf")]))
        return json.dumps({"dataframe_records": records}).encode(), 400, field, idx
    if kind == "out_of_range":
        records[idx]["Height"] = draw(st.one_of(st.floats(-1e6, 0.0), st.floats(MAX_HEIGHT_M * 1.01, 1e12)))
        return json.dumps({"dataframe_records": records}).encode(), 400, "Height", idx
    if kind == "params":
        value = draw(st.one_of(st.integers(), st.text(max_size=3), st.none()))
        return (
            json.dumps({"dataframe_records": records, "params": {"return_probabilities": value}}).encode(),
            400,
            "return_probabilities",
            None,
        )
    if kind == "shape":
        body = draw(
            st.sampled_from(
                [
                    {"records": records},
                    {"dataframe_records": records, "instances": records},
                    {"dataframe_records": []},
                    {"dataframe_records": {"Height": 1.0}},
                    {"dataframe_split": {"columns": ["Height"], "data": [[1.0, 2.0]]}},
                    [GOOD],
                ]
            )
        )
        return json.dumps(body).encode(), 400, None, None
    if kind == "batch":
        return (
            json.dumps({"dataframe_records": [GOOD] * (BATCH_LIMIT + draw(st.integers(1, 20)))}).encode(),
            413,
            None,
            None,
        )
    padding = "x" * (ROUTE_BODY_LIMIT + draw(st.integers(1, 5000)))
    return json.dumps({"dataframe_records": [dict(GOOD, Name=padding)]}).encode(), 413, None, None


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bad_request())
def test_bad_requests_are_refused_with_the_field_and_the_server_keeps_serving(
    endpoint: LocalEndpoint, case: tuple[bytes, int, str | None, int | None]
) -> None:
    body, status, field, record = case
    r = post(endpoint.invocations_url, body)
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["error_code"]
    assert answer["message"]
    if field is not None:
        assert answer["field"] == field, answer
    if record is not None:
        assert answer["record"] == record, answer
    assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200


def test_server_still_scores_after_bad_requests(endpoint: LocalEndpoint) -> None:
    with requests.Session() as s:  # one keep-alive connection across a refused and a good request
        refused = s.post(
            endpoint.invocations_url, data=b'{"dataframe_records": [{"Height": "x"}]}', timeout=10
        )
        big = s.post(endpoint.invocations_url, data=b"[" + b" " * ROUTE_BODY_LIMIT + b"]", timeout=10)
        good = s.post(endpoint.invocations_url, json={"dataframe_records": [GOOD]}, timeout=10)
    assert (refused.status_code, big.status_code, good.status_code) == (400, 413, 200)
    assert good.json()["predictions"]["Survival prediction"][0] in LABELS


def test_every_answered_request_is_exactly_one_complete_row(home: Path, endpoint: LocalEndpoint) -> None:
    """Refused requests are logged too (with their status, like Databricks), never as partial rows."""
    ids = {"bad": "log-bad", "good": "log-good"}
    post(endpoint.invocations_url, {"dataframe_records": [{"Height": 1.0}], "client_request_id": ids["bad"]})
    post(
        endpoint.invocations_url,
        {"dataframe_records": [GOOD]},
        # the request-time header is ignored unless deploy.accept_request_time is true
        headers={"X-Client-Request-Id": ids["good"], "X-Marvel-Request-Time": "1700000000000"},
    )
    assert endpoint.flush()
    rows = table(home, "payload_main")
    answered = endpoint.app.stats()["by_status"]
    assert {str(k): v for k, v in rows["status_code"].value_counts().items()} == answered
    assert rows["databricks_request_id"].is_unique
    assert rows.notna()[["request", "response", "timestamp_ms", "date", "status_code"]].all().all()
    ok, refused = rows[rows.status_code == 200], rows[rows.status_code != 200]
    assert ok.served_model_version.eq("1").all()
    assert ok.variant.eq("A").all()
    assert all("predictions" in json.loads(r) for r in ok.response)
    assert refused.served_model_version.isna().all()
    assert all("error_code" in json.loads(r) for r in refused.response)
    by_id = rows.set_index("client_request_id")
    assert by_id.loc[ids["bad"], "status_code"] == 400
    assert json.loads(by_id.loc[ids["bad"], "response"])["field"] == "Weight"
    assert by_id.loc[ids["good"], "status_code"] == 200
    assert abs(by_id.loc[ids["good"], "timestamp_ms"] - time.time() * 1000) < 600_000
    assert json.loads(by_id.loc[ids["good"], "request"]) == {"dataframe_records": [GOOD]}


# -- auth and config flags ---------------------------------------------------------------------------------
def test_token_from_env_and_return_probabilities_from_config(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARVEL_SERVING_TOKEN", "s3cret")
    cfg = config(
        home, "deploy.block=false", "deploy.return_probabilities=true", "deploy.inference_table=payload_auth"
    )
    configure(cfg)
    ctx = RunContext(
        cfg=cfg, store=instantiate(cfg.env.store), tracker=None, out_dir=home / "out", compute=PandasCompute()
    )  # type: ignore[arg-type]
    ep = instantiate(cfg.deploy, _convert_="all").deploy(ctx)
    try:
        assert requests.get(f"{ep.url}/ping", timeout=5).status_code == 200  # health stays open
        assert post(ep.invocations_url, EXAMPLE).status_code == 401
        wrong = post(ep.invocations_url, EXAMPLE, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error_code"] == "UNAUTHENTICATED"
        assert requests.get(f"{ep.url}/serving-endpoints/{ENDPOINT}", timeout=5).status_code == 401
        ok = post(ep.invocations_url, EXAMPLE, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert set(ok.json()["predictions"]) == {"Survival prediction", "Probability alive"}
        assert Client(ep.url, token="s3cret").describe()["auth"] == "bearer"
    finally:
        ep.stop()
    assert ep.app.stats()["requests"] == 1  # 401s are not model traffic: answered, not logged
    assert len(table(home, "payload_auth")) == 1


def test_bad_deploy_config_fails_before_serving(home: Path) -> None:
    base = {"model": "marvel_character_model_custom", "alias": "latest-model"}
    with pytest.raises(MarvelError, match="add up to 90"):
        LocalDeployer(
            variants=[
                {**base, "name": "A", "traffic_percentage": 60},
                {**base, "name": "B", "traffic_percentage": 30},
            ]
        )
    with pytest.raises(MarvelError, match="alias or a version"):
        LocalDeployer(variants=[{"name": "A", "model": "m", "traffic_percentage": 100}])
    # the contract others use: the deploy config block, instantiated from its `_target_`
    plain = instantiate(config(home, "deploy=ab").deploy, _convert_="all")
    assert [(v.name, v.alias, v.traffic_percentage) for v in plain.variants] == [
        ("A", "latest-model", 50),
        ("B", "challenger", 50),
    ]
    cfg = config(home, "deploy.block=false", "deploy.variants.0.alias=no-such-alias")
    configure(cfg)
    ctx = RunContext(
        cfg=cfg, store=instantiate(cfg.env.store), tracker=None, out_dir=home / "out", compute=PandasCompute()
    )  # type: ignore[arg-type]
    with pytest.raises(MarvelError, match="no-such-alias"):
        instantiate(cfg.deploy, _convert_="all").deploy(ctx)
    # A and B on one version is no A/B test: refused before anything listens
    same = config(home, "deploy=ab", "deploy.block=false", "deploy.variants.1.alias=latest-model")
    with pytest.raises(MarvelError, match="A and B both serve marvel_character_model_custom v1"):
        instantiate(same.deploy, _convert_="all").deploy(ctx)


# -- A/B -----------------------------------------------------------------------------------------------------
def test_routing_split_matches_config_within_sampling_error() -> None:
    for share in (50, 10, 73.5):
        router = Router(
            [Variant("A", "m", "a", None, share), Variant("B", "m", "b", None, 100 - share)], ENDPOINT
        )
        n = 20_000
        got = Counter(router.route({"Id": f"character-{i}"}) for i in range(n))
        p = share / 100
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(got["A"] - n * p) < 4.5 * sd, (
            share,
            got,
        )  # a 4.5-sigma binomial bound: ~1e-5 false alarms


def test_ab_endpoint_is_sticky_per_character_and_keeps_batch_order(home: Path) -> None:
    from marvel.core.engine import run

    cfg = config(
        home,
        "stages=[deploy]",
        "deploy=ab",
        "deploy.block=false",
        "deploy.inference_table=payload_ab",
        "deploy.max_batch_records=1000",
        "deploy.flush.max_seconds=0.2",
    )
    result = run(cfg, out_dir=home / "out").deploy  # through the stage, as `python -m marvel` runs it
    ep: LocalEndpoint = result.endpoint
    try:
        assert "A=marvel_character_model_custom v1 50%" in result.summary
        assert {e["variant"]: e["entity_version"] for e in result.served_entities} == {"A": "1", "B": "2"}
        records = [dict(RAW, Id=f"char-{i}") for i in range(1000)]
        batch = post(
            ep.invocations_url, {"dataframe_records": records, "params": {"return_probabilities": True}}
        )
        assert batch.status_code == 200
        answer = batch.json()
        variants = answer["variants"]
        assert answer["variant"] == batch.headers["X-Marvel-Variant"] == "A,B"
        assert len(answer["predictions"]["Survival prediction"]) == len(variants) == 1000
        assert abs(variants.count("A") - 500) < 4.5 * 250**0.5  # 50/50 within 4.5 sigma
        # sticky: each character meets the same variant alone as in the batch, every time
        for i in (0, 1, 2, 3, 500, 999):
            for _ in range(2):
                alone = post(
                    ep.invocations_url,
                    {"dataframe_records": [records[i]], "params": {"return_probabilities": True}},
                )
                assert alone.json()["variant"] == variants[i]
                # and the batch answered in request order (same record, same answer)
                assert alone.json()["predictions"]["Probability alive"] == [
                    answer["predictions"]["Probability alive"][i]
                ]
        # no Id: the record itself is the key, so a repeated record is sticky too
        anonymous = [post(ep.invocations_url, EXAMPLE).json()["variant"] for _ in range(3)]
        assert len(set(anonymous)) == 1
    finally:
        ep.stop()
    rows = table(home, "payload_ab")
    assert len(rows) == 1 + 12 + 3
    single = rows[rows.variant != "A,B"]
    assert set(zip(single.variant, single.served_model_version, strict=True)) <= {("A", "1"), ("B", "2")}
    assert rows[rows.variant == "A,B"].served_model_version.tolist() == ["1,2"]


# -- shutdown: nothing lost ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_after_concurrent_requests_leaves_exactly_one_row_per_request(home: Path) -> None:
    n, replay_start = 48, 1_700_000_000_000
    with CliServer(
        home,
        "deploy.inference_table=payload_sigterm",
        "deploy.flush.max_rows=7",  # 48 rows: six size flushes, the last 6 rows only on shutdown
        "deploy.flush.max_seconds=600",
        "deploy.accept_request_time=true",
    ) as server:
        url = server.wait_for_url()

        def send(i: int) -> tuple[int, dict[str, Any], requests.Response]:
            record = dict(RAW, Id=f"char-{i}")
            if i % 8 == 7:
                del record["Gender"]  # refused requests are part of the traffic, and of the table
            body = {"dataframe_records": [record], "client_request_id": f"req-{i}"}
            headers = {"X-Marvel-Request-Time": str(replay_start + i * 60_000)} if i % 2 == 0 else {}
            return i, body, post(f"{url}/serving-endpoints/{ENDPOINT}/invocations", body, headers)

        with ThreadPoolExecutor(8) as pool:
            sent = list(pool.map(send, range(n)))
        assert server.terminate() == 0, server.text
        assert "deploy: served" in server.text, server.text  # the run ended normally, with its summary

    rows = table(home, "payload_sigterm").set_index("client_request_id")
    assert len(rows) == n
    assert rows.index.is_unique
    for i, body, response in sent:
        row = rows.loc[f"req-{i}"]
        assert row.status_code == response.status_code == (400 if i % 8 == 7 else 200)
        assert json.loads(row.request) == body
        assert json.loads(row.response) == response.json()
        assert row.databricks_request_id == response.headers["x-request-id"]
        if i % 2 == 0:  # replayed traffic keeps its own time
            assert row.timestamp_ms == replay_start + i * 60_000
            assert row.date == pd.Timestamp(replay_start + i * 60_000, unit="ms").normalize()
        else:
            assert abs(row.timestamp_ms - time.time() * 1000) < 600_000


def test_an_address_it_cannot_listen_on_is_one_line_with_its_fix(trained: Path, marvel_main) -> None:
    """A port in use (or privileged) wants another port; an address this machine does not have, another host."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = marvel_main("stages=[deploy]", f"deploy.port={port}")
    assert busy.returncode == 2
    (line,) = busy.stderr.strip().splitlines()
    assert line.startswith(f"marvel: cannot listen on 127.0.0.1:{port} (")
    assert line.endswith("; try deploy.port=0")
    elsewhere = marvel_main("stages=[deploy]", "deploy.host=256.1.1.1", "deploy.port=0")
    assert elsewhere.returncode == 2
    assert elsewhere.stderr.strip().endswith("; check deploy.host")
