"""The fault proxy itself, with redis-py clients against a real redis-server: each fault does
what it says (applied or not, reply lost or not), and the proxy leaves nothing behind."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faultproxy import STAT_KEYS, FaultProxy
from tests.servers import RedisProcess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server of this module's own, on a TCP port (and its unix socket)."""
    server = RedisProcess(Path(tmp_path_factory.mktemp("faultproxy")), modules=False, port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def proxy(upstream: RedisProcess) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", upstream.port)) as proxy:
        yield proxy


@pytest.fixture
def direct(upstream: RedisProcess) -> Iterator[redis.Redis]:
    """A client on the server's unix socket, past the proxy: what the server really holds."""
    client = redis.Redis(unix_socket_path=str(upstream.socket), decode_responses=True)
    yield client
    client.close()


def through(proxy: FaultProxy, **options: Any) -> redis.Redis:
    """A client through the proxy that never retries by itself (unlike redis-py 8's default)."""
    options = {"retry": Retry(NoBackoff(), 0), "decode_responses": True} | options
    return redis.Redis(host="127.0.0.1", port=proxy.port, **options)


# -- a transparent pipe ------------------------------------------------------------------------


def test_forwards_commands_pipelines_and_a_1mb_value(proxy: FaultProxy, direct: redis.Redis, prefix: str) -> None:
    big = os.urandom(1 << 20)
    with through(proxy, decode_responses=False) as client:
        assert client.set(f"{prefix}k", "v")
        assert client.get(f"{prefix}k") == b"v"
        pipe = client.pipeline()
        for _ in range(100):
            pipe.incr(f"{prefix}n")
        pipe.get(f"{prefix}n")
        assert pipe.execute() == [*range(1, 101), b"100"]
        assert client.set(f"{prefix}big", big)
        assert client.get(f"{prefix}big") == big
    assert direct.strlen(f"{prefix}big") == len(big)
    stats = proxy.stats
    assert stats["bytes_to_server"] > len(big)
    assert stats["bytes_to_client"] > len(big)
    assert stats["accepted"] == 1
    assert stats["cut_after_forward"] == stats["cut_before_forward"] == stats["reset"] == 0


def test_many_clients_at_once(proxy: FaultProxy, direct: redis.Redis, prefix: str) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with through(proxy) as client:
                for _ in range(50):
                    client.incr(f"{prefix}n")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert direct.get(f"{prefix}n") == "400"
    assert proxy.stats["accepted"] == 8


def test_resp3_hello_and_tracking_pushes_pass_through(proxy: FaultProxy, direct: redis.Redis, prefix: str) -> None:
    pushes: list[object] = []
    connection = redis.Connection(host="127.0.0.1", port=proxy.port, protocol=3)
    try:
        connection.connect()
        assert connection.handshake_metadata[b"proto"] == 3
        connection._parser.set_invalidation_push_handler(pushes.append)
        connection.send_command("CLIENT", "TRACKING", "ON")
        assert connection.read_response() == b"OK"
        direct.set(f"{prefix}k", "1")
        connection.send_command("GET", f"{prefix}k")
        assert connection.read_response() == b"1"
        direct.set(f"{prefix}k", "2")
        assert connection.can_read(timeout=10)
        connection.read_response(push_request=True)
        assert pushes == [[b"invalidate", [f"{prefix}k".encode()]]]
    finally:
        connection.disconnect()


def test_a_half_close_is_passed_on(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        raw.sendall(b"PING\r\n")
        raw.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := raw.recv(4096):  # until the server's FIN, passed on
            received += chunk
    assert received == b"+PONG\r\n"


def test_a_unix_socket_upstream(upstream: RedisProcess, direct: redis.Redis, prefix: str) -> None:
    with FaultProxy(upstream.socket) as proxy, through(proxy) as client:
        assert client.set(f"{prefix}k", "v")
    assert direct.get(f"{prefix}k") == "v"


def test_an_unreachable_upstream_resets_the_client() -> None:
    with FaultProxy(("127.0.0.1", free_port())) as proxy, through(proxy) as client:
        with pytest.raises(redis.ConnectionError):
            client.ping()
        assert proxy.stats["upstream_failed"] == 1


# -- cuts ----------------------------------------------------------------------------------------


def test_cut_after_forward_applies_the_command_and_loses_the_reply(
    proxy: FaultProxy, direct: redis.Redis, prefix: str
) -> None:
    with through(proxy) as client:
        assert client.ping()  # connected: the handshake's replies are behind us
        proxy.cut_after_forward(1.0)
        with pytest.raises(redis.ConnectionError):
            client.incr(f"{prefix}n")
        assert direct.get(f"{prefix}n") == "1"
        assert proxy.stats["cut_after_forward"] == 1
        assert proxy.stats["open"] == 0
        proxy.cut_after_forward(0)
        assert client.incr(f"{prefix}n") == 2  # the next command reconnects


def test_cut_after_forward_count_and_match_spare_the_rest(proxy: FaultProxy, direct: redis.Redis, prefix: str) -> None:
    proxy.cut_after_forward(1.0, count=2, match=b"INCR")
    with through(proxy) as client:  # connects, CLIENT SETINFO: not cut
        for _ in range(2):
            with pytest.raises(redis.ConnectionError):
                client.incr(f"{prefix}n")
            assert client.set(f"{prefix}other", "x")  # reconnects; not an INCR: not cut
        assert client.incr(f"{prefix}n") == 3  # two cuts made: disarmed
    assert direct.get(f"{prefix}n") == "3"
    assert proxy.stats["cut_after_forward"] == 2


def test_seeded_cuts_repeat_and_every_cut_write_was_applied(
    proxy: FaultProxy, direct: redis.Redis, prefix: str
) -> None:
    def run(seed: int, key: str) -> list[bool]:
        proxy.cut_after_forward(0.5, match=b"INCR", seed=seed)
        delivered = []
        with through(proxy) as client:
            for _ in range(30):
                try:
                    client.incr(key)
                    delivered.append(True)
                except redis.ConnectionError:
                    delivered.append(False)
        return delivered

    first, again, other = run(7, f"{prefix}a"), run(7, f"{prefix}b"), run(8, f"{prefix}c")
    assert first == again
    assert first != other
    assert True in first and False in first
    assert direct.mget(f"{prefix}a", f"{prefix}b", f"{prefix}c") == ["30", "30", "30"]
    assert proxy.stats["cut_after_forward"] == 2 * first.count(False) + other.count(False)


def test_cut_before_forward_never_reaches_the_server(proxy: FaultProxy, direct: redis.Redis, prefix: str) -> None:
    with through(proxy) as client:
        assert client.ping()
        proxy.cut_before_forward(1.0)
        with pytest.raises(redis.ConnectionError):
            client.incr(f"{prefix}n")
        assert direct.get(f"{prefix}n") is None
        proxy.cut_before_forward(0)
        assert client.incr(f"{prefix}n") == 1
    assert proxy.stats["cut_before_forward"] == 1


def test_redis_py_default_client_retries_a_cut_write_and_applies_it_twice(
    proxy: FaultProxy, direct: redis.Redis, prefix: str
) -> None:
    """redis-py 8's ``Redis(host=..., port=...)`` retries (10 times, backoff) on ConnectionError:
    a lost reply hides a duplicated write. ``Redis.from_url`` (and a ``ConnectionPool`` of its
    own) does not retry."""
    with redis.Redis(host="127.0.0.1", port=proxy.port) as client:
        assert client.ping()
        proxy.cut_after_forward(1.0, count=1, match=b"INCR")
        assert client.incr(f"{prefix}n") == 2  # no error: INCR was sent twice
        proxy.cut_before_forward(1.0, count=1, match=b"INCR")
        assert client.incr(f"{prefix}n") == 3  # no error: the request was lost, the retry applied it once
    assert direct.get(f"{prefix}n") == "3"
    with redis.Redis.from_url(proxy.url) as client:
        assert client.ping()
        proxy.cut_after_forward(1.0, count=1, match=b"INCR")
        with pytest.raises(redis.ConnectionError):
            client.incr(f"{prefix}m")
    assert direct.get(f"{prefix}m") == "1"


# -- delay, refuse, reset -----------------------------------------------------------------------


def test_delay_slows_each_round_trip_and_times_out_a_short_timeout(
    proxy: FaultProxy, direct: redis.Redis, prefix: str
) -> None:
    with through(proxy, socket_timeout=30) as patient, through(proxy, socket_timeout=0.1) as hasty:
        assert patient.ping()
        proxy.delay(0.2)
        start = time.monotonic()
        assert patient.set(f"{prefix}k", "v")
        assert time.monotonic() - start >= 0.4  # held 0.2 s each way
        with pytest.raises(redis.TimeoutError):
            hasty.get(f"{prefix}k")
        proxy.delay(0)
        assert hasty.get(f"{prefix}k") == "v"  # a new connection, no delay
        assert patient.get(f"{prefix}k") == "v"


def test_refuse_makes_connecting_fail_and_resume_heals(proxy: FaultProxy) -> None:
    with through(proxy) as client:
        assert client.ping()
        proxy.refuse(True)
        assert proxy.stats["open"] == 0  # the open connection was reset
        with pytest.raises(redis.ConnectionError):
            client.ping()  # redis-py sees the reset, reconnects, and is refused
        with through(proxy) as newcomer, pytest.raises(redis.ConnectionError):
            newcomer.ping()
        proxy.refuse(False)
        assert client.ping()
    stats = proxy.stats
    assert stats["reset"] == 1
    assert stats["refused"] == 2


def test_reset_all_cuts_open_connections(proxy: FaultProxy, direct: redis.Redis, prefix: str) -> None:
    errors: list[BaseException] = []

    def wait_blocked(client: redis.Redis) -> None:
        try:
            client.blpop([f"{prefix}never"], timeout=20)
        except BaseException as exc:
            errors.append(exc)

    with through(proxy) as blocked, through(proxy) as idle, through(proxy, single_connection_client=True) as single:
        idle_id = idle.client_id()
        assert single.ping()
        waiter = threading.Thread(target=wait_blocked, args=(blocked,))
        waiter.start()
        deadline = time.monotonic() + 10
        while not any(c["cmd"] == "blpop" for c in direct.client_list()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.reset_all() == 3
        waiter.join(timeout=10)
        assert not waiter.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], redis.ConnectionError)
        # redis-py checks a pooled connection before using it: the idle client reconnects silently
        assert idle.client_id() != idle_id
        # a client with a single connection (the library's kind) does not: it fails on writing
        with pytest.raises(redis.ConnectionError, match="writing"):
            single.ping()
        assert single.ping()
    assert proxy.stats["reset"] == 3


# -- lifecycle and arguments ---------------------------------------------------------------------


def test_stop_leaves_no_thread_and_no_socket(upstream: RedisProcess) -> None:
    fds = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    proxy = FaultProxy(("127.0.0.1", upstream.port)).start()
    assert any(thread.name == f"faultproxy-{proxy.port}" for thread in threading.enumerate())
    with through(proxy) as client:
        assert client.ping()
        proxy.stop()
        assert not any(thread.name.startswith("faultproxy") for thread in threading.enumerate())
        with pytest.raises(redis.ConnectionError):
            client.ping()
    proxy.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", proxy.port), timeout=10):
        pass
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds


def test_arguments_and_stats_keys(upstream: RedisProcess) -> None:
    proxy = FaultProxy(("127.0.0.1", upstream.port))
    with pytest.raises(RuntimeError):
        proxy.port  # noqa: B018 - not started
    with pytest.raises(ValueError):
        proxy.cut_after_forward(1.5)
    with pytest.raises(ValueError):
        proxy.cut_before_forward(1.0, count=-1)
    with pytest.raises(ValueError):
        proxy.delay(-1)
    assert set(proxy.stats) == {*STAT_KEYS, "open"}
    assert proxy.reset_all() == 0  # not started: nothing open
