"""Migrations: moving stored data from one shape to another, safely.

Each migration is a Python API first (the ``redis-memory migrate`` command runs the same
functions): batched pipelined work, a SCAN-cursor checkpoint kept in Redis so an interrupted
run resumes, a dry run, progress reports, and a verification pass before success is reported;
a second run changes nothing.

- :mod:`redis_memory.migrations.legacy`: data written by the original ``redis-memory`` 0.4.3 /
  ``synced-memory`` (one JSON string key per attribute) into this library's layout.
- :mod:`redis_memory.migrations.documents`: dicts stored as JSON text (written while the server
  lacked RedisJSON) converted to RedisJSON documents.
- :mod:`redis_memory.migrations.indexes`: a changed index built beside the old one and swapped
  in through an alias, while queries keep answering.
- :mod:`redis_memory.migrations.user`: the user's own migrations (files with an id, ``up`` and
  ``down``), applied in order and recorded in Redis.
- :mod:`redis_memory.migrations.exporting`: every object to JSON Lines and back.
"""
