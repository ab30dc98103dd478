"""``python -m redis_memory.cli``: the same as the ``redis-memory`` console script."""

from redis_memory.cli.app import main

raise SystemExit(main())
