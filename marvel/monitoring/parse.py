"""Inference table rows (one per request, JSON bodies) -> monitoring rows (one per scored record).

Pure pandas, no I/O: the Databricks monitor reuses `payload_to_monitoring` on the Databricks inference table,
whose columns `InferenceLog` mirrors. `split_payload` also returns the requests that scored nothing (a
refused request, an error answer, a body that is not JSON or not in an MLflow format, an answer without
predictions), each with the reason: the local monitor quarantines and counts them.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from marvel.core.labels import PREDICTION_KEY, PROBABILITY_KEY
from marvel.core.schemas import INPUT_COLUMNS, RAW_TO_INPUT
from marvel.monitoring.schemas import ModelMonitoring
from marvel.serving.payloads import TOP_LEVEL, RequestError, decode_csv, raw_records

NUMERIC = ("Height", "Weight")
MONITORING_COLUMNS: list[str] = list(ModelMonitoring.to_schema().columns)
OPTIONAL_COLUMNS = ("served_model_name", "served_model_version", "variant")


def _records(body: Any) -> list[dict[str, Any]]:
    """The records of an MLflow scoring body, by the server's own reading of its four formats."""
    try:
        return [r if isinstance(r, dict) else {} for r in raw_records(body)[1]]
    except RequestError as exc:
        raise ValueError(f"request: {exc.message}") from None


def _predictions(body: dict[str, Any], n: int) -> tuple[list[Any], list[Any]]:
    """(labels, probabilities) from the pyfunc answer; probabilities are None when not asked for."""
    preds = body.get("predictions", {})
    if isinstance(preds, list):  # a list of per-record dicts
        labels = [p.get(PREDICTION_KEY) if isinstance(p, dict) else p for p in preds]
        probs = [p.get(PROBABILITY_KEY) if isinstance(p, dict) else None for p in preds]
        return labels, probs
    labels = list(preds.get(PREDICTION_KEY, []))
    probs = list(preds.get(PROBABILITY_KEY) or [None] * n)
    return labels, probs


def _split_variants(
    answer: dict[str, Any], name: Any, version: Any, n: int
) -> list[tuple[Any, Any, Any]] | None:
    """Per-record (model name, version, variant) of an A/B request answered by several variants.

    The server then logs the request once with comma-joined variants and versions (in the same order) and
    the answer lists each record's variant under "variants".
    """
    per_record = answer.get("variants")
    if not per_record:
        return None
    label = str(answer.get("variant") or "").split(",")
    versions = str(version).split(",") if version is not None else []
    names = str(name).split(",") if name is not None else []
    out = []
    for v in per_record[:n]:
        i = label.index(v) if v in label else -1
        ver = versions[i] if 0 <= i < len(versions) and len(versions) == len(label) else version
        nam = names[i] if 0 <= i < len(names) and len(names) == len(label) else name
        out.append((nam, ver, v))
    return out


Parsed = tuple[pd.DataFrame, Any, Any, np.ndarray, list[Any], list[tuple[Any, Any, Any]] | None]


def _one(req: Any, resp: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, answer) of one request, or ValueError saying why it cannot be read. A body that is not
    JSON may be CSV (the endpoint scores `text/csv` as MLflow's server does; the log keeps the body)."""
    try:
        body = json.loads(req)
    except (TypeError, ValueError) as exc:
        try:
            body = decode_csv(str(req).encode("utf-8")) if "," in str(req).split("\n", 1)[0] else None
        except RequestError:
            body = None
        if body is None:
            raise ValueError(f"request is neither JSON nor CSV ({exc})") from None
    try:
        answer = json.loads(resp)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"response is not JSON ({exc})") from None
    if not isinstance(answer, dict) or "predictions" not in answer:
        keys = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
        raise ValueError(f"response has no 'predictions' (got {keys})")
    return _records(body), answer


