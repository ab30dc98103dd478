"""A fault-injecting TCP proxy in front of a real redis-server, for the robustness tests.

``FaultProxy`` listens on 127.0.0.1 (a port of its own) and, for each client connection,
opens one connection to the upstream server and pipes bytes both ways, from one background
thread (``selectors``, non-blocking sockets). It never parses RESP: HELLO, RESP3 push
messages (client tracking, pub/sub), pipelines and MULTI pass through untouched, and each
side's half-close is passed on to the other.

Faults, switched at runtime from any thread::

    cut_after_forward   the server's reply is dropped and the client reset: the command
                        was applied, the client never hears so (a blind retry duplicates it)
    cut_before_forward  a request is dropped and the client reset: the command never
                        reaches the server
    delay               every chunk, both ways, is held back (slow network, slow server)
    reset_all           every open connection is reset now
    refuse              the server looks unreachable: open connections are reset, new ones
                        are accepted and reset at once

Cuts are decided per chunk the proxy receives (a chunk is what one ``recv`` returned: one
small request or reply, or a piece of a big one), with a ``random.Random`` of the fault's
own, so a seeded run makes the same decisions for the same requests. ``match`` restricts a
cut to the chunks of requests that contain some bytes (``match=b"INCR"``), which spares the
connection handshake (HELLO, CLIENT SETINFO) of a client that reconnects.

``stats`` counts connections, cuts of each kind and bytes delivered each way.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TypeVar

log = logging.getLogger(__name__)

Upstream = tuple[str, int] | str | Path
T = TypeVar("T")

_RECV_SIZE = 256 * 1024
_HIGH_WATER = 4 * 1024 * 1024  # stop reading a side while this much of it waits for the other side
_REQUEST_MEMORY = 64 * 1024  # how much of the current request ``match`` looks at
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST
_CALL_TIMEOUT = 10.0

STAT_KEYS = (
    "accepted",  # connections the listener accepted, refused ones included
    "refused",  # accepted and reset at once while refusing
    "upstream_failed",  # accepted, but the upstream server could not be reached
    "cut_after_forward",
    "cut_before_forward",
    "reset",  # open connections reset by reset_all() or refuse(True)
    "bytes_to_server",  # delivered to the upstream server
    "bytes_to_client",  # delivered to clients
)


class _Cut:
    """One cut fault: how likely on each chunk, how many more cuts, on which requests."""

    def __init__(self) -> None:
        self.probability = 0.0
        self.remaining: int | None = None  # None: no limit
        self.match: bytes | None = None
        self.random = random.Random()

    def arm(self, probability: float, count: int | None, match: bytes | None, seed: int | None) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], not {probability!r}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0 or None, not {count!r}")
        self.probability, self.remaining, self.match = probability, count, match
        self.random = random.Random(seed)

    def fires(self, request: bytes | bytearray) -> bool:
        """Whether to cut now, for a chunk of ``request`` (the proxy holds its lock)."""
        if self.probability == 0.0 or self.remaining == 0:
            return False
        if self.match is not None and self.match not in request:
            return False
        if self.probability < 1.0 and self.random.random() >= self.probability:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


class _Flow:
    """One direction of a connection: chunks held back by the delay, then bytes to send."""

    def __init__(self, src: socket.socket, dst: socket.socket, counter: str) -> None:
        self.src, self.dst, self.counter = src, dst, counter
        self.held: collections.deque[tuple[float, bytes]] = collections.deque()
        self.out = bytearray()
        self.size = 0  # bytes held or in ``out``
        self.eof = False  # src sent FIN
        self.shut = False  # FIN passed on to dst

    def hold(self, chunk: bytes, ready_at: float) -> None:
        if self.held:
            ready_at = max(ready_at, self.held[-1][0])  # a shorter new delay never reorders bytes
        self.held.append((ready_at, chunk))
        self.size += len(chunk)

    def release(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            self.out += self.held.popleft()[1]


class _Conn:
    """A client connection and its upstream connection."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.to_server = _Flow(client, server, "bytes_to_server")
        self.to_client = _Flow(server, client, "bytes_to_client")
        self.request = bytearray()  # the client's bytes since the server last sent any (capped)
        self.replied = True
        self.masks: dict[socket.socket, int] = {client: 0, server: 0}
        self.closed = False

    def reading(self, sock: socket.socket) -> _Flow:
        return self.to_server if sock is self.client else self.to_client

    def writing(self, sock: socket.socket) -> _Flow:
        return self.to_client if sock is self.client else self.to_server


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``, injecting faults on demand.

    ``upstream`` is ``(host, port)`` or the path of a unix socket. Use as a context manager,
    or ``start()`` / ``stop()``. Every method is thread-safe; faults can be set before
    ``start()``. ``stop()`` closes every socket, joins the thread and re-raises (as
    ``RuntimeError``) anything that broke the proxy's loop.
    """

    def __init__(self, upstream: Upstream, *, connect_timeout: float = 2.0) -> None:
        self.upstream = upstream
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._after = _Cut()
        self._before = _Cut()
        self._delay = 0.0
        self._refusing = False
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        self._open = 0  # connections open now, written by the loop under the lock
        self._conns: list[_Conn] = []  # touched by the loop thread only
        self._calls: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._port: int | None = None
        self._error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1 (a free port) and start the proxy's thread."""
        if self._port is not None:
            raise RuntimeError("a FaultProxy starts once")
        listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        wake_r, wake_w = socket.socketpair()
        for sock in (listener, wake_r, wake_w):
            sock.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "accept")
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        self._listener, self._wake_r, self._wake_w, self._selector = listener, wake_r, wake_w, selector
        self._port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"faultproxy-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, join the thread; idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake()
        thread.join(timeout=_CALL_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"{thread.name} did not stop")
        self._thread = None
        if self._wake_w is not None:
            self._wake_w.close()
            self._wake_w = None
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError("the fault proxy's loop failed") from error

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    # -- faults ------------------------------------------------------------------------------

    def cut_after_forward(
        self, probability: float = 1.0, *, count: int | None = None, match: bytes | None = None, seed: int | None = None
    ) -> None:
        """Drop a reply chunk from the server, with ``probability``, and reset the client.

        The request was forwarded and applied; only its reply is lost. At most ``count``
        cuts (None: no limit), only on replies to requests containing ``match`` (None: any
        chunk). ``cut_after_forward(0)`` disarms it.
        """
        with self._lock:
            self._after.arm(probability, count, match, seed)

    def cut_before_forward(
        self, probability: float = 1.0, *, count: int | None = None, match: bytes | None = None, seed: int | None = None
    ) -> None:
        """Drop a request chunk from the client, with ``probability``, and reset the client.

        The request never reaches the server (a request already partly forwarded is left
        incomplete, which the server discards). ``count``/``match``/``seed`` as for
        ``cut_after_forward``; ``cut_before_forward(0)`` disarms it.
        """
        with self._lock:
            self._before.arm(probability, count, match, seed)

    def delay(self, seconds: float) -> None:
        """Hold every chunk received from now on, both ways, ``seconds`` before passing it on."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0, not {seconds!r}")
        with self._lock:
            self._delay = float(seconds)
        self._wake()

    def refuse(self, refusing: bool = True, *, reset_open: bool = True) -> None:
        """While refusing, reset new connections at once; turning it on resets the open ones
        (unless ``reset_open=False``: they stay, until a cut resets them)."""
        with self._lock:
            self._refusing = refusing
        if refusing and reset_open and self.running:
            self._call(self._reset_open)

    def reset_all(self) -> int:
        """Reset (RST) every open connection now; returns how many."""
        if not self.running:
            return 0
        return self._call(self._reset_open)

    def heal(self) -> None:
        """Disarm every fault: no cuts, no delay, not refusing."""
        with self._lock:
            self._after.arm(0.0, None, None, None)
            self._before.arm(0.0, None, None, None)
            self._delay = 0.0
            self._refusing = False
        self._wake()

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters (``STAT_KEYS``) and ``open``: connections open now."""
        with self._lock:
            snapshot = dict(self._stats)
            snapshot["open"] = self._open
        return snapshot

    # -- calls into the loop thread ------------------------------------------------------------

    def _wake(self) -> None:
        wake_w = self._wake_w
        if wake_w is not None:
            with contextlib.suppress(OSError):  # already woken (buffer full), or stopped
                wake_w.send(b"x")

    def _call(self, function: Callable[[], T]) -> T:
        future: Future[object] = Future()
        self._calls.put((function, future))
        self._wake()
        return future.result(timeout=_CALL_TIMEOUT)  # type: ignore[return-value]

    def _run_calls(self) -> None:
        while True:
            try:
                function, future = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(function())
            except Exception as exc:  # handed to the caller
                future.set_exception(exc)

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._selector is not None
        try:
            while not self._stopping.is_set():
                for key, events in self._selector.select(self._timeout()):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._on_event(key.data, key.fileobj, events)  # type: ignore[arg-type]
                self._run_calls()
                now = time.monotonic()
                for conn in list(self._conns):
                    for flow in (conn.to_server, conn.to_client):
                        if not conn.closed and flow.held and flow.held[0][0] <= now:
                            flow.release(now)
                            self._send(conn, flow)
        except BaseException as exc:
            log.exception("fault proxy loop failed")
            self._error = exc
        finally:
            self._shutdown()

    def _timeout(self) -> float | None:
        first = min((f.held[0][0] for c in self._conns for f in (c.to_server, c.to_client) if f.held), default=None)
        return None if first is None else max(0.0, first - time.monotonic())

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        with self._lock:
            self._stats["accepted"] += 1
            refusing = self._refusing
            if refusing:
                self._stats["refused"] += 1
        if refusing:
            _reset(client)
            return
        try:
            server = self._connect_upstream()
        except OSError as exc:
            log.warning("fault proxy: upstream %r unreachable: %s", self.upstream, exc)
            with self._lock:
                self._stats["upstream_failed"] += 1
            _reset(client)
            return
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(client, server)
        self._conns.append(conn)
        with self._lock:
            self._open = len(self._conns)
        self._update(conn)

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, tuple):
            server = socket.create_connection(self.upstream, timeout=self.connect_timeout)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.settimeout(self.connect_timeout)
                server.connect(str(self.upstream))
            except OSError:
                server.close()
                raise
        server.setblocking(False)
        return server

    def _on_event(self, conn: _Conn, sock: socket.socket, events: int) -> None:
        if not conn.closed and events & selectors.EVENT_WRITE:
            self._send(conn, conn.writing(sock))
        if not conn.closed and events & selectors.EVENT_READ:
            self._receive(conn, conn.reading(sock))

    def _receive(self, conn: _Conn, flow: _Flow) -> None:
        try:
            chunk = flow.src.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, rst=True)
            return
        if not chunk:
            flow.eof = True
            self._send(conn, flow)  # passes the FIN on once everything before it is sent
            return
        to_server = flow is conn.to_server
        with self._lock:
            if to_server:
                if conn.replied:
                    conn.request.clear()
                    conn.replied = False
                conn.request += chunk[: _REQUEST_MEMORY - len(conn.request)]
                cut = self._before.fires(conn.request)
            else:
                cut = self._after.fires(conn.request)
                conn.replied = True
            kind = "cut_before_forward" if to_server else "cut_after_forward"
            if cut:
                self._stats[kind] += 1
            delay = self._delay
        if cut:
            log.debug("fault proxy: %s on port %s", kind, self._port)
            self._close(conn, rst=True)
            return
        now = time.monotonic()
        flow.hold(chunk, now + delay)
        if delay == 0.0:
            flow.release(now)
            self._send(conn, flow)
        else:
            self._update(conn)

    def _send(self, conn: _Conn, flow: _Flow) -> None:
        try:
            with self._lock:  # whoever has seen the bytes arrive sees them counted
                while flow.out:
                    n = flow.dst.send(flow.out)
                    del flow.out[:n]
                    flow.size -= n
                    self._stats[flow.counter] += n
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(conn, rst=True)
            return
        if flow.eof and not flow.held and not flow.out and not flow.shut:
            flow.shut = True
            try:
                flow.dst.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn, rst=False)
                return
        if conn.to_server.shut and conn.to_client.shut:
            self._close(conn, rst=False)
            return
        self._update(conn)

    def _update(self, conn: _Conn) -> None:
        """Register each socket of ``conn`` for what it waits for (read: room, write: bytes)."""
        assert self._selector is not None
        for sock in (conn.client, conn.server):
            reading, writing = conn.reading(sock), conn.writing(sock)
            mask = 0
            if not reading.eof and reading.size < _HIGH_WATER:
                mask |= selectors.EVENT_READ
            if writing.out:
                mask |= selectors.EVENT_WRITE
            old = conn.masks[sock]
            if mask == old:
                continue
            if old == 0:
                self._selector.register(sock, mask, conn)
            elif mask == 0:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, mask, conn)
            conn.masks[sock] = mask

    def _close(self, conn: _Conn, *, rst: bool) -> None:
        """Close both sockets; with ``rst`` the client is reset, not closed gracefully."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.remove(conn)
        with self._lock:  # counted before anyone can see the close
            self._open = len(self._conns)
        for sock in (conn.client, conn.server):
            if conn.masks[sock] and self._selector is not None:
                self._selector.unregister(sock)
            if rst and sock is conn.client:
                _reset(sock)
            else:
                sock.close()

    def _reset_open(self) -> int:
        conns = list(self._conns)
        with self._lock:
            self._stats["reset"] += len(conns)
        for conn in conns:
            self._close(conn, rst=True)
        return len(conns)

    def _shutdown(self) -> None:
        for conn in list(self._conns):
            self._close(conn, rst=True)
        for sock in (self._listener, self._wake_r):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()
        self._stopping.set()
        while True:
            try:
                _, future = self._calls.get_nowait()
            except queue.Empty:
                break
            future.set_exception(RuntimeError("the fault proxy stopped"))


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a RST instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    sock.close()
