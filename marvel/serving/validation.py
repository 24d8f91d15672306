"""Request bodies -> validated character records, or a `RequestError` that says which field of which record
is wrong and why.

The rules come from the `CharacterRecord` contract (marvel/schemas.py): which columns are required, which are
numbers, which may be null, and the bound checks (``Height > 0`` ...). They are compiled once into plain
Python checks per value, because running pandera on every request costs ~20 ms of CPU, more than the model;
a check this module does not know is still enforced, by running the pandera schema itself.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from marvel.core.schemas import RAW_TO_INPUT, CharacterRecord
from marvel.features.records import team_counts, to_records
from marvel.serving.payloads import (
    CSV_TYPES,
    SURROGATE,
    RequestError,
    bad_request,
    client_request_id,
    decode,
    decode_csv,
    parse_params,
    raw_records,
)

MAX_ERRORS = 20  # errors listed in one answer; the first is also at the top level
__all__ = ["RequestError", "client_request_id", "compile_rules", "parse_request", "records_frame"]

# -- the contract, compiled -------------------------------------------------------------------------------
_COMPARISONS: dict[str, tuple[Callable[[Any, Any], bool], str, str]] = {
    "greater_than": (operator.gt, "min_value", "must be > {}"),
    "greater_than_or_equal_to": (operator.ge, "min_value", "must be >= {}"),
    "less_than": (operator.lt, "max_value", "must be < {}"),
    "less_than_or_equal_to": (operator.le, "max_value", "must be <= {}"),
}


@dataclass(frozen=True)
class ColumnRule:
    name: str
    numeric: bool
    required: bool
    nullable: bool
    checks: tuple[tuple[Callable[[Any], bool], str], ...]  # (predicate on a non-null value, failure message)


@dataclass(frozen=True)
class RecordRules:
    columns: tuple[ColumnRule, ...]
    needs_pandera: bool  # the schema has a check compiled here cannot express; run pandera too


def _compare(op: Callable[[Any, Any], bool], bound: Any) -> Callable[[Any], bool]:
    return lambda v: op(v, bound)


@lru_cache(maxsize=8)
def compile_rules(model: type[pa.DataFrameModel] = CharacterRecord) -> RecordRules:
    schema = model.to_schema()
    rules: list[ColumnRule] = []
    needs_pandera = bool(schema.checks)
    for name, col in schema.columns.items():
        checks: list[tuple[Callable[[Any], bool], str]] = []
        for check in col.checks:
            stats = check.statistics or {}
            if check.name in _COMPARISONS:
                op, key, text = _COMPARISONS[check.name]
                bound = stats[key]
                checks.append((_compare(op, bound), text.format(bound)))
            elif check.name == "isin":
                allowed = frozenset(stats["allowed_values"])
                checks.append((allowed.__contains__, f"must be one of {sorted(allowed)}"))
            else:
                needs_pandera = True
        kind = str(col.dtype)
        rules.append(
            ColumnRule(
                name=name,
                numeric=kind.startswith(("float", "int")),
                required=col.required,
                nullable=col.nullable,
                checks=tuple(checks),
            )
        )
    return RecordRules(tuple(rules), needs_pandera)


# -- values -----------------------------------------------------------------------------------------------
def _number(value: Any) -> float:
    """A JSON number, or a string holding one ("1.88": the Kaggle file is text); never a bool."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {json.dumps(value)}")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            raise ValueError(f"must be a finite number, got an integer of {len(str(value))} digits") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got the string {json.dumps(value[:40])}") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {value!r}")
    return number


def _text(value: Any) -> str:
    """A string; a number is accepted and written as text (the seed sends ``"Teams": 1`` as well as "1")."""
    if isinstance(value, str):
        if SURROGATE.search(value):
            raise ValueError("contains a lone surrogate (\\ud800-\\udfff), which is not text")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"must be a string or finite number, got {value!r}")
        if value.is_integer():
            return str(int(value))
    return str(value)


