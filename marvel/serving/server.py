"""The HTTP layer: stdlib `ThreadingHTTPServer` (one thread per connection, HTTP/1.1 keep-alive) around a
`ServingApp`.

Routes, as MLflow's scoring server and Databricks Model Serving spell them:
    GET  /ping, /health                                      200 (no auth: load balancers probe it)
    POST /invocations                                        score (MLflow)
    POST /serving-endpoints/<endpoint name>/invocations      score (Databricks)
    GET  /serving-endpoints/<endpoint name>                  describe the endpoint (auth)
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from marvel.serving.app import Answer, ServingApp

log = logging.getLogger(__name__)

# bodies up to this many times max_body_bytes are read and discarded before a 413, so the client gets the
# answer instead of a reset connection; anything bigger is answered and the connection closed
_DRAIN_FACTOR = 16
_CHUNK = 1 << 16


class ServingServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold up shutdown; `drain()` waits for work
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: ServingApp,
        *,
        token: str | None,
        max_body_bytes: int,
        describe: Callable[[], dict[str, Any]],
    ) -> None:
        super().__init__(address, ServingHandler)
        self.app = app
        self.token = token or None
        self.max_body_bytes = max_body_bytes
        self.describe = describe
        self.stopping = False
        self._busy = 0
        self._idle = threading.Condition()

    # requests in flight, so stop() can let them finish (and log) before the inference log closes
    def enter(self) -> bool:
        with self._idle:
            if self.stopping:
                return False
            self._busy += 1
            return True

    def leave(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        with self._idle:
            self.stopping = True
            return self._idle.wait_for(lambda: self._busy == 0, timeout)


class ServingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ServingServer
    timeout = 60  # seconds an idle keep-alive connection is kept
    # headers and body leave in one segment (buffered writer, flushed per request) and without Nagle: a
    # small write after a small write otherwise waits ~40 ms for the client's delayed ACK
    wbufsize = -1
    disable_nagle_algorithm = True

    # -- plumbing ---------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, answer: Answer) -> None:
        payload = json.dumps(answer.body, separators=(",", ":")).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, code: str, message: str, **extra: Any) -> Answer:
        return Answer(status, {"error_code": code, "message": message, **extra})

    def _endpoint_path(self) -> str:
        return f"/serving-endpoints/{self.server.app.endpoint_name}"

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _authorised(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    def _unauthorised(self) -> Answer:
        answer = self._error(
            401, "UNAUTHENTICATED", "missing or wrong bearer token (Authorization: Bearer ...)"
        )
        answer.headers["WWW-Authenticate"] = 'Bearer realm="marvel"'
        return answer

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        try:
            n = int(value) if value is not None else -1
        except ValueError:
            n = -1
        return n if n >= 0 else None

    def _discard_body(self) -> None:
        """Read an unwanted body so the keep-alive stream stays in sync, or close when it is too big."""
        n = self._content_length()
        if n is None or n > self.server.max_body_bytes * _DRAIN_FACTOR:
            self.close_connection = True
            return
        while n > 0:
            chunk = self.rfile.read(min(n, _CHUNK))
            if not chunk:
                break
            n -= len(chunk)

    # -- routes ---------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self._path()
        if path in ("/ping", "/health"):
            self._send(Answer(200, {"status": "ok"}))
        elif path == self._endpoint_path():
            self._send(Answer(200, self.server.describe()) if self._authorised() else self._unauthorised())
        else:
            self._send(self._error(404, "ENDPOINT_NOT_FOUND", f"no route GET {path}"))

    def do_POST(self) -> None:
        path = self._path()
        if path not in ("/invocations", f"{self._endpoint_path()}/invocations"):
            self._discard_body()
            self._send(
                self._error(
                    404,
                    "ENDPOINT_NOT_FOUND",
                    f"no route POST {path}: use /invocations or {self._endpoint_path()}/invocations",
                )
            )
            return
        if not self._authorised():
            self._discard_body()
            self._send(self._unauthorised())
            return
        if not self.server.enter():
            self.close_connection = True
            self._send(self._error(503, "TEMPORARILY_UNAVAILABLE", "the endpoint is shutting down"))
            return
        try:
            self._send(self._invoke())
        finally:
            self.server.leave()

    def _invoke(self) -> Answer:
        app = self.server.app
        length = self._content_length()
        if length is None:
            self.close_connection = True  # without a length the rest of the stream cannot be delimited
            answer = self._error(411, "BAD_REQUEST", "a Content-Length header is required")
            app.record(answer, request="", started=time.perf_counter())
            return answer
        if length > self.server.max_body_bytes:
            started = time.perf_counter()
            self._discard_body()
            answer = self._error(
                413,
                "REQUEST_LIMIT_EXCEEDED",
                f"body of {length} bytes exceeds the limit of {self.server.max_body_bytes} (deploy.max_body_bytes)",
            )
            # the body is not kept (as Databricks logs oversized payloads as null): the row says why
            app.record(answer, request="", started=started)
            return answer
        body = self.rfile.read(length)
        return app.invoke(body, dict(self.headers.items()))

    def _method_not_allowed(self) -> None:
        self._discard_body()
        self._send(self._error(405, "METHOD_NOT_ALLOWED", f"{self.command} is not supported"))

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed
