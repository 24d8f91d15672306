"""Edge validation without a server: the rules follow the `CharacterRecord` contract, not a copy of it."""

from __future__ import annotations

import json

import pandera.pandas as pa
import pytest
from pandera.typing import Series

from marvel.core.schemas import MAX_HEIGHT_M, CharacterRecord
from marvel.serving.examples import RAW_EXAMPLE
from marvel.serving.validation import RequestError, compile_rules, parse_request

GOOD = {k: v for k, v in RAW_EXAMPLE.items() if k != "Id"}


def parse(*records: dict, **extra: object) -> list[dict]:
    return parse_request(json.dumps({"dataframe_records": list(records), **extra}).encode(), 100).records


def refusal(*records: dict) -> RequestError:
    with pytest.raises(RequestError) as err:
        parse(*records)
    return err.value


def test_bounds_come_from_the_contract() -> None:
    assert parse(dict(GOOD, Height=MAX_HEIGHT_M))[0]["Height"] == MAX_HEIGHT_M  # le: the bound itself is fine
    err = refusal(dict(GOOD), dict(GOOD, Height=MAX_HEIGHT_M * 1.5))
    assert (err.status, err.field, err.record) == (400, "Height", 1)
    assert str(MAX_HEIGHT_M) in err.message
    assert refusal(dict(GOOD, Weight=0)).field == "Weight"  # gt 0


def test_lenient_where_the_data_is_text_strict_where_it_is_wrong() -> None:
    rec = parse(dict(GOOD, Height="1.9", Teams=1, Id=1678, Magic="0"))[0]
    assert rec["Height"] == 1.9
    assert rec["Teams"] == "1"
    assert rec["Id"] == "1678"
    assert "Magic" not in rec  # extra keys are accepted (strict=False) and not passed to the model
    assert parse(dict(GOOD, Height=None))[0]["Height"] is None  # nullable: a missing measurement
    for field, value in [("Height", True), ("Weight", "heavy"), ("Gender", ["Male"]), ("Teams", {"a": 1})]:
        err = refusal(dict(GOOD, **{field: value}))
        assert (err.field, err.record) == (field, 0), err.body()


def test_kaggle_column_names_are_accepted() -> None:
    kaggle = {k: v for k, v in GOOD.items() if k not in ("Height", "Weight", "Marital_Status")}
    kaggle |= {"Height (m)": 1.78, "Weight (kg)": 76.0, "Marital Status": "Married", "PageID": "p1"}
    rec = parse(kaggle)[0]
    assert rec == {**GOOD, "Id": "p1"}


def test_every_error_is_listed_and_the_first_is_on_top() -> None:
    err = refusal(dict(GOOD, Height=-1), {k: v for k, v in GOOD.items() if k != "Origin"})
    assert (err.field, err.record) == ("Height", 0)
    assert [(e["record"], e["field"]) for e in err.body()["errors"]] == [(0, "Height"), (1, "Origin")]


def test_client_request_id_and_params_are_checked() -> None:
    parsed = parse_request(
        json.dumps(
            {
                "dataframe_records": [GOOD],
                "client_request_id": "abc",
                "params": {"return_probabilities": True},
            }
        ).encode(),
        10,
    )
    assert parsed.client_request_id == "abc"
    assert parsed.params == {"return_probabilities": True}
    for extra in ({"client_request_id": 5}, {"params": {"threshold": 0.3}}):
        with pytest.raises(RequestError) as err:
            parse(GOOD, **extra)
        assert err.value.status == 400
        assert err.value.field in ("client_request_id", "threshold")


def test_a_check_not_compiled_here_is_still_enforced_by_pandera() -> None:
    class Stricter(CharacterRecord):
        Gender: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z]")

    assert compile_rules(Stricter).needs_pandera
    assert not compile_rules(CharacterRecord).needs_pandera  # the real contract runs without pandera
    body = json.dumps({"dataframe_records": [GOOD, dict(GOOD, Gender="male")]}).encode()
    assert parse_request(body, 10)  # fine by the real contract
    with pytest.raises(RequestError) as err:
        parse_request(body, 10, model=Stricter)
    assert (err.value.status, err.value.field, err.value.record) == (400, "Gender", 1)
