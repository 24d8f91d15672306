"""The HTTP layer: a Starlette app (served by uvicorn, see `marvel.serving.http`) around a `ServingApp`.

Routes, as MLflow's scoring server and Databricks Model Serving spell them:
    GET|HEAD /ping, /health                                  200 (no auth: load balancers probe it)
    GET  /version                                            MLflow's version, as MLflow's server answers
    POST /invocations                                        score (MLflow; JSON or text/csv)
    POST /serving-endpoints/<endpoint name>/invocations      score (Databricks)
    GET  /serving-endpoints/<endpoint name>                  describe the endpoint, in brief (auth)
    GET  /api/2.0/serving-endpoints/<endpoint name>          the endpoint as Databricks' REST API shows it
                                                             (auth; databricks-sdk `serving_endpoints.get`)

A scoring request's body is read here, with limits: a declared or actual size over `max_body_bytes` is a
413 (the body is read and dropped up to 16x the limit, so the client gets the answer, then the connection
closes), a body that does not arrive within `body_timeout` seconds is a 408, and one cut short by shutdown
is a 503. Each of these, like every scored or refused request, is one inference-table row; a client that
disconnects before its request is complete leaves none.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import mlflow
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from marvel.serving.app import Answer, ServingApp, error, now_ms

log = logging.getLogger(__name__)

_DRAIN_FACTOR = 16  # bodies up to this many times the limit are read and dropped before a 413
JSON = "application/json"


class _Cut(Exception):
    """A body refused (413), late (408) or cut short by shutdown (503); `close` when the rest of it was not
    read, so the connection cannot carry another request."""

    def __init__(self, answer: Answer, close: bool = True) -> None:
        self.answer = answer
        self.close = close


class Scoring:
    """The scoring and describe endpoints over one `ServingApp`."""

    def __init__(
        self,
        app: ServingApp,
        *,
        token: str | None,
        max_body_bytes: int,
        body_timeout: float,
        max_inflight: int,
        commit_in_thread: bool,
        describe: Callable[[], dict[str, Any]],
        describe_databricks: Callable[[], dict[str, Any]],
    ) -> None:
        self.app = app
        self.token = token or None
        self.max_body_bytes = int(max_body_bytes)
        self.body_timeout = float(body_timeout)
        self.max_inflight = int(max_inflight)
        self.commit_in_thread = commit_in_thread  # fsync: commit off the event loop, so commits group
        self.describe = describe
        self.describe_databricks = describe_databricks
        self.inflight = 0
        self.stopping = False
        self._deadlines: set[asyncio.Timeout] = set()
        self._stop_at: float | None = None

    # -- shutdown ---------------------------------------------------------------------------------------
    def begin_shutdown(self, loop: asyncio.AbstractEventLoop, grace: float) -> None:
        """Bodies still arriving get `grace` seconds more, then a 503 (called on the event loop)."""
        self.stopping = True
        self._stop_at = loop.time() + grace
        for deadline in self._deadlines:
            when = deadline.when()
            if when is None or when > self._stop_at:
                deadline.reschedule(self._stop_at)

    # -- auth -------------------------------------------------------------------------------------------
    def authorised(self, request: Request) -> bool:
        if self.token is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())

    @staticmethod
    def unauthorised() -> Response:
        answer = error(401, "UNAUTHENTICATED", "missing or wrong bearer token (Authorization: Bearer ...)")
        answer.headers["WWW-Authenticate"] = 'Bearer realm="marvel"'
        return respond(answer)

    # -- routes -----------------------------------------------------------------------------------------
    async def invocations(self, request: Request) -> Response:
        if not self.authorised(request):
            return self.unauthorised()
        started, timestamp = time.perf_counter(), now_ms()
        headers = dict(request.headers.items())
        if self.inflight >= self.max_inflight or self.stopping:
            reason = "the endpoint is shutting down" if self.stopping else "too many requests in flight"
            answer = error(503, "TEMPORARILY_UNAVAILABLE", f"{reason}, retry later")
            answer.headers["Retry-After"] = "1"
            answer.headers["Connection"] = "close"  # the body is not read
            return await self._answer(
                self.app.refuse(answer, headers, started=started, timestamp_ms=timestamp)
            )
        self.inflight += 1
        try:
            try:
                body = await self._body(request, headers)
            except ClientDisconnect:
                return Response(status_code=499)  # nobody to answer and, by design, no row
            except _Cut as cut:
                answer = self.app.refuse(cut.answer, headers, started=started, timestamp_ms=timestamp)
                if cut.close:
                    answer.headers["Connection"] = "close"
                return await self._answer(answer)
            return await self._answer(self.app.invoke(body, headers, started=started, timestamp_ms=timestamp))
        finally:
            self.inflight -= 1

    async def _answer(self, answer: Answer) -> Response:
        """Commit the answer's row to the journal, then answer."""
        if answer.seq:
            try:
                if self.commit_in_thread:
                    await asyncio.get_running_loop().run_in_executor(None, self.app.commit, answer)
                else:
                    self.app.commit(answer)
            except OSError:
                log.exception("the inference log journal cannot be written")
                return respond(error(503, "TEMPORARILY_UNAVAILABLE", "the inference log cannot be written"))
        return respond(answer)

    async def _body(self, request: Request, headers: dict[str, str]) -> bytes:
        """The body within the size and time limits, or `_Cut` with the 408/413/503 answer."""
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        size = int(declared) if declared is not None and declared.isascii() and declared.isdigit() else None
        loop = asyncio.get_running_loop()
        when = loop.time() + self.body_timeout
        if self._stop_at is not None:
            when = min(when, self._stop_at)
        chunks: list[bytes] = []
        received = 0
        too_big = size is not None and size > limit
        drained = True  # the whole body was read (the connection can carry the next request)
        try:
            async with asyncio.timeout_at(when) as deadline:
                self._deadlines.add(deadline)
                try:
                    if too_big and size is not None and size > limit * _DRAIN_FACTOR:
                        drained = False
                    else:
                        async for chunk in request.stream():
                            received += len(chunk)
                            if received > limit:
                                too_big = True
                                if received > limit * _DRAIN_FACTOR:
                                    drained = False
                                    break
                            elif chunk:
                                chunks.append(chunk)
                finally:
                    self._deadlines.discard(deadline)
        except TimeoutError:
            if self.stopping:
                raise _Cut(error(503, "TEMPORARILY_UNAVAILABLE", "the endpoint is shutting down")) from None
            raise _Cut(
                error(408, "REQUEST_TIMEOUT", f"the body did not arrive within {self.body_timeout:g}s")
            ) from None
        if too_big:
            shown = size if size is not None else f"more than {limit}"
            raise _Cut(
                error(
                    413,
                    "REQUEST_LIMIT_EXCEEDED",
                    f"body of {shown} bytes exceeds the limit of {limit} (deploy.max_body_bytes)",
                ),
                close=not drained,
            )
        return b"".join(chunks)

    async def describe_endpoint(self, request: Request) -> Response:
        if not self.authorised(request):
            return self.unauthorised()
        return respond(Answer(200, self.describe()))

    async def describe_api(self, request: Request) -> Response:
        if not self.authorised(request):
            return self.unauthorised()
        return respond(Answer(200, self.describe_databricks()))


