"""Shared by the security tests (test_acl, test_tls, test_pinned_bugs, test_namespace_fuzz):
servers with ACL users reached over TCP, an offline journal of the test's own, and a
conversation that makes every kind of write.

Its fixtures reach the test modules through their ``pytest_plugins``. They import its
helpers first, too late for pytest to rewrite its asserts: PYTEST_DONT_REWRITE keeps pytest
from warning about that."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from redis_memory import ConversationMemory, connections
from tests.servers import RedisProcess
from tests.tls import free_port

ADMIN = ("admin", "admin-pw")
ALICE = ("alice", "p@ss:w/rd%")  # URL-quoted in the tests' URLs


@dataclass
class AclServer:
    process: RedisProcess
    port: int
    admin: redis.Redis

    def url(self, user: str, password: str) -> str:
        return f"redis://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/0"

    def denials(self, user: str | None = None) -> list[dict[str, Any]]:
        """The ACL LOG entries (of ``user``): commands or keys that were refused."""
        return [entry for entry in self.admin.acl_log() if user is None or entry["username"] == user]

    def all_keys(self) -> list[str]:
        return sorted(self.admin.scan_iter(count=1000))


@pytest.fixture(scope="module")
def acl_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AclServer]]:
    """A server with modules and one without, each with a TCP port, the ``default`` user
    off, and users ``admin`` (for the tests' own checks) and ``alice`` (for the library)."""
    users = [
        *f"--user {ADMIN[0]} on >{ADMIN[1]} ~* &* +@all".split(),
        *f"--user {ALICE[0]} on >{ALICE[1]} ~* &* +@all".split(),
    ]
    started: dict[str, AclServer] = {}
    try:
        for kind in ("modules", "plain"):
            port = free_port()
            directory = tmp_path_factory.mktemp(f"acl-{kind}")
            process = RedisProcess(directory, modules=kind == "modules", extra=users, port=port).start()
            with process.client() as bootstrap:  # still the default user, until it is turned off
                bootstrap.execute_command("ACL", "SETUSER", "default", "off")
            admin = redis.Redis(
                unix_socket_path=str(process.socket), username=ADMIN[0], password=ADMIN[1], decode_responses=True
            )
            started[kind] = AclServer(process, port, admin)
        yield started
    finally:
        connections.reset()
        for acl in started.values():
            acl.admin.close()
            acl.process.stop()


@pytest.fixture(params=["modules", "plain"])
def acl_server(request: pytest.FixtureRequest, acl_servers: dict[str, AclServer]) -> Iterator[AclServer]:
    acl = acl_servers[request.param]
    acl.admin.acl_log_reset()
    yield acl
    acl.admin.acl_log_reset()


@contextlib.contextmanager
def acl_user(acl: AclServer, name: str, *rules: str) -> Iterator[str]:
    """A user with password ``<name>-pw``, every command, and only ``rules`` for keys; its URL."""
    password = f"{name}-pw"
    acl.admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", "&*", "+@all", *rules)
    try:
        yield acl.url(name, password)
    finally:
        acl.admin.execute_command("ACL", "DELUSER", name)


@pytest.fixture
def fresh_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """New connections made with this test's settings: an offline journal of its own (never
    the user's) and no resending (a refused connection is not retried for 3 s)."""
    home = Path(tempfile.mkdtemp(prefix="rmj", dir="/tmp"))
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(home))
    monkeypatch.setenv("REDIS_MEMORY_RETRY_FOR", "0")
    connections.reset()
    yield home
    connections.reset()
    shutil.rmtree(home, ignore_errors=True)


def exercise(url: str, prefix: str) -> ConversationMemory:
    """Every kind of write the library has, on conversation ``c1``; returns it."""
    mem = ConversationMemory("c1", url=url, prefix=prefix)
    mem.messages = [{"role": "user", "content": "hello"}]
    mem.messages.append({"role": "assistant", "content": "hi"})
    mem.messages.insert(0, {"role": "system", "content": "be brief"})
    assert mem.messages.pop(0)["role"] == "system"
    mem.profile = {"name": "Alice", "prefs": {"tone": "casual"}, "topics": []}
    mem.profile["prefs"]["tone"] = "formal"
    mem.profile["topics"].append("billing")
    mem.tags = {"vip"}
    mem.tags.add("urgent")
    mem.state = "active"
    mem.summary = "refund asked"
    mem.last_activity = datetime(2025, 1, 1, 12, 0)
    assert mem.incr("total_messages", 2) == 2
    assert mem.compare_and_set("state", "active", "answering")
    with mem.transaction():
        mem.resolution_status = "open"
        mem.incr("total_messages")
    del mem.summary
    return mem


EXPECTED = {
    "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
    "profile": {"name": "Alice", "prefs": {"tone": "formal"}, "topics": ["billing"]},
    "tags": {"vip", "urgent"},
    "state": "answering",
    "last_activity": datetime(2025, 1, 1, 12, 0),
    "total_messages": 3,
    "resolution_status": "open",
}
