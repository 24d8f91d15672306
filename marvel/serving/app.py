"""What the endpoint does with a scoring request, without HTTP: validate, route, predict, answer, log.

Every request that reaches a scoring route and passes auth ends as exactly one complete inference-table row,
whatever its fate (scored, refused with 400/408/413, 503 when the journal is full or the server is shutting
down), as Databricks logs them; 401s, unknown routes and connections closed before a request was complete are
not model traffic and are not logged. The row is queued for the journal here; the HTTP layer commits it
(`commit`) before it sends the answer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marvel.serving.inference_log import InferenceLogWriter, JournalFull, make_row
from marvel.serving.models import ServedModel
from marvel.serving.routing import Router
from marvel.serving.validation import RequestError, client_request_id, parse_request

log = logging.getLogger(__name__)

# header names as the HTTP layer passes them: lower case
REQUEST_TIME_HEADER = "x-marvel-request-time"
CLIENT_ID_HEADER = "x-client-request-id"
VARIANT_HEADER = "X-Marvel-Variant"
SERVED_MODEL_HEADER = (
    "served-model-name"  # Databricks' header: the served entity (here: variant) that answered
)
# epoch ms between 2001 and 2286: anything else is a unit mistake (seconds, microseconds), not a time
_MIN_MS, _MAX_MS = 10**12, 10**13


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    seq: int = 0  # the journal sequence number of this request's row (0: none), committed before sending


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def error(status: int, code: str, message: str, **extra: Any) -> Answer:
    return Answer(status, {"error_code": code, "message": message, **extra})


class ServingApp:
    """The endpoint's logic; `marvel.serving.server` puts it behind HTTP."""

    def __init__(
        self,
        *,
        endpoint_name: str,
        models: Mapping[str, ServedModel],
        router: Router,
        writer: InferenceLogWriter,
        return_probabilities: bool = False,
        max_batch_records: int = 1000,
        accept_request_time: bool = False,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.models = dict(models)  # variant name -> loaded model
        self.router = router
        self.writer = writer
        self.return_probabilities = return_probabilities
        self.max_batch_records = max_batch_records
        self.accept_request_time = accept_request_time
        self.counts: Counter[int] = Counter()  # status code -> requests answered
        self.variant_records: Counter[str] = Counter()  # variant -> records scored
        self._lock = threading.Lock()

    # -- one request --------------------------------------------------------------------------------------
    def invoke(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        started: float | None = None,
        timestamp_ms: int | None = None,
    ) -> Answer:
        """Score one request body; always returns an answer and always queues exactly one row.

        `headers` have lower-case names; `started` (perf_counter) and `timestamp_ms` say when the request
        arrived, when the HTTP layer knows it before the body was read.
        """
        started = time.perf_counter() if started is None else started
        timestamp = timestamp_ms or now_ms()
        request_id = str(uuid.uuid4())
        crid = headers.get(CLIENT_ID_HEADER)
        served: tuple[str | None, str | None, str | None] = (None, None, None)
        keep_body = True
        try:
            timestamp = self._request_time(headers, timestamp)
            self.writer.check_room()
            parsed = parse_request(body, self.max_batch_records, content_type=headers.get("content-type"))
            crid = parsed.client_request_id or crid
            rp = bool(parsed.params.get("return_probabilities", self.return_probabilities))
            answer, served = self._score(parsed.records, rp)
        except RequestError as exc:
            crid = _best_effort_client_id(body) or crid
            answer = Answer(exc.status, exc.body())
        except JournalFull as exc:
            # the row of a refusal is small: the body is not kept, so a long outage cannot fill the disk
            keep_body = False
            answer = error(503, "TEMPORARILY_UNAVAILABLE", f"the inference log is full, retry later ({exc})")
            answer.headers["Retry-After"] = "5"
        except Exception as exc:  # a model failure answers 500 and is logged; the server keeps serving
            log.exception("scoring failed")
            answer = error(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        answer.headers["x-request-id"] = request_id
        answer.seq = self.record(
            answer,
            request=body.decode("utf-8", errors="replace") if keep_body else "",
            started=started,
            timestamp_ms=timestamp,
            request_id=request_id,
            client_request_id=crid,
            served=served,
        )
        return answer

    def refuse(
        self,
        answer: Answer,
        headers: Mapping[str, str],
        *,
        started: float,
        timestamp_ms: int | None = None,
        request: str = "",
    ) -> Answer:
        """A request the HTTP layer refuses before it has a body to score (413, 408, 503 on shutdown): answered
        and logged like any other, with the body not kept."""
        request_id = str(uuid.uuid4())
        answer.headers["x-request-id"] = request_id
        answer.seq = self.record(
            answer,
            request=request,
            started=started,
            timestamp_ms=timestamp_ms,
            request_id=request_id,
            client_request_id=headers.get(CLIENT_ID_HEADER),
        )
        return answer

    def record(
        self,
        answer: Answer,
        *,
        request: str,
        started: float,
        timestamp_ms: int | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        served: tuple[str | None, str | None, str | None] = (None, None, None),
    ) -> int:
        """Count the answer and queue its one inference-table row; returns the row's journal sequence number."""
        name, version, variant = served
        seq = self.writer.append(
            make_row(
                databricks_request_id=request_id,
                client_request_id=client_request_id,
                timestamp_ms=timestamp_ms or now_ms(),
                status_code=answer.status,
                execution_duration_ms=round((time.perf_counter() - started) * 1000),
                request=request,
                response=answer.body,
                served_model_name=name,
                served_model_version=version,
                variant=variant,
            )
        )
        with self._lock:
            self.counts[answer.status] += 1
        return seq

    def commit(self, answer: Answer) -> None:
        """Make the answer's row durable in the journal (before the answer is sent)."""
        self.writer.commit(answer.seq)

    def _request_time(self, headers: Mapping[str, str], default: int) -> int:
        """Replayed/simulated traffic carries its own time, honoured only when the config allows it."""
        value = headers.get(REQUEST_TIME_HEADER)
        if not self.accept_request_time or value is None:
            return default
        try:
            ms = int(value.strip())
        except ValueError:
            ms = 0
        if not _MIN_MS <= ms < _MAX_MS:
            raise RequestError(
                400,
                "BAD_REQUEST",
                f"X-Marvel-Request-Time must be epoch milliseconds, got {value[:40]!r}",
                field="X-Marvel-Request-Time",
            )
        return ms

    def _score(
        self, records: list[dict[str, Any]], return_probabilities: bool
    ) -> tuple[Answer, tuple[str | None, str | None, str | None]]:
        """Route each record, score each variant's records together, answer in the request's order."""
        assigned = [self.router.route(r) for r in records]
        present = set(assigned)
        used = [v for v in self.router.names if v in present]  # config order
        predictions: dict[str, list[Any]] = {}
        for variant in used:
            if len(used) == 1:
                rows = list(range(len(records)))
                subset = records
            else:
                rows = [i for i, a in enumerate(assigned) if a == variant]
                subset = [records[i] for i in rows]
            out = self.models[variant].predict_records(subset, return_probabilities)
            for key, values in out.items():
                column = predictions.setdefault(key, [None] * len(records))
                for i, value in zip(rows, values, strict=True):
                    column[i] = value
        label = ",".join(used)
        body: dict[str, Any] = {"predictions": predictions, "variant": label}
        if len(used) > 1:
            body["variants"] = assigned
        with self._lock:
            self.variant_records.update(assigned)
        models = [self.models[v] for v in used]
        served = (
            ",".join(dict.fromkeys(m.name for m in models)),
            ",".join(m.version for m in models),
            label,
        )
        return Answer(200, body, {VARIANT_HEADER: label, SERVED_MODEL_HEADER: label}), served

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self.counts.values()),
                "by_status": {str(k): v for k, v in sorted(self.counts.items())},
                "records_by_variant": dict(self.variant_records),
                "rows_written": self.writer.written,
                "rows_pending": self.writer.pending,
                "rows_set_aside": self.writer.fallback,
                "rows_recovered": self.writer.recovered,
            }


def _best_effort_client_id(body: bytes) -> str | None:
    """The client's id of a rejected request, when its body is JSON enough to carry one."""
    try:
        return client_request_id(json.loads(body))
    except (ValueError, RequestError, RecursionError):
        return None
