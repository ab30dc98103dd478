"""What the embedded server exposes: a unix socket only (no TCP listener), in a private
directory that another user cannot reach."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_memory import ConversationMemory, connections, server


@pytest.fixture
def embedded_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A REDIS_MEMORY_HOME of this test's own, created beforehand with mode 0755 (the server
    must make it private itself), in a world-readable parent; the server is stopped after."""
    parent = Path(tempfile.mkdtemp(prefix="rms", dir="/tmp"))
    parent.chmod(0o755)
    home = parent / "home"
    home.mkdir()
    home.chmod(0o755)
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PREFIX", "REDIS_MEMORY_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(home))
    connections.reset()
    try:
        yield home
    finally:
        connections.reset()
        server.stop_server(home)
        shutil.rmtree(parent, ignore_errors=True)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp_listeners(inodes: set[str]) -> list[str]:
    """Lines of /proc/net/tcp and tcp6 for LISTEN sockets (state 0A) among ``inodes``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as handle:
            for line in handle.readlines()[1:]:
                columns = line.split()
                if columns[3] == "0A" and columns[9] in inodes:
                    found.append(line.strip())
    return found


def _unix_sockets(inodes: set[str]) -> list[str]:
    """Paths of the unix sockets among ``inodes`` (/proc/net/unix)."""
    with open("/proc/net/unix") as handle:
        rows = [line.split() for line in handle.readlines()[1:]]
    return [row[7] for row in rows if len(row) >= 8 and row[6] in inodes]


def test_the_embedded_server_listens_on_its_unix_socket_only(embedded_home: Path, prefix: str) -> None:
    mem = ConversationMemory("c1", prefix=prefix)
    mem.state = "up"
    sock = server.socket_path(embedded_home)
    pid = int((embedded_home / "redis.pid").read_text())
    with redis.Redis(unix_socket_path=str(sock), decode_responses=True) as client:
        assert client.hget(mem._space.hash_key, "state") == "up"
        assert client.config_get("port")["port"] == "0"
        assert client.config_get("tls-port")["tls-port"] == "0"
        assert int(client.info("server")["process_id"]) == pid
    inodes = _socket_inodes(pid)
    assert str(sock) in _unix_sockets(inodes)  # the control: this is the server's process
    assert _tcp_listeners(inodes) == []
    with socket.create_server(("127.0.0.1", 0)) as listener:  # the control: a listener is seen
        assert len(_tcp_listeners({str(os.fstat(listener.fileno()).st_ino)})) == 1
    assert stat.S_IMODE(embedded_home.stat().st_mode) == 0o700  # it was 0755 before
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700
    assert embedded_home.stat().st_uid == sock.stat().st_uid == os.geteuid()


def _connect_as(uid: int, path: Path) -> str:
    """Try to connect to a unix socket as user ``uid``, in a forked child: 'connected',
    'denied' (EACCES) or 'failed'."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {0: "connected", 13: "denied"}.get(os.waitstatus_to_exitcode(status), "failed")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_reach_the_embedded_server(embedded_home: Path, prefix: str) -> None:
    ConversationMemory("c1", prefix=prefix).state = "up"
    sock = server.socket_path(embedded_home)
    nobody = 65534
    assert _connect_as(os.geteuid(), sock) == "connected"  # the control
    assert _connect_as(nobody, sock) == "denied"  # the directory (0700) stops it
    embedded_home.chmod(0o711)  # even with the directory open to others,
    try:
        assert _connect_as(nobody, sock) == "denied"  # the socket itself (0700) stops it
    finally:
        embedded_home.chmod(0o700)
