"""The user's own data migrations: Python files applied in order and recorded in Redis.

A directory holds one file per migration, e.g. ``0001_add_topic.py``, defining ``up(ctx)`` and
``down(ctx)`` (and optionally ``id``; by default the file name without ``.py``). Migrations
run in the order of their ids. The applied ones are the hash
``<prefix>__migrations__:user`` (field = id, value = epoch seconds when applied); ``up`` and
``down`` hold a lock (``SET NX PX`` on ``<prefix>__migrations__:user.lock``) while they run,
so two processes running ``up`` at once apply each migration once: the second waits for the
lock, then finds nothing left to do. A migration that raises is not recorded; the error
(:class:`~redis_memory.errors.MigrationError`) names its id.
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from redis_memory.config import resolve_prefix
from redis_memory.connections import backend_for
from redis_memory.errors import InvalidNameError, MigrationError
from redis_memory.keys import migration_key
from redis_memory.memory import Memory
from redis_memory.search.api import ids as object_ids

__all__ = ["MigrationContext", "MigrationState", "down", "status", "up"]

LOCK_MS = 600_000  # a crashed run's lock is freed after 10 minutes
WAIT_S = 600.0
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class MigrationState:
    """One migration of the directory: applied or pending, and when it was applied."""

    id: str
    applied: bool
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class MigrationContext:
    """What ``up(ctx)`` and ``down(ctx)`` get: the connection and prefix they run against."""

    url: str | None
    client: redis.Redis | None
    prefix: str
    dry_run: bool = False

    def memories(self, cls: type[Memory] = Memory) -> Iterator[Memory]:
        """Every object under the prefix, opened as ``cls`` (SCAN; sorted by id)."""
        for found in object_ids(self.url, self.client, self.prefix):
            yield cls(found, url=self.url, client=self.client, prefix=self.prefix)

    def memory(self, memory_id: str, cls: type[Memory] = Memory) -> Memory:
        """One object under the prefix, opened as ``cls``."""
        return cls(memory_id, url=self.url, client=self.client, prefix=self.prefix)


@dataclass(frozen=True, slots=True)
class _Migration:
    id: str
    up: Callable[[MigrationContext], Any]
    down: Callable[[MigrationContext], Any]


def _load(directory: str | Path) -> list[_Migration]:
    folder = Path(directory)
    if not folder.is_dir():
        raise InvalidNameError(f"{str(folder)!r} is not a directory of migrations")
    found: dict[str, _Migration] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"_redis_memory_migration_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise MigrationError(f"cannot load migration file {path.name}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        name = str(getattr(module, "id", path.stem))
        forward, backward = getattr(module, "up", None), getattr(module, "down", None)
        if not callable(forward) or not callable(backward):
            raise MigrationError(f"migration {name} ({path.name}) must define up(ctx) and down(ctx)")
        if name in found:
            raise MigrationError(f"two migrations have the id {name!r}")
        found[name] = _Migration(name, forward, backward)
    return [found[name] for name in sorted(found)]


def _applied(backend: Any, key: str) -> dict[str, float]:
    reply = backend.execute("HGETALL", key)
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {_text(k): float(_text(v)) for k, v in pairs}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def status(
    directory: str | Path, *, url: str | None = None, client: redis.Redis | None = None, prefix: str | None = None
) -> list[MigrationState]:
    """Every migration of ``directory`` in order, applied or pending (one HGETALL)."""
    resolved = resolve_prefix(prefix)
    applied = _applied(backend_for(url=url, client=client), migration_key(resolved, "user"))
    return [
        MigrationState(m.id, m.id in applied, datetime.fromtimestamp(applied[m.id], UTC) if m.id in applied else None)
        for m in _load(directory)
    ]


class _Lock:
    def __init__(self, backend: Any, key: str) -> None:
        self.backend, self.key, self.token = backend, key, uuid.uuid4().hex

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + WAIT_S
        while not self.backend.execute("SET", self.key, self.token, "NX", "PX", LOCK_MS):
            if time.monotonic() > deadline:
                raise MigrationError(f"another process holds {self.key!r}: try again when it finishes")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.execute("EVAL", _RELEASE, 1, self.key, self.token)


def _run(m: _Migration, step: Callable[[MigrationContext], Any], ctx: MigrationContext, what: str) -> None:
    try:
        step(ctx)
    except Exception as exc:
        raise MigrationError(f"migration {m.id} failed ({what}): {type(exc).__name__}: {exc}") from exc


def up(
    directory: str | Path,
    *,
    target: str | None = None,
    dry_run: bool = False,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> list[str]:
    """Apply the pending migrations in order (up to and including ``target``); the ids
    applied. Each is recorded (HSET) right after its ``up`` returns. ``dry_run``: the ids that
    would be applied; nothing runs."""
    resolved = resolve_prefix(prefix)
    backend = backend_for(url=url, client=client)
    migrations, key = _load(directory), migration_key(resolved, "user")
    if target is not None and target not in {m.id for m in migrations}:
        raise InvalidNameError(f"no migration has the id {target!r}")
    ctx = MigrationContext(url, client, resolved, dry_run)
    done: list[str] = []
    with _Lock(backend, key + ".lock"):
        applied = _applied(backend, key)
        for m in migrations:
            if m.id not in applied:
                if not dry_run:
                    _run(m, m.up, ctx, "up")
                    backend.execute("HSET", key, m.id, f"{time.time():.6f}")
                done.append(m.id)
            if m.id == target:
                break
    return done


def down(
    directory: str | Path,
    *,
    steps: int = 1,
    dry_run: bool = False,
    url: str | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> list[str]:
    """Revert the last ``steps`` applied migrations, newest first; the ids reverted. Each
    record is removed (HDEL) right after its ``down`` returns. ``dry_run``: the ids that
    would be reverted; nothing runs."""
    if type(steps) is not int or steps < 0:
        raise ValueError(f"steps must be an int >= 0, not {steps!r}")
    resolved = resolve_prefix(prefix)
    backend = backend_for(url=url, client=client)
    migrations, key = _load(directory), migration_key(resolved, "user")
    ctx = MigrationContext(url, client, resolved, dry_run)
    done: list[str] = []
    with _Lock(backend, key + ".lock"):
        applied = _applied(backend, key)
        for m in [m for m in reversed(migrations) if m.id in applied][:steps]:
            if not dry_run:
                _run(m, m.down, ctx, "down")
                backend.execute("HDEL", key, m.id)
            done.append(m.id)
    return done