def _parse_python(ok: pd.DataFrame) -> tuple[Parsed, dict[int, str]]:
    """The general path: any body MLflow accepts, answers shorter than their requests, A/B answers; rows
    that cannot be read are left out, with the reason by position."""
    records: list[dict[str, Any]] = []
    labels: list[Any] = []
    probs: list[Any] = []
    counts = np.zeros(len(ok), dtype=np.int64)
    variants: list[Any] = []
    served: list[tuple[Any, Any, Any]] = []
    split = False
    rows = zip(
        ok["request"],
        ok["response"],
        ok["variant"],
        ok["served_model_name"],
        ok["served_model_version"],
        strict=True,
    )
    bad: dict[int, str] = {}
    for i, (req, resp, variant, name, version) in enumerate(rows):
        try:
            recs, answer = _one(req, resp)
            lab, pro = _predictions(answer, len(recs))
        except (ValueError, AttributeError, TypeError) as exc:
            bad[i] = str(exc) if isinstance(exc, ValueError) else f"response cannot be read ({exc})"
            variants.append(variant)
            continue
        n = min(len(recs), len(lab))
        records.extend(recs[:n])
        labels.extend(lab[:n])
        probs.extend(pro[:n])
        counts[i] = n
        variant = variant if variant is not None else answer.get("variant")
        variants.append(variant)
        per_record = _split_variants(answer, name, version, n)
        split |= per_record is not None
        served.extend(per_record or [(name, version, variant)] * n)
    feats = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return (feats, labels, probs, counts, variants, served if split else None), bad


def _parse_arrow(ok: pd.DataFrame) -> Parsed | None:
    """The fast path for the common shape (`dataframe_records`, one answer per record): Arrow's JSON reader
    parses every body in C++, about 10x faster than json.loads + dicts at a million records. Returns None
    when the bodies do not fit that shape, and the caller takes the general path."""
    try:
        opts = pj.ReadOptions(block_size=1 << 22)  # several blocks: parsed on all cores
        req = pj.read_json(io.BytesIO("\n".join(ok["request"]).encode()), read_options=opts)
        resp = pj.read_json(io.BytesIO("\n".join(ok["response"]).encode()), read_options=opts)
        if set(req.column_names) - set(TOP_LEVEL) or req.num_rows != len(ok) or resp.num_rows != len(ok):
            return None  # an unknown key (or a body that is not one JSON object): the general path says which
        recs = req.column("dataframe_records").combine_chunks()
        if recs.null_count:
            return None
        if "variants" in resp.column_names:  # A/B answers: per-record variants, the general path
            return None
        preds = resp.column("predictions").combine_chunks()
        labels = preds.field(PREDICTION_KEY)
        counts = pc.list_value_length(recs).fill_null(0).to_numpy(zero_copy_only=False)
        if not np.array_equal(
            counts, pc.list_value_length(labels).fill_null(0).to_numpy(zero_copy_only=False)
        ):
            return None
        names = [preds.type.field(i).name for i in range(preds.type.num_fields)]
        probs = (
            pc.list_flatten(preds.field(PROBABILITY_KEY)).to_numpy(zero_copy_only=False)
            if PROBABILITY_KEY in names
            else [None] * int(counts.sum())
        )
        if len(probs) != counts.sum():
            return None
        table = pa.Table.from_struct_array(pc.list_flatten(recs))
        feats = pd.DataFrame(
            {
                name: _arrow_text(col) if pa.types.is_string(col.type) else col.to_pandas()
                for name, col in zip(table.column_names, table.columns, strict=True)
            }
        )
        variant = ok["variant"].to_numpy(dtype=object)
        if "variant" in resp.column_names:
            variant = np.where(
                pd.isna(variant), resp.column("variant").to_numpy(zero_copy_only=False), variant
            )
        flat_labels = pc.list_flatten(labels).to_numpy(zero_copy_only=False)
        return feats, flat_labels, probs, counts, list(variant), None
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, ValueError):
        return None


def _arrow_text(col: Any) -> pd.Series:
    """`_text` in Arrow compute (C++): trimmed strings, "" as missing."""
    trimmed = pc.utf8_trim_whitespace(col)
    cleaned = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    return cleaned.to_pandas().astype(object)


