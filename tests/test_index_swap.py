"""Index changes without downtime: ``swap_index`` builds the new version, switches the alias and
drops the old one, while a thread querying ``find`` in a loop gets every answer right."""

from __future__ import annotations

import threading
import warnings
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar

import pytest
import redis

from redis_memory import ConversationMemory, Indexed
from redis_memory.migrations.indexes import IndexReport, swap_index
from redis_memory.search.index import alias_target, spec_for
from tests.servers import RedisProcess

START = datetime(2025, 1, 1, tzinfo=UTC)
OBJECTS = 3000


class Task(ConversationMemory):
    state: Annotated[str, Indexed()]
    rank: Annotated[int, Indexed()]


class TaskV2(ConversationMemory):  # the changed definition: one more field, rank sortable
    index_label: ClassVar[str] = "task"  # the same label: a new version of the "task" index
    state: Annotated[str, Indexed()]
    rank: Annotated[int, Indexed(sortable=True)]
    opened: Annotated[datetime, Indexed(sortable=True)]


def fill(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    """OBJECTS objects written in one pipeline, as the library stores them."""
    first = TaskV2("t0", url=server.url, prefix=prefix)  # the layout as the library writes it
    first.state, first.rank, first.opened = "closed", 0, START
    template = raw.hgetall(first._space.hash_key)
    pipe = raw.pipeline(transaction=False)
    for n in range(1, OBJECTS):
        key = Task(f"t{n}", url=server.url, prefix=prefix)._space.hash_key
        fields = dict(template)
        fields.update({"state": "active" if n % 3 else "closed", "rank": str(n)})
        fields["opened"] = f"{(START + timedelta(minutes=n)).timestamp():.6f}"
        pipe.hset(key, mapping=fields)
    pipe.execute()


def indexes(raw: redis.Redis, prefix: str) -> list[str]:
    return sorted(name for name in raw.execute_command("FT._LIST") if name.startswith(prefix))


def test_find_keeps_answering_during_the_swap(modules_server: RedisProcess, prefix: str) -> None:
    server = modules_server
    raw = redis.Redis(unix_socket_path=str(server.socket), decode_responses=True)
    fill(server, prefix, raw)
    closed = sum(1 for n in range(OBJECTS) if n % 3 == 0)
    assert Task.count(url=server.url, prefix=prefix, state="closed") == closed  # the first version, aliased
    first = spec_for(Task).name(prefix)
    assert indexes(raw, prefix) == [first]
    answers, errors = [], []
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            try:
                total = Task.count(url=server.url, prefix=prefix, state="closed", rank__lt=300)
                page = Task.find(url=server.url, prefix=prefix, state="active", rank__gte=OBJECTS - 5, limit=None)
                answers.append((total, sorted(mem.memory_id for mem in page)))
            except Exception as exc:  # counted, and the test fails on any
                errors.append(exc)

    worker = threading.Thread(target=query)
    worker.start()
    try:
        while len(answers) < 3 and not errors:
            stop.wait(0.01)
        before = len(answers)
        report = swap_index(TaskV2, url=server.url, prefix=prefix)
        after_swap = len(answers)
        while len(answers) < after_swap + 3 and not errors:
            stop.wait(0.01)
    finally:
        stop.set()
        worker.join()
    assert errors == []
    expected = (100, sorted(f"t{n}" for n in range(OBJECTS - 5, OBJECTS) if n % 3))
    assert before >= 3 and len(answers) >= after_swap + 3
    assert all(answer == expected for answer in answers)
    second = spec_for(TaskV2).name(prefix)
    assert report == IndexReport(False, prefix + "idx:task", second, [first], created=1, dropped=1, switched=True)
    assert indexes(raw, prefix) == [second]
    assert alias_target(_backend(server), prefix + "idx:task") == second
    assert Task.count(url=server.url, prefix=prefix) == OBJECTS  # FT.DROPINDEX without DD: none deleted
    newest = TaskV2.find(url=server.url, prefix=prefix, sort_by="-opened", limit=2)
    assert [mem.memory_id for mem in newest] == [f"t{OBJECTS - 1}", f"t{OBJECTS - 2}"]
    again = swap_index(TaskV2, url=server.url, prefix=prefix)  # nothing left to do
    assert (again.created, again.dropped, again.switched, again.old) == (0, 0, False, [])


def _backend(server: RedisProcess):  # type: ignore[no-untyped-def]
    from redis_memory.connections import backend_for

    return backend_for(url=server.url)


@pytest.mark.on_cluster
def test_a_changed_spec_answers_before_the_swap_and_the_dry_run_changes_nothing(
    server: RedisProcess, prefix: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in range(20):
            task = TaskV2(f"t{n}", url=server.url, prefix=prefix)
            task.state, task.rank, task.opened = "active", n, START + timedelta(days=n)
        assert Task.count(url=server.url, prefix=prefix, rank__lt=5) == 5
        # no swap ran: the changed class answers from its own version, made on first use
        assert [m.memory_id for m in TaskV2.find(url=server.url, prefix=prefix, sort_by="-rank", limit=2)] == [
            "t19",
            "t18",
        ]
        dry = swap_index(TaskV2, dry_run=True, url=server.url, prefix=prefix)
        assert Task.count(url=server.url, prefix=prefix, rank__lt=5) == 5
    if server.modules:
        assert dry.dry_run and dry.switched and dry.created == 0 and dry.problems == []
        assert dry.old and all(name.startswith(spec_for(Task).name(prefix)) for name in dry.old)
        done = swap_index(TaskV2, url=server.url, prefix=prefix)
        assert done.dropped == len(dry.old) and done.switched
    else:
        assert dry.problems and not dry.switched  # no RediSearch: nothing to swap
        done = swap_index(TaskV2, url=server.url, prefix=prefix)
        assert done.problems and done.created == done.dropped == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert Task.count(url=server.url, prefix=prefix, rank__lt=5) == 5  # the old class, after the swap
        assert TaskV2.count(url=server.url, prefix=prefix, opened__lt=START + timedelta(days=3)) == 3
