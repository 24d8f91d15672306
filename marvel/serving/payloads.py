"""Request bodies in the formats MLflow's scoring server and Databricks Model Serving take, as raw records:
JSON (``dataframe_records``, ``dataframe_split``, ``instances``, ``inputs``, with ``params`` and
``client_request_id``) or CSV (``text/csv``); and `RequestError`, the refusal every check raises.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")
# params a caller may send, with their type; anything else is a 400 (a typo must not be silently ignored)
PARAMS: dict[str, type] = {"return_probabilities": bool}
TOP_LEVEL = (*FORMATS, "params", "client_request_id")
MAX_CLIENT_REQUEST_ID = 256
CSV_TYPES = ("text/csv",)  # bodies read as MLflow's scoring server reads CSV; anything else is JSON
SURROGATE = re.compile("[\ud800-\udfff]")


class RequestError(Exception):
    """A request the endpoint refuses; `body()` is the JSON answer (MLflow's error shape plus the field)."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        field: str | None = None,
        record: int | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.field = field
        self.record = record
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.record is not None:
            out["record"] = self.record
        if len(self.errors) > 1:
            out["errors"] = self.errors
        return out


def bad_request(message: str, field: str | None = None, record: int | None = None) -> RequestError:
    return RequestError(400, "BAD_REQUEST", message, field=field, record=record)


def _reject_constant(name: str) -> float:
    # NaN/Infinity are not JSON; Python's parser accepts them, so they come through as floats and the
    # per-field check names the field they were in
    return float(name.replace("Infinity", "inf"))


def decode(body: bytes) -> Any:
    if not body.strip():
        raise RequestError(400, "MALFORMED_REQUEST", "empty request body: send a JSON object")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise RequestError(400, "MALFORMED_REQUEST", f"body is not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, "MALFORMED_REQUEST", f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "MALFORMED_REQUEST", "body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise RequestError(400, "MALFORMED_REQUEST", f"body is not usable JSON: {exc}"[:300]) from None


def decode_csv(body: bytes) -> dict[str, Any]:
    """A CSV body (header row, then records) as MLflow's scoring server reads it (pandas, types inferred),
    as a `dataframe_records` payload; empty cells are missing values."""
    try:
        frame = pd.read_csv(io.StringIO(body.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise RequestError(400, "MALFORMED_REQUEST", f"body is not UTF-8: {exc.reason}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RequestError(400, "MALFORMED_REQUEST", f"body is not valid CSV: {message}") from None
    frame = frame.astype(object).where(frame.notna(), None)
    return {"dataframe_records": frame.to_dict(orient="records")}


def _from_columns(columns: Mapping[str, Any], fmt: str) -> list[Any]:
    """{"col": [v0, v1], ...} -> records; {"col": v, ...} (no lists) -> one record."""
    lists = [isinstance(v, list) for v in columns.values()]
    if not any(lists):
        return [dict(columns)]
    if not all(lists):
        raise bad_request(f"'{fmt}' as a mapping needs every column to be a list of values (or none to be)")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise bad_request(f"'{fmt}' columns have different lengths: {sorted(lengths)}")
    n = lengths.pop()
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _split_records(split: Any) -> list[Any]:
    if not isinstance(split, Mapping):
        raise bad_request("'dataframe_split' must be an object with 'columns' and 'data'")
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bad_request("'dataframe_split.columns' must be a list of column names", field="columns")
    if not isinstance(data, list):
        raise bad_request("'dataframe_split.data' must be a list of rows", field="data")
    rows: list[Any] = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise bad_request(
                f"row {i} of 'dataframe_split.data' must be a list of {len(columns)} values", record=i
            )
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


def raw_records(payload: Any) -> tuple[str, list[Any]]:
    """The records of a body in any of MLflow's four input formats, unvalidated."""
    if not isinstance(payload, Mapping):
        raise bad_request(f"the body must be a JSON object with one of {list(FORMATS)}")
    unknown = sorted(set(payload) - set(TOP_LEVEL))
    if unknown:
        raise bad_request(f"unknown key(s) {unknown}: allowed are {list(TOP_LEVEL)}", field=unknown[0])
    present = [f for f in FORMATS if f in payload]
    if len(present) != 1:
        raise bad_request(f"send exactly one of {list(FORMATS)} (got {present or 'none'})")
    fmt = present[0]
    value = payload[fmt]
    if fmt == "dataframe_split":
        return fmt, _split_records(value)
    if isinstance(value, list):
        return fmt, value
    if isinstance(value, Mapping) and fmt != "dataframe_records":
        return fmt, _from_columns(value, fmt)
    raise bad_request(f"'{fmt}' must be a list of records", field=fmt)


def parse_params(payload: Mapping[str, Any]) -> dict[str, Any]:
    params = payload.get("params", {})
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise bad_request("'params' must be an object", field="params")
    for key, value in params.items():
        if key not in PARAMS:
            raise bad_request(f"unknown param '{key}': known params are {sorted(PARAMS)}", field=key)
        if not isinstance(value, PARAMS[key]):
            raise bad_request(f"param '{key}' must be a {PARAMS[key].__name__}", field=key)
    return dict(params)


def client_request_id(payload: Any) -> str | None:
    value = payload.get("client_request_id") if isinstance(payload, Mapping) else None
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CLIENT_REQUEST_ID or SURROGATE.search(value):
        raise bad_request(
            f"'client_request_id' must be text of at most {MAX_CLIENT_REQUEST_ID} characters",
            field="client_request_id",
        )
    return value