def _lower(values: Any) -> np.ndarray:
    """Lower-case a long column with few distinct values: once per distinct value, then gathered."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    lowered = np.array([str(u).lower() for u in uniques] + [None], dtype=object)
    return lowered[codes]  # code -1 (missing) picks the trailing None


def _text(s: pd.Series) -> pd.Series:
    """Strings or None; "" counts as missing, as in `marvel.features.records.to_records` (vectorised here)."""
    out = s.astype("string").str.strip()
    out = out.where(out.notna() & (out != ""), None)
    return out.astype(object).where(out.notna(), None)


def payload_to_monitoring(payload: pd.DataFrame) -> pd.DataFrame:
    """One row per scored record, in the `ModelMonitoring` columns (label left missing: joined later).

    Only successful requests (status 200) that can be read count: a failed request scored nothing. A request
    whose answer has fewer predictions than records keeps the records that were answered.
    """
    return split_payload(payload)[0]


def split_payload(payload: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(monitoring rows, requests that scored nothing: `databricks_request_id`, `reason`, `position`)."""
    none = pd.DataFrame({"databricks_request_id": [], "reason": [], "position": []})
    if payload.empty:
        return ModelMonitoring.to_schema().coerce_dtype(pd.DataFrame(columns=MONITORING_COLUMNS)), none
    # Databricks' own inference tables lack marvel's model/variant columns: those default to unknown
    payload = payload.assign(**{c: None for c in OPTIONAL_COLUMNS if c not in payload.columns})
    payload = payload.reset_index(drop=True)
    status = payload["status_code"].astype(int)
    failed = payload[status != 200]
    reasons = {
        int(i): f"status {int(c)}: {str(r)[:200]}"
        for i, c, r in zip(failed.index, failed["status_code"], failed["response"], strict=True)
    }
    ok = payload[status == 200]
    fast = _parse_arrow(ok) if len(ok) else None
    if fast is None:
        # the general path; a request it cannot read scores no record (its count stays 0)
        parsed, bad = _parse_python(ok)
        reasons.update({int(ok.index[i]): why for i, why in bad.items()})
    else:
        parsed = fast
    feats, labels, probs, counts, variants, served = parsed
    at = sorted(reasons)
    failed_rows = pd.DataFrame(
        {
            "databricks_request_id": payload["databricks_request_id"].to_numpy(dtype=object)[at],
            "reason": [reasons[i] for i in at],
            "position": at,
        }
    )
    return _rows(ok, feats, labels, probs, counts, variants, served, fast is not None), failed_rows


def _rows(
    ok: pd.DataFrame,
    feats: pd.DataFrame,
    labels: Any,
    probs: Any,
    counts: np.ndarray,
    variants: list[Any],
    served: list[tuple[Any, Any, Any]] | None,
    cleaned: bool,
) -> pd.DataFrame:
    # Kaggle names ("Height (m)") become serving names; requests may mix both, so fill rather than rename
    for raw_name, name in RAW_TO_INPUT.items():
        if raw_name in feats.columns and raw_name != name:
            feats[name] = (
                feats[raw_name] if name not in feats.columns else feats[name].fillna(feats[raw_name])
            )
    out = pd.DataFrame(index=pd.RangeIndex(len(feats)))
    ts_ms = np.repeat(ok["timestamp_ms"].to_numpy(dtype=np.int64), counts)
    out["timestamp"] = pd.to_datetime(ts_ms, unit="ms")
    out["databricks_request_id"] = np.repeat(ok["databricks_request_id"].to_numpy(dtype=object), counts)
    # position inside the request: a running index that restarts at every request
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    out["record_index"] = np.arange(len(feats), dtype=np.int64) - starts
    for col in INPUT_COLUMNS:
        if col not in feats.columns:
            out[col] = np.nan if col in NUMERIC else None
        elif col in NUMERIC:
            out[col] = pd.to_numeric(feats[col], errors="coerce").astype("float64").to_numpy()
        elif cleaned:
            out[col] = feats[col].to_numpy(dtype=object)  # already cleaned in Arrow
        else:
            out[col] = _text(feats[col]).to_numpy()
    out["prediction"] = _lower(labels)
    out["probability"] = pd.to_numeric(pd.Series(probs, dtype=object), errors="coerce").astype("float64")
    # per-request values are computed once per request, then repeated per record
    name, version = ok["served_model_name"].astype(object), ok["served_model_version"].astype(object)
    out["model_name"] = np.repeat(name.to_numpy(dtype=object), counts)
    out["model_version"] = np.repeat(version.to_numpy(dtype=object), counts)
    out["variant"] = np.repeat(np.array(variants, dtype=object), counts)
    out["model_id"] = np.repeat(model_ids(name, version).to_numpy(dtype=object), counts)
    if served is not None:  # A/B requests answered by several variants: each record its own model
        per = pd.DataFrame(served, columns=["model_name", "model_version", "variant"], dtype=object)
        for col in per.columns:
            out[col] = per[col].to_numpy()
        out["model_id"] = model_ids(per["model_name"], per["model_version"]).to_numpy()
    out["label"] = np.nan
    return out[MONITORING_COLUMNS]


def model_ids(name: pd.Series, version: pd.Series) -> pd.Series:
    """ "<name>/<version>", the key Lakehouse Monitoring calls model_id ("unknown" where the log has none)."""
    return name.fillna("unknown").astype(str) + "/" + version.fillna("unknown").astype(str)
