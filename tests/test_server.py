"""The embedded default server and the connection settings' precedence."""

from __future__ import annotations

import multiprocessing
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_memory import ConversationMemory, EmbeddedServerError, connections, server
from tests.servers import RedisProcess


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh REDIS_MEMORY_HOME (short enough for a unix socket path) and no other settings."""
    directory = Path(tempfile.mkdtemp(prefix="rmh", dir="/tmp"))
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(directory))
    connections.reset()
    yield directory
    connections.reset()
    server.stop_server(directory)


def start_in_child(home: str) -> tuple[str, int]:
    os.environ["REDIS_MEMORY_HOME"] = home
    path = server.ensure_server()
    pid = int((Path(home) / "redis.pid").read_text())
    return str(path), pid


def test_no_configuration_starts_the_embedded_server_with_modules(home: Path) -> None:
    mem = ConversationMemory("c1")
    mem.messages = [{"role": "user", "content": "Hi"}]
    mem.context = {"topic": "billing"}
    client = redis.Redis(unix_socket_path=str(home / "redis.sock"), decode_responses=True)
    names = {module["name"] for module in client.module_list()}
    assert {"ReJSON", "search"} <= names
    assert client.type("memory:{c1}:context") == "ReJSON-RL"
    assert client.config_get("port")["port"] == "0"
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "redis.sock").stat().st_mode) == 0o700
    client.close()


def test_processes_starting_at_once_share_one_server(home: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.map(start_in_child, [str(home)] * 4)
    assert len({path for path, _ in results}) == 1
    assert len({pid for _, pid in results}) == 1
    assert server.ensure_server(home) == Path(results[0][0])


def test_data_survives_a_restart_of_the_embedded_server(home: Path) -> None:
    mem = ConversationMemory("durable")
    mem.messages = [{"n": 1}]
    mem.messages.append({"n": 2})
    mem.state = "active"
    connections.reset()
    assert server.stop_server(home)
    assert not server.stop_server(home)
    mem = ConversationMemory("durable")  # starts it again
    assert mem.messages == [{"n": 1}, {"n": 2}]
    assert mem.state == "active"


def test_too_long_a_home_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_MEMORY_HOME", "/tmp/" + "x" * 120)
    with pytest.raises(EmbeddedServerError, match="too long"):
        server.ensure_server()


def test_no_server_binary_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_MEMORY_SERVER", str(home / "no-such-redis-server"))
    with pytest.raises(EmbeddedServerError):
        server.ensure_server()


def test_server_module_command_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert server.main(["status"]) == 0
    assert "not running" in capsys.readouterr().out
    assert server.main(["start"]) == 0
    assert server.main(["status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("running")
    assert server.main(["stop"]) == 0
    assert server.main(["bogus"]) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    process = RedisProcess(Path(tmp_path_factory.mktemp("tcp")), modules=False, port=free_port()).start()
    yield process
    process.stop()


def test_precedence_of_connection_settings(
    home: Path, tcp_server: RedisProcess, servers: dict[str, RedisProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, modules = servers["plain"], servers["modules"]

    def where(**kwargs: object) -> str:
        ConversationMemory("where", **kwargs).probe = 1  # type: ignore[arg-type]
        for name, candidate in (("tcp", tcp_server), ("plain", plain), ("modules", modules)):
            client = candidate.client()
            if client.exists("memory:{where}"):
                client.delete("memory:{where}")
                return name
        embedded = redis.Redis(unix_socket_path=str(home / "redis.sock"))
        assert embedded.delete("memory:{where}") == 1
        return "embedded"

    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(tcp_server.port))
    assert where() == "tcp"
    monkeypatch.setenv("REDIS_URL", plain.url)
    assert where() == "plain"
    assert where(url=modules.url) == "modules"
    assert where(client=modules.client()) == "modules"
    assert where(redis_hostname="127.0.0.1", redis_port=tcp_server.port) == "tcp"
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT"):
        monkeypatch.delenv(name)
    assert where() == "embedded"


def test_one_backend_per_server_per_process(servers: dict[str, RedisProcess], prefix: str) -> None:
    url = servers["plain"].url
    first = ConversationMemory("a", url=url, prefix=prefix)
    second = ConversationMemory("b", url=url, prefix=prefix)
    assert first._backend is second._backend
    first.x, second.x = 1, 2
    client = servers["plain"].client()
    tracked = [line for line in client.client_list() if "t" in line["flags"]]
    assert len(tracked) >= 1
    client.close()


def test_an_unreachable_server_raises_a_connection_error(prefix: str) -> None:
    mem = ConversationMemory("down", url=f"redis://127.0.0.1:{free_port()}/0", prefix=prefix, offline="raise")
    with pytest.raises(ConnectionError):
        mem.x = 1
    with pytest.raises(ConnectionError):
        _ = mem.x


def test_a_restarted_server_is_reconnected_to_and_no_stale_mirror_is_served(
    tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> None:
    directory = Path(tempfile.mkdtemp(prefix="rst", dir="/tmp"))
    process = RedisProcess(directory, modules=False).start()
    try:
        mem = ConversationMemory("r", url=process.url, prefix=prefix)
        mem.messages = [1, 2]
        assert mem.messages == [1, 2]  # mirrored
        process.stop()
        process.start()  # empty: this server does not persist
        assert not hasattr(mem, "messages")
        mem.messages = [3]
        mem.messages.append(4)
        assert ConversationMemory("r", url=process.url, prefix=prefix, cache=False).messages == [3, 4]
    finally:
        process.stop()


def test_opening_a_memory_starts_nothing_until_an_attribute_is_used(home: Path) -> None:
    mem = ConversationMemory("lazy")
    assert isinstance(mem, ConversationMemory) and mem.memory_id == "lazy"
    assert not (home / "redis.sock").exists() and not (home / "redis.pid").exists()
    mem.state = "active"  # the first operation starts it
    assert (home / "redis.sock").exists()
    assert ConversationMemory("lazy").state == "active"


def test_a_server_binary_older_than_7_4_is_refused_before_it_starts(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Path(home) / "redis-server"
    old.write_text("#!/bin/sh\necho 'Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc bits=64'\n")
    old.chmod(0o755)
    monkeypatch.setenv("REDIS_MEMORY_SERVER", str(old))
    mem = ConversationMemory("c1")  # opening still starts nothing
    with pytest.raises(EmbeddedServerError, match=r"7\.0\.15.*redis-memory\[server\]"):
        mem.state = "active"
    assert not (home / "redis.pid").exists() and not (home / "redis.sock").exists()


def test_debians_redis_7_0_on_the_path_is_never_started(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Debian's package (7.0), which `make test` installs for the TLS tests
    monkeypatch.setenv("REDIS_MEMORY_SERVER", "/usr/bin/redis-server")
    with pytest.raises(EmbeddedServerError, match=r"needs Redis 7\.4.*redis-memory\[server\]"):
        ConversationMemory("c1").state = "active"
    assert not (home / "redis.pid").exists() and not (home / "redis.sock").exists()
