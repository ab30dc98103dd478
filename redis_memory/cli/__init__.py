"""The ``redis-memory`` command line (docs/cli.md): ``redis_memory.cli.app.main`` is the
console script, and ``python -m redis_memory.cli`` runs it too."""
