"""List attributes behave like Python lists and write through to the Redis List."""

from __future__ import annotations

import random

import pytest
import redis

from redis_memory import ConcurrentModificationError, ReadOnlyElementError, RedisList
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def test_list_methods_write_through(memory: MemoryFactory) -> None:
    mem = memory()
    mem.items = [1, 2, 3]
    mem.items.append(4)
    mem.items.extend([5, 6])
    mem.items.insert(0, 0)
    mem.items.insert(-1, 5.5)
    mem.items.insert(100, 7)
    assert memory().items == [0, 1, 2, 3, 4, 5, 5.5, 6, 7]
    assert mem.items.pop() == 7
    assert mem.items.pop(0) == 0
    assert mem.items.pop(2) == 3
    mem.items.remove(5.5)
    assert memory().items == [1, 2, 4, 5, 6]
    mem.items[0] = "one"
    mem.items[-1] = {"six": 6}
    del mem.items[1]
    assert memory().items == ["one", 4, 5, {"six": 6}]
    mem.items[1:3] = ["a", "b", "c"]
    del mem.items[:1]
    assert memory().items == ["a", "b", "c", {"six": 6}]
    mem.items.clear()
    assert memory().items == [] and hasattr(memory(), "items")


def test_plus_equals_appends_once(memory: MemoryFactory) -> None:
    mem = memory()
    mem.messages = [{"n": 0}]
    mem.messages += [{"n": 1}, {"n": 2}]
    assert memory().messages == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_reads_index_slice_len_iter_eq(memory: MemoryFactory) -> None:
    mem = memory()
    mem.xs = list(range(10))
    xs = memory().xs
    assert isinstance(xs, RedisList) and isinstance(xs, list)
    assert len(xs) == 10 and xs[3] == 3 and xs[-1] == 9 and xs[2:5] == [2, 3, 4]
    assert list(iter(xs)) == list(range(10)) and 5 in xs and xs.index(7) == 7 and xs.count(1) == 1
    assert xs == list(range(10)) and xs != [1]
    assert xs + [10] == list(range(11)) and [-1] + xs == list(range(-1, 10))
    assert type(xs + [10]) is list


def test_sort_reverse_and_multiply(memory: MemoryFactory) -> None:
    mem = memory()
    mem.xs = [3, 1, 2]
    mem.xs.sort()
    assert memory().xs == [1, 2, 3]
    mem.xs.sort(reverse=True)
    mem.xs.reverse()
    assert memory().xs == [1, 2, 3]
    xs = mem.xs
    xs *= 2
    assert memory().xs == [1, 2, 3, 1, 2, 3]


def test_pop_and_index_errors(memory: MemoryFactory) -> None:
    mem = memory()
    mem.xs = []
    with pytest.raises(IndexError):
        mem.xs.pop()
    mem.xs = [1]
    with pytest.raises(IndexError):
        mem.xs[5] = 1
    with pytest.raises(IndexError):
        mem.xs.pop(3)
    with pytest.raises(ValueError):
        mem.xs.remove(2)
    assert memory().xs == [1]


def test_elements_are_read_only_snapshots(memory: MemoryFactory) -> None:
    mem = memory()
    mem.messages = [{"role": "user", "content": "hi", "tags": ["a"]}]
    message = mem.messages[0]
    with pytest.raises(ReadOnlyElementError):
        message["content"] = "changed"
    with pytest.raises(TypeError):
        message["tags"].append("b")
    assert memory().messages[0] == {"role": "user", "content": "hi", "tags": ["a"]}
    mem.messages[0] = {**message, "content": "changed"}
    assert memory().messages[0]["content"] == "changed"


def test_a_reader_that_learns_of_a_write_through_redis_never_reads_its_mirror_stale(memory: MemoryFactory) -> None:
    # The reader holds a mirror of the list. The writer appends, then bumps a counter; once the
    # reader has seen the counter (on its own connection), the invalidation of the list came
    # before that reply on the same socket, so the mirror is gone and the read is fresh.
    writer, reader = memory(), memory(separate=True)
    writer.log = []
    assert reader.log == []
    for n in range(200):
        writer.log.append(n)
        writer.turn = n
        assert reader.turn == n
        assert reader.log == list(range(n + 1))


def test_a_held_list_follows_changes_made_elsewhere_after_its_own_write(
    memory: MemoryFactory, raw: redis.Redis
) -> None:
    mem = memory()
    mem.log = [0]
    held = mem.log
    raw.rpush(mem._space.collection_key("log"), "1")  # another client appends
    held.append(2)
    assert held == [0, 1, 2]
    assert memory().log == [0, 1, 2]


