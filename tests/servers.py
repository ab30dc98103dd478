"""Private redis-server processes for the tests: with RedisJSON + RediSearch, and without."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from redis_memory.server import module_paths, server_binary


class RedisProcess:
    """One redis-server on a unix socket in ``directory``, started and stopped by the tests."""

    def __init__(
        self, directory: Path, modules: bool, extra: list[str] | None = None, port: int = 0, binary: str | None = None
    ) -> None:
        self.directory = directory
        self.binary = binary  # None: the one the embedded server uses (redis_memory.server.server_binary)
        self.modules = modules
        self.port = port
        self.socket = directory / "redis.sock"
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def command(self) -> list[str]:
        command = [
            self.binary or server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--loglevel", "warning",
            *self.extra,
        ]  # fmt: skip
        if self.modules:
            paths = module_paths()
            assert len(paths) == 2, f"RedisJSON and RediSearch modules not installed: {paths}"
            for path in paths:
                command += ["--loadmodule", path]
        return command

    def start(self) -> RedisProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.process.poll() is None:
            if not self.socket.exists():  # not listening yet (or never: poll() tells)
                time.sleep(0.02)
                continue
            try:
                if client.ping():
                    client.close()
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.02)
        client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not start: {(self.directory / 'redis.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))
