"""``RedisList.edit(i)``: one element of a stored list changed in place and written back by one
compare-and-set when the block ends; elements read outside it stay read-only; ``aslist()`` /
``asdict()`` are plain copies. On a server with RedisJSON + RediSearch and on one without."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from redis_memory import (
    ConcurrentModificationError,
    ConversationMemory,
    InvalidValueError,
    MissingIndexError,
    ReadOnlyElementError,
    TransactionError,
    UnstorableValueError,
)
from redis_memory.conversation import Conversation
from tests.conftest import MemoryFactory
from tests.message_search import check_copies, found
from tests.servers import RedisProcess
from tests.test_costs import delta

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

pytest_plugins = ["tests.message_search"]


def stored(raw: redis.Redis, mem: ConversationMemory, name: str = "messages") -> list[Any]:
    """The list as Redis holds it, decoded (no library involved)."""
    return [json.loads(item) for item in raw.lrange(mem._space.collection_key(name), 0, -1)]


def chat(mem: ConversationMemory) -> None:
    mem.messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]


# -- editing ----------------------------------------------------------------------------------------


def test_streaming_a_reply_into_the_last_message(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    messages = mem.messages
    chunks = [f"chunk {n}, " for n in range(60)]
    for chunk in chunks:
        with mem.messages.edit(-1) as m:
            assert type(m) is dict
            m["content"] += chunk
        assert mem.messages is messages  # our own edit keeps the mirror valid: no re-read
    reply = "".join(chunks)
    assert messages[-1] == {"role": "assistant", "content": reply}
    assert stored(raw, mem) == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": reply}]
    assert memory(separate=True, cache=False).messages[-1]["content"] == reply

    def one_more() -> None:
        with mem.messages.edit(-1) as m:
            m["content"] += "done."

    commands = delta(raw, one_more)
    assert commands.get("evalsha") == 1 and "lrange" not in commands  # one script, read from the mirror
    assert stored(raw, mem)[-1]["content"] == reply + "done."


def test_a_nested_list_row_is_edited_in_place(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.matrix = [[1, 2], [3, 4], [5]]
    with mem.matrix.edit(1) as row:
        assert type(row) is list
        row.append(5)
        row[0] = 30
    assert mem.matrix == [[1, 2], [30, 4, 5], [5]]
    assert stored(raw, mem, "matrix") == [[1, 2], [30, 4, 5], [5]]
    with mem.matrix.edit(-3) as first:  # negative indexes count from the end
        first.clear()
    assert memory(separate=True, cache=False).matrix == [[], [30, 4, 5], [5]]
    with pytest.raises(ReadOnlyElementError):
        mem.matrix[1].append(6)  # outside edit(), a row stays read-only


def test_an_edit_sees_nested_values_as_plain_mutable_copies(memory: MemoryFactory) -> None:
    mem = memory()
    call = {"id": "call1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    mem.messages = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    with mem.messages.edit(0) as m:
        m["tool_calls"][0]["function"]["arguments"] = '{"x": 1}'
        m["tool_calls"].append({**call, "id": "call2"})
    assert [c["id"] for c in memory(separate=True).messages[0]["tool_calls"]] == ["call1", "call2"]
    assert memory(separate=True).messages[0]["tool_calls"][0]["function"]["arguments"] == '{"x": 1}'


def test_an_element_changed_meanwhile_by_another_writer_is_not_overwritten(
    memory: MemoryFactory, raw: redis.Redis
) -> None:
    mem, other = memory(), memory(separate=True)
    chat(mem)
    with pytest.raises(ConcurrentModificationError), mem.messages.edit(-1) as m:
        m["content"] = "mine"
        other.messages[-1] = {"role": "assistant", "content": "theirs"}
    assert stored(raw, mem)[-1] == {"role": "assistant", "content": "theirs"}
    assert mem.messages[-1]["content"] == "theirs"  # the mirror was dropped, the read is fresh
    with mem.messages.edit(-1) as m:  # read again and retry: now it applies
        m["content"] += " and mine"
    assert stored(raw, mem)[-1]["content"] == "theirs and mine"


def test_an_element_moved_meanwhile_is_not_overwritten(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem, other = memory(), memory(separate=True)
    mem.log = [{"n": 1}, {"n": 2}, {"n": 3}]
    with pytest.raises(ConcurrentModificationError), mem.log.edit(1) as item:
        item["n"] = 20
        other.log.pop(0)  # element 1 is now {"n": 3}
    assert stored(raw, mem, "log") == [{"n": 2}, {"n": 3}]


def test_an_edit_applies_to_the_element_read_even_if_others_appended(memory: MemoryFactory, raw: redis.Redis) -> None:
    # -1 is resolved when the element is read: the edit goes to that element, compared as read
    mem, other = memory(), memory(separate=True)
    chat(mem)
    with mem.messages.edit(-1) as m:
        m["content"] = "streamed"
        other.messages.append({"role": "tool", "content": "appended meanwhile"})
    assert [m["content"] for m in stored(raw, mem)] == ["Hi", "streamed", "appended meanwhile"]
    assert [m["content"] for m in mem.messages] == ["Hi", "streamed", "appended meanwhile"]


def test_concurrent_edits_with_retries_lose_no_update(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.counters = [{"hits": 0, "by": []}]

    def writer(n: int, own: ConversationMemory) -> None:
        for _ in range(40):
            while True:
                try:
                    with own.counters.edit(0) as item:
                        item["hits"] += 1
                        item["by"].append(n)
                    break
                except ConcurrentModificationError:
                    continue  # another writer got there first: read again, and retry

    writers = [memory(separate=True) for _ in range(3)] + [mem]  # three connections, and threads sharing one
    threads = [threading.Thread(target=writer, args=(n, own)) for n, own in enumerate(writers + [mem])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (item,) = stored(raw, mem, "counters")
    assert item["hits"] == 200 and sorted(item["by"]) == sorted(n for n in range(5) for _ in range(40))


def test_an_edit_of_an_edit_in_progress_by_this_process_is_refused(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.log = [{"n": 0}]
    with pytest.raises(ConcurrentModificationError), mem.log.edit(0) as outer:
        with mem.log.edit(0) as inner:  # another thread would do the same
            inner["n"] = 1
        outer["n"] = 2
    assert stored(raw, mem, "log") == [{"n": 1}]


def test_an_exception_in_the_block_writes_nothing(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    messages = mem.messages

    def failing() -> None:
        with pytest.raises(KeyError), mem.messages.edit(-1) as m:
            m["content"] = "half a reply"
            raise KeyError("the stream broke off")

    assert "evalsha" not in delta(raw, failing)
    assert stored(raw, mem)[-1] == {"role": "assistant", "content": ""}
    assert mem.messages is messages and messages[-1] == {"role": "assistant", "content": ""}


def test_an_unchanged_copy_writes_nothing(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    assert mem.messages[0]["content"] == "Hi"  # read first: the mirror

    def unchanged() -> None:
        with mem.messages.edit(0) as m:
            m["content"] = "Hi"  # the same value again

    assert delta(raw, unchanged) == {}


def test_an_unstorable_or_invalid_edit_writes_nothing(
    memory: MemoryFactory, server: RedisProcess, prefix: str, raw: redis.Redis
) -> None:
    plain = memory()
    plain.messages = [{"role": "user", "content": "Hi"}]
    with pytest.raises(UnstorableValueError), plain.messages.edit(0) as m:
        m["at"] = datetime(2025, 1, 1)  # not JSON (a declared Message would store its text)
    assert stored(raw, plain) == [{"role": "user", "content": "Hi"}]
    declared = Conversation("declared", url=server.url, prefix=prefix)
    declared.messages = [{"role": "user", "content": "Hi"}]
    with pytest.raises(InvalidValueError), declared.messages.edit(0) as m:
        m["role"] = "nobody"  # the declared Message refuses it
    assert stored(raw, declared) == [{"role": "user", "content": "Hi"}]
    with declared.messages.edit(0) as m:
        m["content"] = "Hi again"
        m["timestamp"] = datetime(2025, 1, 1, tzinfo=UTC)
    assert stored(raw, declared) == [{"role": "user", "content": "Hi again", "timestamp": "2025-01-01T00:00:00Z"}]


def test_indexes_and_elements_edit_refuses(memory: MemoryFactory) -> None:
    mem = memory()
    mem.log = [{"n": 0}, "a string"]
    for index in (2, -3):
        with pytest.raises(MissingIndexError), mem.log.edit(index):
            pytest.fail("never entered")
    with pytest.raises(TypeError, match=r"mem.log\[1\] = value"), mem.log.edit(-1):
        pytest.fail("never entered")
    with pytest.raises(TypeError), mem.log.edit("0"):  # type: ignore[arg-type]
        pytest.fail("never entered")
    held = mem.log
    del memory(separate=True).log
    mem.turn = 1  # a round trip of ours: the deletion's invalidation has arrived (see "The window")
    with pytest.raises(MissingIndexError), held.edit(0):  # the list is gone: nothing to edit
        pytest.fail("never entered")


def test_a_held_list_is_read_again_before_an_edit(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    held = mem.messages
    raw.rpush(mem._space.collection_key("messages"), '{"role":"tool","content":"t"}')  # another client
    mem.turn = 1  # a round trip of ours: the append's invalidation has arrived
    assert mem.messages is not held
    with held.edit(-1) as m:  # -1 against the list as it is now
        m["content"] = "t2"
    assert stored(raw, mem)[-1] == {"role": "tool", "content": "t2"}
    assert held[-1] == {"role": "tool", "content": "t2"} and len(held) == 3


# -- read-only elements and plain copies ----------------------------------------------------------


def test_elements_read_outside_edit_stay_read_only(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    mem.messages = [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}]

    def llm_client_that_edits_what_it_was_handed(messages: list[Any]) -> None:  # as litellm does for Gemini
        for message in messages:
            message["tool_calls"][0]["function"]["name"] = "rewritten"

    with pytest.raises(ReadOnlyElementError):
        llm_client_that_edits_what_it_was_handed(mem.messages)
    with pytest.raises(ReadOnlyElementError):
        mem.messages[0]["content"] = "x"
    with pytest.raises(ReadOnlyElementError):
        mem.messages[0]["tool_calls"].append({})
    with mem.messages.edit(0) as m:
        m["content"] = "edited"
    after = mem.messages[0]
    with pytest.raises(ReadOnlyElementError):  # the element written back is a snapshot again
        after["content"] = "x"
    m["content"] = "changed after the block"  # the copy is the caller's: it writes nothing
    assert stored(raw, mem)[0]["tool_calls"][0]["function"]["name"] == "f"
    assert stored(raw, mem)[0]["content"] == "edited" == mem.messages[0]["content"]


def test_aslist_and_asdict_are_independent_plain_copies(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    mem.profile = {"name": "Alice", "rows": [[1], {"k": [2]}]}
    plain = mem.messages.aslist()
    assert plain == mem.messages and type(plain) is list and all(type(m) is dict for m in plain)
    plain[0]["content"] = "local"
    plain.append("local")
    document = mem.profile.asdict()
    assert type(document) is dict and type(document["rows"]) is list and type(document["rows"][1]) is dict
    document["rows"][1]["k"].append(3)
    document["name"] = "Bob"
    rows = mem.profile["rows"].aslist()
    assert type(rows) is list and type(rows[0]) is list
    rows[0].append(9)
    rows.clear()

    def untouched() -> None:
        assert mem.messages.aslist() == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]
        assert mem.profile.asdict() == {"name": "Alice", "rows": [[1], {"k": [2]}]}

    untouched()
    assert stored(raw, mem)[0]["content"] == "Hi"
    reader = memory(separate=True, cache=False)
    assert reader.profile == {"name": "Alice", "rows": [[1], {"k": [2]}]} and len(reader.messages) == 2
    assert delta(raw, untouched) == {}  # copies of the mirrors: no round trip


# -- other processes, search, transactions --------------------------------------------------------


def test_the_mirror_of_another_process_sees_the_edit(memory: MemoryFactory) -> None:
    mem, other = memory(), memory(separate=True)
    chat(mem)
    before = other.messages
    assert before[-1]["content"] == ""
    for n in range(20):
        with mem.messages.edit(-1) as m:
            m["content"] += f"{n} "
        mem.turn = n
        assert other.turn == n  # the invalidation of `messages` came before this reply
        assert other.messages[-1]["content"] == "".join(f"{k} " for k in range(n + 1))
    assert before[-1]["content"] == ""  # a list object read before keeps its items
    with other.messages.edit(-1) as m:  # and the other process edits on top of ours
        m["content"] += "end"
    mem.turn = 99
    assert other.turn == 99
    assert mem.messages[-1]["content"].endswith("19 end")


@pytest.mark.usefixtures("quiet")
def test_an_edit_updates_the_searchable_copy(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    mem = ConversationMemory("searched", url=server.url, prefix=prefix, index_messages=True)
    chat(mem)
    assert found(server, prefix, "refund") == []
    for word in ("your", "refund", "is", "approved"):
        with mem.messages.edit(-1) as m:
            m["content"] = f"{m['content']} {word}".strip()
    check_copies(raw, prefix, "searched")
    hits = found(server, prefix, "refund approved")
    assert [hit.message for hit in hits] == [{"role": "assistant", "content": "your refund is approved"}]
    not_opted_in = ConversationMemory("searched", client=server.client(), prefix=prefix)  # another process
    with not_opted_in.messages.edit(0) as m:  # the flag is in Redis: its edit is copied too
        m["content"] = "I want a refund"
    check_copies(raw, prefix, "searched")
    assert [hit.message["role"] for hit in found(server, prefix, "refund")] == ["user", "assistant"]


def test_an_edit_in_a_transaction_is_queued_with_the_other_changes(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    with mem.transaction() as tx:
        with mem.messages.edit(-1) as m:
            m["content"] = "final answer"
        with mem.messages.edit(0) as m:  # another element: fine
            m["content"] = "Hi!"
        mem.messages.append({"role": "user", "content": "thanks"})  # appended after the edits
        mem.state = "answered"
        assert stored(raw, mem)[-1]["content"] == ""  # nothing sent before the block ends
    assert len(tx.results) == 4
    assert [m["content"] for m in stored(raw, mem)] == ["Hi!", "final answer", "thanks"]
    assert [m["content"] for m in mem.messages] == ["Hi!", "final answer", "thanks"]
    assert memory(separate=True).state == "answered"


def test_a_transaction_with_an_edit_that_conflicts_writes_nothing(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem, other = memory(), memory(separate=True)
    chat(mem)
    with pytest.raises(ConcurrentModificationError), mem.transaction():
        mem.state = "answered"
        with mem.messages.edit(-1) as m:
            m["content"] = "mine"
        other.messages[-1] = {"role": "assistant", "content": "theirs"}
    assert stored(raw, mem)[-1]["content"] == "theirs"
    assert not hasattr(memory(separate=True), "state")
    with pytest.raises(RuntimeError), mem.transaction():  # an exception in the block: nothing sent
        with mem.messages.edit(-1) as m:
            m["content"] = "discarded"
        raise RuntimeError("abandon")
    assert stored(raw, mem)[-1]["content"] == "theirs"


@pytest.mark.parametrize("earlier", ["same element", "insert", "assign", "bounded append"])
def test_an_edit_a_transaction_could_not_compare_is_refused(
    server: RedisProcess, prefix: str, raw: redis.Redis, earlier: str
) -> None:
    bound = 2 if earlier == "bounded append" else None  # an append to a full bounded list drops the first
    mem = ConversationMemory("c1", url=server.url, prefix=prefix, max_messages=bound)
    chat(mem)
    with pytest.raises(TransactionError), mem.transaction():
        if earlier == "same element":
            with mem.messages.edit(1) as m:
                m["content"] = "first"
        elif earlier == "insert":
            mem.messages.insert(0, {"role": "system", "content": "moves every element"})
        elif earlier == "assign":
            mem.messages = [{"role": "user", "content": "new list"}, {"role": "assistant", "content": ""}]
        else:
            mem.messages.append({"role": "user", "content": "trims the front"})
        with mem.messages.edit(1) as m:
            m["content"] = "second"
    assert stored(raw, mem) == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]


def test_a_change_queued_inside_the_edit_block_is_checked_too(memory: MemoryFactory, raw: redis.Redis) -> None:
    mem = memory()
    chat(mem)
    with pytest.raises(TransactionError), mem.transaction(), mem.messages.edit(1) as m:
        m["content"] = "mine"
        mem.messages.insert(0, {"role": "system", "content": "moves it"})
    assert len(stored(raw, mem)) == 2


def test_a_positional_assignment_after_a_queued_insert_is_refused_not_misapplied(memory: MemoryFactory) -> None:
    mem = memory()
    mem.letters = ["a", "b"]
    with pytest.raises(TransactionError), mem.transaction():
        mem.letters.insert(0, "x")
        mem.letters[1] = "B"  # would compare "b" (before the insert) and overwrite "a" (after it)
    assert memory(separate=True).letters == ["a", "b"]
    with mem.transaction():
        mem.letters[1] = "B"  # alone, or before changes that move elements, it is fine
        mem.letters.append("c")
    assert memory(separate=True).letters == ["a", "B", "c"]