def test_setting_an_element_changed_elsewhere_is_refused(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.log = ["a", "b"]
    held = mem.log
    raw.lset(mem._space.collection_key("log"), 0, '"changed"')
    with pytest.raises(ConcurrentModificationError):
        held[0] = "mine"
    assert memory().log == ["changed", "b"]


def test_a_list_replaced_elsewhere_refuses_appends_from_old_handles(memory: MemoryFactory) -> None:
    mem = memory()
    mem.log = [1]
    held = mem.log
    memory().log = "now a string"
    with pytest.raises(ConcurrentModificationError):
        held.append(2)
    assert memory().log == "now a string"


def test_uncached_reads_see_writes_of_other_connections_at_once(memory: MemoryFactory) -> None:
    writer, reader = memory(), memory(separate=True, cache=False)
    writer.log = []
    for n in range(100):
        writer.log.append(n)
        assert reader.log == list(range(n + 1))


def test_large_list_assignment(memory: MemoryFactory) -> None:
    mem = memory()
    mem.big = list(range(25_000))
    assert len(memory().big) == 25_000 and memory().big[-1] == 24_999
    mem.big.insert(12_000, "x")
    assert memory().big[12_000] == "x" and len(memory().big) == 25_001


@pytest.mark.parametrize("seed", range(4))
def test_random_operations_match_a_python_list(memory: MemoryFactory, server: RedisProcess, seed: int) -> None:
    rng = random.Random(seed)
    other_client = server.client()
    mem, other = memory(), memory(client=other_client)
    mem.xs = []
    model: list[object] = []
    for _ in range(120):
        xs = rng.choice([mem, memory(), other]).xs
        value = rng.choice([rng.randint(0, 9), f"s{rng.randint(0, 9)}", {"k": rng.randint(0, 3)}, [rng.randint(0, 3)]])
        op = rng.choice(["append", "extend", "insert", "pop", "popi", "set", "del", "remove", "slice", "clear"])
        if op == "append":
            xs.append(value)
            model.append(value)
        elif op == "extend":
            xs.extend([value, value])
            model.extend([value, value])
        elif op == "insert":
            index = rng.randint(-5, 5)
            xs.insert(index, value)
            model.insert(index, value)
        elif op in ("pop", "popi", "set", "del") and model:
            index = rng.randrange(-len(model), len(model))
            if op == "pop":
                assert xs.pop() == model.pop()
            elif op == "popi":
                assert xs.pop(index) == model.pop(index)
            elif op == "set":
                xs[index] = value
                model[index] = value
            else:
                del xs[index]
                del model[index]
        elif op == "remove" and model:
            target = rng.choice(model)
            xs.remove(target)
            model.remove(target)
        elif op == "slice":
            start, stop = sorted((rng.randint(0, 6), rng.randint(0, 6)))
            xs[start:stop] = [value]
            model[start:stop] = [value]
        elif op == "clear" and rng.random() < 0.1:
            xs.clear()
            model.clear()
        assert xs == model
        # an uncached read is a round trip on its connection: it also delivers every
        # invalidation the other connection's writes sent it, so the next `.xs` is current
        assert memory(cache=False).xs == model
        assert memory(client=other_client, cache=False).xs == model


def test_the_same_list_object_while_no_one_else_changes_it(memory: MemoryFactory) -> None:
    mem, other = memory(), memory(separate=True)
    mem.log = [1]
    first = mem.log
    mem.log.append(2)
    assert mem.log is first and first == [1, 2]  # our own writes update it in place
    other.log.append(3)
    other.turn = 1
    assert mem.turn == 1  # the invalidation of `log` arrived before this reply
    current = mem.log
    assert current is not first and current == [1, 2, 3]
    assert first == [1, 2]  # a list held from before stays what it was
    first.append(4)  # ... until written through: then it re-reads
    assert first == [1, 2, 3, 4] and memory(cache=False).log == [1, 2, 3, 4]


def test_a_list_changed_behind_the_librarys_back_is_read_again(
    memory: MemoryFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import heapq

    mem = memory()
    mem.xs = [5, 3]
    heapq.heappush(mem.xs, 1)  # C-level: bypasses RedisList.append, so nothing is written
    assert mem.xs == [5, 3]  # the mirror noticed and Redis is the truth
    list.reverse(mem.xs)  # same length, other order
    assert mem.xs == [5, 3]
    assert "without writing to Redis" in caplog.text


def test_reassigning_a_list_read_earlier_stores_it(memory: MemoryFactory) -> None:
    mem = memory()
    mem.xs = [1, 2]
    held = mem.xs
    del mem.xs
    mem.xs = held
    assert memory(cache=False).xs == [1, 2]
    mem.ys = held  # a list of one attribute assigned to another
    assert memory(cache=False).ys == [1, 2]
    mem.xs += [3]
    mem.xs = mem.xs  # a plain self-assignment rewrites the same content
    assert memory(cache=False).xs == [1, 2, 3]