def respond(answer: Answer) -> Response:
    payload = json.dumps(answer.body, separators=(",", ":")).encode()
    return Response(payload, status_code=answer.status, headers=answer.headers, media_type=JSON)


async def ping(request: Request) -> Response:
    return respond(Answer(200, {"status": "ok"}))


async def version(request: Request) -> Response:
    return Response(mlflow.__version__, media_type=JSON)  # what MLflow's scoring server answers


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 405:
        return respond(error(405, "METHOD_NOT_ALLOWED", f"{request.method} {path} is not supported"))
    return respond(error(exc.status_code, "ENDPOINT_NOT_FOUND", f"no route {request.method} {path}"))


class _TrailingSlash:
    """`/invocations/` is `/invocations` (a redirect would lose a POST body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


def build_asgi(scoring: Scoring) -> ASGIApp:
    name = scoring.app.endpoint_name
    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", scoring.invocations, methods=["POST"]),
        Route(f"/serving-endpoints/{name}/invocations", scoring.invocations, methods=["POST"]),
        Route(f"/serving-endpoints/{name}", scoring.describe_endpoint, methods=["GET"]),
        Route(f"/api/2.0/serving-endpoints/{name}", scoring.describe_api, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _http_error, 405: _http_error})
    app.router.redirect_slashes = False
    return _TrailingSlash(app)
