"""uvicorn around the serving app: strict HTTP/1.1 framing, bounded connections, timeouts, graceful stop.

uvicorn's h11 protocol does the framing. Two things are added to it here:
- framing headers are taken only when unambiguous: duplicate Content-Length headers (even equal ones, or a
  "5, 5" list) and Content-Length together with Transfer-Encoding are a 400 and the connection closes, so no
  proxy in front can read a request's length differently from us (request smuggling);
- a connection must send its request headers within `header_timeout` seconds (a trickling client is closed,
  before any request, so without a row), and at most `max_connections` connections are open per worker (more
  are closed on accept). An idle keep-alive connection is closed after `keep_alive` seconds (uvicorn).

`HttpServer` runs uvicorn's `Server` on its own event loop in a background thread, on a socket bound here
(port 0 picks a free one), so the caller knows the URL before the first request and stops it when it likes:
in-flight requests finish (bodies still arriving get `graceful_timeout`), then the server closes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import h11
import uvicorn
from h11._readers import _decode_header_lines, maybe_read_from_IDLE_client, request_line_re  # pinned h11
from h11._util import LocalProtocolError, validate
from uvicorn.protocols.http.h11_impl import H11Protocol

from marvel.serving.server import Scoring

log = logging.getLogger(__name__)
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # "Started server process ..." is noise here
_FRAMING = (b"content-length", b"transfer-encoding")


def strict_request_reader(buf: Any) -> h11.Request | None:
    """h11's reader of a request head, refusing ambiguous framing headers h11 itself would tolerate."""
    lines = buf.maybe_extract_lines()
    if lines is None:
        if buf.is_next_line_obviously_invalid_request_line():
            raise LocalProtocolError("illegal request line")
        return None
    if not lines:
        raise LocalProtocolError("no request line received")
    matches = validate(request_line_re, lines[0], "illegal request line: {!r}", lines[0])
    names = [line.split(b":", 1)[0].strip().lower() for line in lines[1:]]
    lengths = [line for name, line in zip(names, lines[1:], strict=True) if name == b"content-length"]
    if len(lengths) > 1 or any(b"," in line.split(b":", 1)[-1] for line in lengths):
        raise LocalProtocolError("duplicate Content-Length", error_status_hint=400)
    if lengths and b"transfer-encoding" in names:
        raise LocalProtocolError("both Content-Length and Transfer-Encoding", error_status_hint=400)
    return h11.Request(headers=list(_decode_header_lines(lines[1:])), _parsed=True, **matches)


class StrictConnection(h11.Connection):
    def _get_io_object(self, role: Any, event: Any, io_dict: Any) -> Any:
        reader = super()._get_io_object(role, event, io_dict)
        return strict_request_reader if reader is maybe_read_from_IDLE_client else reader


def protocol_class(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    class Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = StrictConnection(h11.SERVER, self.config.h11_max_incomplete_event_size or 16 * 1024)
            self._head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                # an answer is written in more than one piece: without this, Nagle holds the second one
                # until the client's delayed ACK (~40 ms per request)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if len(self.connections) > max_connections:
                log.warning(
                    "%d connections open (deploy.max_connections): closing a new one", len(self.connections)
                )
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()  # part of a request head: it must be complete in time
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(header_timeout, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # no complete request: nothing to answer, nothing to log

    return Protocol


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on host:port (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class HttpServer:
    """uvicorn serving `scoring` on `sock`, in a background thread."""

    def __init__(
        self,
        scoring: Scoring,
        asgi: Any,
        sock: socket.socket,
        *,
        header_timeout: float = 10.0,
        keep_alive: float = 5.0,
        graceful_timeout: float = 30.0,
        max_connections: int = 1000,
    ) -> None:
        self.scoring = scoring
        self.sock = sock
        self.graceful_timeout = float(graceful_timeout)
        config = uvicorn.Config(
            asgi,
            http=protocol_class(float(header_timeout), int(max_connections)),
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_keep_alive=max(1, round(float(keep_alive))),
            timeout_graceful_shutdown=max(1, round(self.graceful_timeout)),
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.server.should_exit

    def stop(self) -> bool:
        """Stop accepting, let in-flight requests finish (bodies still arriving get `graceful_timeout`, then
        503), close; True when it stopped in time."""
        loop = self.loop
        if loop is not None and self.thread.is_alive():
            grace = self.graceful_timeout / 2
            loop.call_soon_threadsafe(self.scoring.begin_shutdown, loop, grace)
        self.server.should_exit = True
        self.thread.join(self.graceful_timeout + 15)
        self.sock.close()
        return not self.thread.is_alive()
