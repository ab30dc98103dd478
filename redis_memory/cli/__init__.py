"""The ``redis-memory`` command line (docs/cli.md): ``main`` is the console script."""

from __future__ import annotations

from redis_memory.cli.app import main

__all__ = ["main"]
