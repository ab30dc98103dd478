"""The original packages' names and constructor arguments, as their users write them
(docs/migrating.md): ``SyncedList`` / ``SyncedDict``; ``redis_hostname``, ``redis_port`` and
``redis_prefix`` (``redis-memory`` 0.4.3, by position after the id of a ``ConversationMemory``);
``db_prefix``, ``dragonflydb_hostname``, ``dragonflydb_port`` and ``dragonflydb_prefix``
(``synced-memory`` 0.1.3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import redis_memory
from redis_memory import ConversationMemory, Memory, RedisDict, RedisList, SyncedDict, SyncedList
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess
from tests.tls import free_port


@pytest.fixture
def tcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A server on a TCP port of 127.0.0.1, as the originals' ``redis_hostname``/``redis_port`` name one."""
    process = RedisProcess(Path(tmp_path_factory.mktemp("tcp")), modules=False, port=free_port()).start()
    yield process
    process.stop()


def test_the_original_names_are_our_stored_list_and_dict(memory: MemoryFactory) -> None:
    assert SyncedList is RedisList and SyncedDict is RedisDict
    assert {"SyncedDict", "SyncedList"} <= set(redis_memory.__all__)
    mem = memory()
    mem.messages = [{"role": "user", "content": "hi"}]
    mem.profile = {"preferences": {"tone": "casual"}, "tags": ["vip"]}
    assert type(mem.messages) is SyncedList and isinstance(mem.messages, SyncedList)
    assert type(mem.profile) is SyncedDict and type(mem.profile["preferences"]) is SyncedDict
    # what docs/migrating.md says is not a SyncedList / SyncedDict: a list inside a dict (it writes
    # through all the same), and an element of a stored list (a read-only snapshot)
    assert isinstance(mem.profile["tags"], list) and not isinstance(mem.profile["tags"], SyncedList)
    assert mem.messages[0] == {"role": "user", "content": "hi"} and not isinstance(mem.messages[0], SyncedDict)


def test_the_original_connection_arguments_name_the_server(
    tcp_server: RedisProcess, server: RedisProcess, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", server.url)  # the arguments win over the environment
    monkeypatch.setenv("REDIS_HOST", "nonexistent-host")
    host, port = "127.0.0.1", tcp_server.port
    opened: list[Memory] = [
        ConversationMemory("c1", host, port, prefix),  # the original's order of arguments
        ConversationMemory("c1", redis_hostname=host, redis_port=port, redis_prefix=prefix),
        ConversationMemory("c1", dragonflydb_hostname=host, dragonflydb_port=port, dragonflydb_prefix=prefix),
        Memory("c1", dragonflydb_hostname=host, dragonflydb_port=port, db_prefix=prefix),
        Memory("c1", redis_hostname=host, dragonflydb_hostname=host, redis_port=port, redis_prefix=prefix),
    ]
    for n, mem in enumerate(opened):
        setattr(mem, f"written_{n}", n)
    assert Memory("c1", url=f"redis://{host}:{port}/0", prefix=prefix).to_dict() == {
        f"written_{n}": n for n in range(len(opened))
    }
    assert Memory("c1", url=server.url, prefix=prefix).to_dict() == {}


def test_two_spellings_of_one_setting_must_agree() -> None:
    with pytest.raises(ValueError, match="dragonflydb_hostname"):
        Memory(redis_hostname="redis", dragonflydb_hostname="dragonflydb")
    with pytest.raises(ValueError, match="dragonflydb_port"):
        ConversationMemory("c1", redis_port=6379, dragonflydb_port=6380)
    with pytest.raises(TypeError):
        ConversationMemory("c1", "localhost", 6379, "memory:", "one too many")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("arguments", "used"),
    [
        ({}, "env"),
        ({"db_prefix": "db"}, "db"),
        ({"db_prefix": "db", "dragonflydb_prefix": "dragonfly"}, "dragonfly"),
        ({"db_prefix": "db", "dragonflydb_prefix": "dragonfly", "redis_prefix": "redis"}, "redis"),
        ({"db_prefix": "db", "dragonflydb_prefix": "dragonfly", "redis_prefix": "redis", "prefix": "ours"}, "ours"),
    ],
)
def test_the_first_prefix_given_is_the_one_used(
    arguments: dict[str, str], used: str, server: RedisProcess, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PREFIX", f"{prefix}env:")
    given: dict[str, Any] = {name: f"{prefix}{value}:" for name, value in arguments.items()}
    Memory(url=server.url, **given).probe = "here"
    found = [
        name
        for name in ("env", "db", "dragonfly", "redis", "ours")
        if Memory(url=server.url, prefix=f"{prefix}{name}:", cache=False).to_dict() == {"probe": "here"}
    ]
    assert found == [used]