def check_record(raw: Any, index: int, rules: RecordRules) -> tuple[dict[str, Any], list[dict]]:
    """One record -> (normalised record by serving names, errors). Extra keys are dropped (strict=False)."""
    if not isinstance(raw, Mapping):
        return {}, [{"record": index, "field": None, "message": "a record must be a JSON object"}]
    # Kaggle names ("Height (m)") are accepted, as `to_records` accepts them; serving names win if both
    rec = dict(raw)
    for kaggle, serving in RAW_TO_INPUT.items():
        if kaggle in rec and serving not in rec:
            rec[serving] = rec.pop(kaggle)
    out: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for rule in rules.columns:
        if rule.name not in rec:
            if rule.required:
                errors.append({"record": index, "field": rule.name, "message": "missing required field"})
            continue
        value = rec[rule.name]
        if isinstance(value, float) and math.isnan(value) and rule.nullable:
            value = None  # MLflow's clients send a missing value as NaN
        if value is None:
            if not rule.nullable:
                errors.append({"record": index, "field": rule.name, "message": "must not be null"})
            out[rule.name] = None
            continue
        try:
            value = _number(value) if rule.numeric else _text(value)
        except ValueError as exc:
            errors.append({"record": index, "field": rule.name, "message": str(exc)})
            continue
        for predicate, message in (*rule.checks, *_MODEL_CHECKS.get(rule.name, ())):
            if not predicate(value):
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                errors.append({"record": index, "field": rule.name, "message": f"{message}, got {shown}"})
                break
        out[rule.name] = value
    return out, errors


def _team_count_fits(value: Any) -> bool:
    """Teams as the features read it: a digit string is a count, which must be a whole number the model can
    hold (not "²", not 2^63 or more)."""
    try:
        np.asarray(team_counts([value]), dtype="int64")
    except (ValueError, OverflowError):
        return False
    return True


# checks beyond the contract: values the contract allows but the features cannot turn into numbers
_MODEL_CHECKS: dict[str, tuple[tuple[Callable[[Any], bool], str], ...]] = {
    "Teams": ((_team_count_fits, "a team count must be a whole number below 2^63"),),
}


# -- requests -------------------------------------------------------------------------------------------
@dataclass
class ParsedRequest:
    payload: dict[str, Any]  # the decoded body, as sent
    records: list[dict[str, Any]]  # validated, by serving names, in request order
    params: dict[str, Any] = field(default_factory=dict)
    client_request_id: str | None = None


def parse_request(
    body: bytes,
    max_batch_records: int,
    model: type[pa.DataFrameModel] = CharacterRecord,
    content_type: str | None = None,
) -> ParsedRequest:
    """Decode and validate a scoring request against `model`; raise `RequestError` (400/413) if it fails.

    The body is JSON unless `content_type` says CSV (``text/csv``)."""
    rules = compile_rules(model)
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    payload = decode_csv(body) if kind in CSV_TYPES else decode(body)
    _, raw = raw_records(payload)
    if not raw:
        raise bad_request("no records to score")
    if len(raw) > max_batch_records:
        raise RequestError(
            413,
            "REQUEST_LIMIT_EXCEEDED",
            f"{len(raw)} records in one request; the limit is {max_batch_records} (deploy.max_batch_records)",
        )
    params = parse_params(payload)
    crid = client_request_id(payload)
    records: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for i, rec in enumerate(raw):
        clean, errs = check_record(rec, i, rules)
        records.append(clean)
        errors.extend(errs)
        if len(errors) >= MAX_ERRORS:
            break
    if not errors and rules.needs_pandera:
        errors = _pandera_errors(records, model)
    if errors:
        first = errors[0]
        where = f"record {first['record']}" + (f", field '{first['field']}'" if first["field"] else "")
        raise RequestError(
            400,
            "BAD_REQUEST",
            f"{where}: {first['message']}",
            field=first["field"],
            record=first["record"],
            errors=errors[:MAX_ERRORS],
        )
    return ParsedRequest(payload=payload, records=records, params=params, client_request_id=crid)


def _pandera_errors(records: list[dict[str, Any]], model: type[pa.DataFrameModel]) -> list[dict[str, Any]]:
    """The contract's checks this module does not compile, run by pandera itself."""
    try:
        model.validate(to_records(pd.DataFrame(records)), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        return [
            {
                "record": None if pd.isna(r["index"]) else int(r["index"]),
                "field": r["column"],
                "message": str(r["check"]),
            }
            for _, r in cases.head(MAX_ERRORS).iterrows()
        ]
    return []


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Validated records as the model's input frame (`CharacterRecord` columns, nothing else)."""
    return to_records(pd.DataFrame.from_records(records))
