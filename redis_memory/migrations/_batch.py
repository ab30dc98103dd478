"""What the data migrations share: the raw backend, SCAN batches, the checkpoint, progress.

A migration reads Redis in batches (``SCAN`` plus pipelined reads, through the backend's raw
commands), writes through the public API, and records after each written batch where it
is in a checkpoint hash, :func:`redis_memory.keys.migration_key` (``state``: ``running`` or
``done``, ``position`` and counts), so a run killed half-way resumes from its last batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import redis
import redis.cluster

from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.keys import migration_key

Progress = Callable[[int, "int | None"], None]

RUNNING = "running"
DONE = "done"


def text(value: Any) -> str:
    """A reply as ``str`` (the backend's connection answers bytes)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def glob_escape(prefix: str) -> str:
    """``prefix`` with the glob characters of ``SCAN MATCH`` escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix)


def check_batch(batch: int) -> int:
    """``batch`` if it is a usable batch size, else ValueError (before anything is read)."""
    if type(batch) is not int or not 1 <= batch <= 100_000:
        raise ValueError(f"batch must be an int from 1 to 100000, not {batch!r}")
    return batch


def same(a: object, b: object) -> bool:
    """Whether two plain JSON values are identical, types included (``1``, ``1.0`` and
    ``True`` differ; dict key order does not matter)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Raw:
    """The raw commands a migration sends: the backend of ``url``/``client`` (one server)."""

    def __init__(
        self, url: str | None, client: redis.Redis | redis.cluster.RedisCluster | None, prefix: str | None
    ) -> None:
        if isinstance(client, redis.cluster.RedisCluster):
            raise ValueError("migrations run on one server: pass each primary's client in turn")
        self.url, self.client = url, client
        self.prefix = resolve_prefix(prefix)
        self.backend: Any = backend_for(url=url, client=client)
        if not hasattr(self.backend, "execute_many"):
            raise ValueError("migrations run on one server, not on a Redis Cluster")

    def execute(self, *args: Any) -> Any:
        """One raw command; one round trip."""
        return self.backend.execute(*args)

    def many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Pipelined raw commands, one round trip (none for an empty list)."""
        return self.backend.execute_many(commands) if commands else []

    def scan(self, match: str, count: int, kind: str | None = None) -> Iterator[list[str]]:
        """Every key matching ``match`` (of Redis type ``kind``), a SCAN batch at a time."""
        cursor = "0"
        while True:
            args: list[Any] = ["SCAN", cursor, "MATCH", match, "COUNT", count]
            if kind is not None:
                args += ["TYPE", kind]
            cursor_reply, keys = self.execute(*args)
            cursor = text(cursor_reply)
            if keys:
                yield [text(key) for key in keys]
            if cursor == "0":
                return


class Checkpoint:
    """A migration's checkpoint, the hash ``<prefix>__migrations__:<name>``."""

    def __init__(self, raw: Raw, name: str) -> None:
        self.raw = raw
        self.key = migration_key(raw.prefix, name)
        found = raw.execute("HGETALL", self.key)
        pairs = list(found.items()) if isinstance(found, dict) else list(zip(found[::2], found[1::2], strict=True))
        self.fields = {text(k): text(v) for k, v in pairs}
        self.resumed = self.fields.get("state") == RUNNING
        self.wrote = False

    @property
    def position(self) -> str:
        """Where the interrupted run got to ('' when starting afresh)."""
        return self.fields.get("position", "") if self.resumed else ""

    def count(self, name: str) -> int:
        """A count the interrupted run recorded (0 when starting afresh)."""
        return int(self.fields.get(name, "0")) if self.resumed else 0

    def save(self, position: str, counts: dict[str, int]) -> None:
        """Record that everything up to ``position`` is written (HSET; one round trip)."""
        mapping: list[Any] = ["state", RUNNING, "position", position]
        for name, value in counts.items():
            mapping += [name, value]
        self.raw.execute("HSET", self.key, *mapping)
        self.wrote = True

    def finish(self, counts: dict[str, int]) -> None:
        """Mark the run done, if this run recorded anything (a no-op run writes nothing)."""
        if self.wrote or self.resumed:
            mapping: list[Any] = ["state", DONE, "position", ""]
            for name, value in counts.items():
                mapping += [name, value]
            self.raw.execute("HSET", self.key, *mapping)


def report_progress(progress: Progress | None, done: int, total: int | None) -> None:
    """Call ``progress(done, total)`` if given."""
    if progress is not None:
        progress(done, total)
