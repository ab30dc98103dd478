"""Message search (``index_messages``, ``search_messages``, ``count_messages``): the copy of
each message stays in step with its list through every kind of change, and searches give the
answers computed in Python, on a server with RediSearch and on one without (SCAN fallback)."""

from __future__ import annotations

import asyncio
import json
import string
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import (
    ConcurrentModificationError,
    ConversationMemory,
    InvalidNameError,
    MessageMatch,
    UnstorableValueError,
    aio,
)
from redis_memory.keys import encode_part
from redis_memory.search.filters import as_tag, words
from redis_memory.search.messages import search_text
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

FIELDS = "role,content"  # what schemas/conversation.json indexes of a message


@pytest.fixture
def quiet() -> Iterator[None]:
    """The fallback warns once per server (tested below); the other tests ignore it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


class Searchable(ConversationMemory):
    index_messages = True


def searchable(server: RedisProcess, prefix: str, conversation_id: str, **options: Any) -> ConversationMemory:
    """A memory that opts in, on a connection of its own (another process, as far as the
    library can tell)."""
    return ConversationMemory(conversation_id, client=server.client(), prefix=prefix, index_messages=True, **options)


def bug_with_redisearch(request: pytest.FixtureRequest, server: RedisProcess, reason: str) -> None:
    """The fallback is right here and RediSearch is not: expect the failure only there."""
    if server.modules:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# -- what a copy must hold, computed in Python ------------------------------------------------------


def indexed_text(value: object) -> str | None:
    """A field's text as lib.lua's field_text copies it: a string as is, a boolean as text,
    the strings and text parts of a list joined by spaces. (These tests store no numbers.)"""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        parts = [
            part if isinstance(part, str) else part["text"]
            for part in value
            if isinstance(part, str) or (isinstance(part, dict) and isinstance(part.get("text"), str))
        ]
        return " ".join(parts) if parts else None
    return None


def copied_fields(element: object) -> dict[str, str]:
    """The role/content fields the copy of ``element`` holds."""
    if isinstance(element, dict):
        found = {name: indexed_text(element.get(name)) for name in ("role", "content")}
    elif isinstance(element, list) or element is None:
        found = {}
    else:  # a plain string message: its text is the content
        found = {"content": indexed_text(element)}
    if found.get("content") is not None:  # as RediSearch is to read it (see search_text)
        found["content"] = search_text(found["content"])
    return {name: text for name, text in found.items() if text is not None}


def copy_keys(raw: redis.Redis, prefix: str, conversation_id: str) -> set[str]:
    pattern = f"{prefix}#m{{{encode_part(conversation_id)}}}:*"
    return set(raw.scan_iter(match=pattern, count=10_000))


def check_copies(raw: redis.Redis, prefix: str, conversation_id: str) -> list[Any]:
    """The invariant: copy i of ``messages`` is ``<prefix>#m{<id>}:messages:<base + i>``, holds
    element i as LRANGE returns it and its fields, and no other copy exists. Returns the list."""
    encoded = encode_part(conversation_id)
    hash_key = f"{prefix}{{{encoded}}}"
    items = raw.lrange(f"{hash_key}:messages", 0, -1)
    assert raw.hget(hash_key, "_search:messages") == FIELDS
    base = int(raw.hget(hash_key, "_mbase:messages") or 0)
    expected_keys = [f"{prefix}#m{{{encoded}}}:messages:{base + i}" for i in range(len(items))]
    assert copy_keys(raw, prefix, conversation_id) == set(expected_keys)
    pipe = raw.pipeline(transaction=False)
    for key in expected_keys:
        pipe.hgetall(key)
    for i, (item, copy) in enumerate(zip(items, pipe.execute(), strict=True)):
        expected = {"element": item, "conversation": encoded, "attribute": "messages", "n": str(base + i)}
        assert copy == {**expected, **copied_fields(json.loads(item))}, i
    return [json.loads(item) for item in items]


def check_not_searchable(raw: redis.Redis, prefix: str, conversation_id: str) -> None:
    hash_key = f"{prefix}{{{encode_part(conversation_id)}}}"
    assert copy_keys(raw, prefix, conversation_id) == set()
    assert raw.hmget(hash_key, "_search:messages", "_mbase:messages") == [None, None]


def found(server: RedisProcess, prefix: str, text: str | None = None, **options: Any) -> list[MessageMatch]:
    options.setdefault("limit", None)
    return ConversationMemory.search_messages(text, url=server.url, prefix=prefix, **options)


def message(n: int) -> Any:
    """The n-th message of a random history: chat messages, OpenAI content parts, a plain
    string, and a tool call without content."""
    kind = n % 5
    if kind == 0:
        return {"role": "user", "content": f"question {n} about a Refund"}
    if kind == 1:
        return {"role": "assistant", "content": f"answer {n}"}
    if kind == 2:
        parts = [
            {"type": "text", "text": f"see photo {n}"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        ]
        return {"role": "user", "content": parts}
    if kind == 3:
        return f"plain note {n}"
    return {"role": "assistant", "content": None, "tool_calls": [{"id": f"call{n}", "type": "function"}]}


# -- 1. the invariant, through a random sequence of changes ----------------------------------------


@dataclass
class World:
    raw: redis.Redis
    prefix: str
    conversation_id: str
    mem: ConversationMemory  # opted in, mirrored
    other: ConversationMemory  # never opted in, a connection of its own
    bounded: ConversationMemory  # opted in, max_messages=3, a connection of its own
    n: int = 0

    def next(self) -> Any:
        self.n += 1
        return message(self.n)


def _transaction(w: World) -> None:
    with w.mem.transaction():
        lst = w.mem.messages
        lst.append(w.next())
        lst.extend([w.next(), w.next()])
        if lst:
            lst[0] = w.next()  # checked against the list before the appends


def _to_scalar(w: World) -> None:
    w.mem.messages = "not a list any more"
    check_not_searchable(w.raw, w.prefix, w.conversation_id)
    w.mem.messages = [w.next()]


def _delete(w: World) -> None:
    del w.mem.messages
    check_not_searchable(w.raw, w.prefix, w.conversation_id)
    w.mem.messages = []


def _clear_all(w: World) -> None:
    w.mem.clear()
    assert list(w.raw.scan_iter(match=f"{w.prefix}*{{{encode_part(w.conversation_id)}}}*", count=10_000)) == []
    w.mem.messages = [w.next(), w.next()]


def _if_any(change: Callable[[World, Any], None], at_least: int = 1) -> Callable[[World], None]:
    def run(w: World) -> None:
        lst = w.mem.messages
        if len(lst) >= at_least:
            change(w, lst)

    return run


def _other_transaction(w: World) -> None:
    with w.other.transaction():
        w.other.messages.extend([w.next(), w.next()])


def _iadd(w: World) -> None:
    w.mem.messages += [w.next(), w.next()]


def _assign(w: World) -> None:
    w.mem.messages = [w.next() for _ in range(w.n % 4)]


def _other_assign(w: World) -> None:
    w.other.messages = [w.next(), w.next()]  # a list replaced by a list stays searchable


OPS: dict[str, Callable[[World], None]] = {
    "append": lambda w: w.mem.messages.append(w.next()),
    "extend": lambda w: w.mem.messages.extend([w.next(), w.next(), w.next()]),
    "iadd": _iadd,
    "pop": _if_any(lambda w, lst: lst.pop()),
    "pop0": _if_any(lambda w, lst: lst.pop(0)),
    "del_middle": _if_any(lambda w, lst: lst.__delitem__(len(lst) // 2), at_least=3),
    "insert_middle": lambda w: w.mem.messages.insert(len(w.mem.messages) // 2, w.next()),
    "insert_front": lambda w: w.mem.messages.insert(0, w.next()),
    "set": _if_any(lambda w, lst: lst.__setitem__(len(lst) // 2, w.next())),
    "slice": _if_any(lambda w, lst: lst.__setitem__(slice(1, 3), [w.next()])),
    "reverse": lambda w: w.mem.messages.reverse(),
    "clear": lambda w: w.mem.messages.clear(),
    "trim": lambda w: w.mem.messages.trim(last=2),
    "assign": _assign,
    "transaction": _transaction,
    "to_scalar": _to_scalar,
    "delete": _delete,
    "clear_all": _clear_all,
    "other_append": lambda w: w.other.messages.append(w.next()),
    "other_pop0": lambda w: w.other.messages.pop(0) if w.other.messages else None,
    "other_insert": lambda w: w.other.messages.insert(1, w.next()),
    "other_assign": _other_assign,
    "other_transaction": _other_transaction,
    "bounded_append": lambda w: w.bounded.messages.append(w.next()),
    "bounded_extend": lambda w: w.bounded.messages.extend([w.next(), w.next()]),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(sorted(OPS)), max_size=25))
def test_the_copies_follow_every_change_to_the_list(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None, ops: list[str]
) -> None:
    conversation_id = f"c {uuid.uuid4().hex[:8]}"
    mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix, index_messages=True)
    world = World(
        raw,
        prefix,
        conversation_id,
        mem,
        memory(conversation_id, separate=True),
        searchable(server, prefix, conversation_id, max_messages=3),
    )
    mem.messages = [world.next(), world.next()]
    stored = check_copies(raw, prefix, conversation_id)
    for op in ops:
        OPS[op](world)
        stored = check_copies(raw, prefix, conversation_id)
        assert mem.messages == stored, op
    matches = found(server, prefix, conversation=conversation_id)
    assert [(m.conversation_id, m.attribute, m.message) for m in matches] == [
        (conversation_id, "messages", item) for item in stored
    ]
    assert ConversationMemory.count_messages(url=server.url, prefix=prefix, conversation=conversation_id) == len(stored)


# -- 2. opting in -------------------------------------------------------------------------------------


def test_only_conversations_that_opted_in_are_searchable(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None
) -> None:
    never = ConversationMemory("never", url=server.url, prefix=prefix)
    never.messages = [{"role": "user", "content": "refund please"}]
    never.messages.append({"role": "user", "content": "refund now"})
    assert found(server, prefix, "refund") == []
    check_not_searchable(raw, prefix, "never")

    other = memory("late", separate=True)  # never opts in
    other.messages = [message(0), message(1)]
    other.messages.append(message(5))
    late = searchable(server, prefix, "late")
    assert found(server, prefix, "refund") == []  # opening it changes nothing yet
    late.messages.append(message(10))  # its next append copies what the list holds
    assert [m.message for m in found(server, prefix, "refund")] == [message(0), message(5), message(10)]
    check_copies(raw, prefix, "late")

    other.messages.append(message(15))  # the flag lives in Redis: this process's appends are copied too
    other.messages.extend([message(20), "refund in a plain string"])
    assert found(server, prefix, "refund", conversation="late")[-3:] == [
        MessageMatch("late", "messages", m) for m in (message(15), message(20), "refund in a plain string")
    ]
    assert check_copies(raw, prefix, "late") == other.messages

    sub = Searchable("sub", url=server.url, prefix=prefix)
    sub.messages = [{"role": "user", "content": "a refund for the subclass"}]
    by_subclass = Searchable.search_messages("refund", url=server.url, prefix=prefix)
    assert [m.conversation_id for m in by_subclass] == ["late"] * 6 + ["sub"]
    check_copies(raw, prefix, "sub")
    Searchable("off", url=server.url, prefix=prefix, index_messages=False).messages = ["refund"]  # opts out
    check_not_searchable(raw, prefix, "off")


@pytest.mark.parametrize("change", ["set", "insert", "pop", "pop0", "del", "clear", "trim"])
def test_any_first_change_through_an_opted_in_memory_makes_the_list_searchable(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None, change: str
) -> None:
    memory("x", separate=True).messages = [message(0), message(1), message(5)]
    lst = searchable(server, prefix, "x").messages
    if change == "set":
        lst[0] = message(10)
    elif change == "insert":
        lst.insert(1, message(10))
    elif change == "pop":
        lst.pop()
    elif change == "pop0":
        lst.pop(0)
    elif change == "del":
        del lst[1]
    elif change == "clear":
        lst.clear()
    else:
        lst.trim(last=1)
    check_copies(raw, prefix, "x")
    assert len(found(server, prefix, conversation="x")) == raw.llen(f"{prefix}{{x}}:messages")


# -- 3. answers -----------------------------------------------------------------------------------------

HISTORIES: dict[str, list[Any]] = {
    "c1": [
        {"role": "user", "content": "I want a REFUND for invoice 42"},
        {"role": "assistant", "content": "Which invoice?"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "this invoice"}, {"type": "text", "text": "photo attached"}],
        },
        "plain refund note",
    ],
    "c2": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "A refund takes 3 days"},
        {"role": "tool", "content": "refund issued; invoice closed"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "t1"}]},
    ],
    "B": [{"role": "user", "content": "Refund refund"}, {"role": "user", "content": "photo of the invoice"}],
    "a b": [{"role": "assistant", "content": "no refund here? yes: refund"}, "plain"],
    "{x} y": [{"role": "user", "content": "invoice"}, {"role": "system", "content": "be brief about a refund"}],
    "ünï/код": [{"role": "user", "content": "café refund — déjà vu"}, {"role": "user", "content": "more invoice talk"}],
}


@pytest.fixture
def histories(server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None) -> list[tuple[str, int, Any]]:
    """The conversations above, made searchable in different ways; returns every message as
    (id, position, message) in the order searches give them (encoded id, then position)."""
    for conversation_id, history in HISTORIES.items():
        mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix, index_messages=True)
        mem.messages = [{"role": "user", "content": "dropped refund invoice"}, *history[:1]]
        mem.messages.pop(0)  # moves the base on: positions no longer start at 0
        mem.messages.extend(history[1:])
        assert check_copies(raw, prefix, conversation_id) == history
    ConversationMemory("hidden", url=server.url, prefix=prefix).messages = [{"role": "user", "content": "refund"}]
    ordered = sorted(HISTORIES, key=encode_part)
    return [(cid, n, item) for cid in ordered for n, item in enumerate(HISTORIES[cid])]


def _has(item: Any, text: str) -> bool:
    content = copied_fields(item).get("content")
    return content is not None and set(words(search_text(text))) <= set(words(content))


def _role(item: Any) -> str | None:
    return copied_fields(item).get("role")


def test_searches_give_the_answers_computed_in_python(
    server: RedisProcess, prefix: str, histories: list[tuple[str, int, Any]]
) -> None:
    cases: list[tuple[str | None, dict[str, Any], Callable[[str, Any], bool]]] = [
        ("refund", {}, lambda cid, m: _has(m, "refund")),
        ("rEfUnD", {}, lambda cid, m: _has(m, "refund")),
        ("invoice REFUND", {}, lambda cid, m: _has(m, "refund invoice")),
        ("photo", {}, lambda cid, m: _has(m, "photo")),  # content given as OpenAI parts
        ("plain", {}, lambda cid, m: _has(m, "plain")),  # plain-string elements
        ("déjà café", {}, lambda cid, m: _has(m, "déjà café")),
        ("refunds", {}, lambda cid, m: False),  # no stemming
        ("refund", {"role": "user"}, lambda cid, m: _has(m, "refund") and _role(m) == "user"),
        (None, {"role": "assistant"}, lambda cid, m: _role(m) == "assistant"),
        (None, {"role__in": ["tool", "system"]}, lambda cid, m: _role(m) in ("tool", "system")),
        ("refund", {"role__ne": "user"}, lambda cid, m: _has(m, "refund") and _role(m) != "user"),
        ("refund", {"conversation": "c1"}, lambda cid, m: cid == "c1" and _has(m, "refund")),
        (None, {"conversation": "ünï/код"}, lambda cid, m: cid == "ünï/код"),
        (None, {"conversation__in": ["c2", "a b", "{x} y"]}, lambda cid, m: cid in ("c2", "a b", "{x} y")),
        (None, {"conversation__ne": "c1"}, lambda cid, m: cid != "c1"),
        ("invoice", {"attribute": "messages"}, lambda cid, m: _has(m, "invoice")),
        (None, {"attribute": "other"}, lambda cid, m: False),
        (None, {"conversation": "hidden"}, lambda cid, m: False),  # never opted in
        (None, {}, lambda cid, m: True),
    ]
    for text, filters, keep in cases:
        expected = [MessageMatch(cid, "messages", item) for cid, _, item in histories if keep(cid, item)]
        assert found(server, prefix, text, **filters) == expected, (text, filters)
        count = ConversationMemory.count_messages(text, url=server.url, prefix=prefix, **filters)
        assert count == len(expected), (text, filters)
    assert found(server, prefix, "refund")  # the cases above are not all empty


def test_paging(server: RedisProcess, prefix: str, histories: list[tuple[str, int, Any]]) -> None:
    every = [MessageMatch(cid, "messages", item) for cid, _, item in histories]
    assert len(every) > 10
    assert found(server, prefix) == every
    assert ConversationMemory.search_messages(url=server.url, prefix=prefix) == every[:10]  # limit=10 by default
    for offset in range(0, len(every) + 3, 3):
        assert found(server, prefix, limit=3, offset=offset) == every[offset : offset + 3], offset
    assert found(server, prefix, limit=0) == []
    assert found(server, prefix, offset=len(every)) == []
    refunds = [m for m in every if _has(m.message, "refund")]
    assert found(server, prefix, "refund", limit=2, offset=1) == refunds[1:3]
    assert found(server, prefix, "refund", offset=2) == refunds[2:]


def test_text_and_content_contains_must_both_hold(
    server: RedisProcess, prefix: str, histories: list[tuple[str, int, Any]]
) -> None:
    expected = [MessageMatch(c, "messages", m) for c, _, m in histories if _has(m, "refund") and _has(m, "invoice")]
    assert found(server, prefix, "refund", content__contains="invoice") == expected


def test_conversation_startswith_takes_an_id(
    server: RedisProcess, prefix: str, histories: list[tuple[str, int, Any]]
) -> None:
    expected = [MessageMatch(c, "messages", m) for c, _, m in histories if c.startswith("{x} ")]
    assert expected
    assert found(server, prefix, conversation__startswith="{x} ") == expected


@pytest.mark.parametrize(
    ("content", "word"),
    [
        ("Hello there\nI need a refund\nthanks", "refund"),  # a word next to a newline
        ("see my_order for details", "order"),  # RediSearch does not split at "_"
        ("see my_order for details", "my_order"),  # nor does the search text
        ("C:\\refund\\x", "refund"),  # nor at "\\"
        ("prix: ÉCOLE", "école"),  # a non-ASCII capital: RediSearch lowercases ASCII only
        ("prix: école", "ÉCOLE"),
        ("ΚΑΛΗΜΕΡΑ Москва", "καλημερα москва"),
        ("yes—refund", "refund"),  # non-ASCII punctuation: RediSearch splits at ASCII only
        ("«refund»\u00a0now", "now refund"),
        ("question\u3002refund", "refund"),
    ],
)
def test_every_word_is_found_in_any_case_whatever_separates_it(
    server: RedisProcess, prefix: str, quiet: None, content: str, word: str
) -> None:
    ConversationMemory("w", url=server.url, prefix=prefix, index_messages=True).messages = [content, "other"]
    assert [m.message for m in found(server, prefix, word)] == [content]


# -- 4. concurrency and failed changes ---------------------------------------------------------------


def test_concurrent_writers_keep_the_copies_in_step(
    server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None
) -> None:
    searchable(server, prefix, "busy").messages = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            mem = ConversationMemory("busy", client=server.client(), prefix=prefix, index_messages=worker % 2 == 0)
            for n in range(60):
                mem.messages.append({"role": "user", "content": f"worker{worker} message{n}"})
                if n % 3 == 2:
                    mem.messages.pop(0 if worker % 2 else -1)  # never empty: 3 appends per pop
                if n % 20 == 19:
                    mem.messages.insert(1, {"role": "assistant", "content": f"inserted by {worker}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stored = check_copies(raw, prefix, "busy")
    assert len(stored) == 4 * (60 - 20 + 3)
    assert [m.message for m in found(server, prefix)] == stored
    assert [m.message for m in found(server, prefix, "worker0")] == [m for m in stored if _has(m, "worker0")]


def test_a_failed_change_leaves_no_copy(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory, quiet: None
) -> None:
    first = searchable(server, prefix, "f")
    first.messages = [message(0)]
    held_opted_in = first.messages
    held_other = memory("f", separate=True).messages
    ConversationMemory("f", client=server.client(), prefix=prefix).messages = "replaced by another writer"
    for held in (held_opted_in, held_other):  # op:push and the lean push.lua
        with pytest.raises(ConcurrentModificationError):
            held.append(message(5))
    check_not_searchable(raw, prefix, "f")
    assert found(server, prefix) == []

    first.messages = [message(0), message(1)]
    held = first.messages
    memory("f", separate=True).messages[0] = message(10)  # element 0 changed behind held's back...
    with pytest.raises(ConcurrentModificationError), first.transaction():
        first.messages.append(message(15))
        held[0] = message(20)  # ...so this compare-and-set fails, and the append with it
    assert check_copies(raw, prefix, "f") == [message(10), message(1)]


# -- 5. expiry and cleanup ---------------------------------------------------------------------------


def test_copies_get_the_ttl_and_every_write_refreshes_it(server: RedisProcess, prefix: str, raw: redis.Redis) -> None:
    mem = searchable(server, prefix, "t", ttl=60)
    mem.messages = [message(0), message(1)]
    mem.messages.append(message(2))
    mem.messages.pop(0)
    mem.messages.insert(1, message(3))
    check_copies(raw, prefix, "t")
    keys = copy_keys(raw, prefix, "t")
    assert len(keys) == 3
    for key in keys:
        raw.pexpire(key, 1_000)
    mem.state = "active"  # any write slides the expiry of every key, copies included
    assert all(50_000 < raw.pttl(key) <= 60_000 for key in keys)


def test_a_copy_written_without_the_ttl_still_expires_with_its_conversation(
    server: RedisProcess, prefix: str, raw: redis.Redis, memory: MemoryFactory
) -> None:
    searchable(server, prefix, "t", ttl=60).messages = [message(0)]
    other = memory("t", separate=True)  # no ttl: it does not refresh the expiry, as documented...
    other.messages.append(message(1))
    other.messages[0] = message(2)
    assert raw.pttl(f"{prefix}{{t}}:messages") > 0  # ...and the list keeps its expiry
    assert all(raw.pttl(key) > 0 for key in copy_keys(raw, prefix, "t"))  # the copies must too


def test_cleanup_deletes_the_copies_too(server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None) -> None:
    now = datetime.now(UTC)
    for conversation_id, age in (("old", 30), ("recent", 1)):
        mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix, index_messages=True)
        mem.last_activity = now - timedelta(days=age)
        mem.messages = [message(0), message(1)]
        mem.messages.append(message(2))
        mem.messages.pop(0)
    assert len(copy_keys(raw, prefix, "old")) == 2
    assert ConversationMemory.cleanup(timedelta(days=7), url=server.url, prefix=prefix) == ["old"]
    recent_copies = {f"{prefix}#m{{recent}}:messages:{n}" for n in (1, 2)}
    left = set(raw.scan_iter(match=f"{prefix}*", count=10_000))
    oplog = f"{prefix}~ops{{recent}}"  # its log of recent operation ids (exactly once)
    assert left == {f"{prefix}{{recent}}", f"{prefix}{{recent}}:messages", oplog, *recent_copies}
    assert [m.conversation_id for m in found(server, prefix)] == ["recent", "recent"]


# -- 6. bad input ------------------------------------------------------------------------------------------


def test_bad_searches_are_refused_and_change_nothing(
    server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None
) -> None:
    ConversationMemory("c1", url=server.url, prefix=prefix, index_messages=True).messages = [message(0)]

    binary = server.client()

    def state() -> dict[str, Any]:
        return {key: binary.dump(key) for key in binary.scan_iter(match=f"{prefix}*", count=10_000)}

    before = state()
    bad: list[tuple[type[Exception], Callable[[], object]]] = [
        (TypeError, lambda: ConversationMemory.search_messages(5, url=server.url, prefix=prefix)),  # type: ignore[arg-type]
        (InvalidNameError, lambda: found(server, prefix, colour="red")),
        (InvalidNameError, lambda: found(server, prefix, content="refund")),  # TEXT: use __contains
        (InvalidNameError, lambda: found(server, prefix, role__gt="a")),
        (InvalidNameError, lambda: found(server, prefix, role__like="a")),
        (ValueError, lambda: found(server, prefix, limit=-1)),
        (ValueError, lambda: found(server, prefix, limit="3")),
        (ValueError, lambda: found(server, prefix, offset=-1)),
        (TypeError, lambda: found(server, prefix, conversation__in="c1")),
        (InvalidNameError, lambda: found(server, prefix, conversation="")),
        (UnstorableValueError, lambda: found(server, prefix, "?!")),  # no word to search for
        (TypeError, lambda: ConversationMemory.count_messages(b"refund", url=server.url, prefix=prefix)),  # type: ignore[arg-type]
    ]
    for error, call in bad:
        with pytest.raises(error):
            call()
    assert state() == before
    assert len(found(server, prefix, "refund")) == 1


def test_the_fallback_warns_once(servers: dict[str, RedisProcess], prefix: str) -> None:
    from redis_memory.search import index

    plain = servers["plain"]
    index._warned.difference_update({label for label in index._warned if "message search" in label})
    with pytest.warns(RuntimeWarning, match="message search scans"):
        ConversationMemory.search_messages("x", url=plain.url, prefix=prefix)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConversationMemory.search_messages("x", url=plain.url, prefix=prefix)  # no second warning
        ConversationMemory.search_messages("x", url=servers["modules"].url, prefix=prefix)  # none with RediSearch


# -- 7. any text ------------------------------------------------------------------------------------------

# ASCII letters, digits and punctuation, control characters, and beyond ASCII: letters of both
# cases (folded or not), punctuation and spaces (folded) and characters beyond U+FFFF.
ASCII = string.ascii_letters + string.digits + " \t\n\x01_\\" + "-@|{}*\"'.,:;!?()[]<>/+=~#$%^&`"
TEXT = ASCII + "éÉßøØñÑçüÜöαΩβγжЖщЁ中文字ǄİĲŸ—«»\u00a0\u3000\u3001😀"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.text(alphabet=TEXT, max_size=40),
    role=st.text(alphabet=TEXT, min_size=1, max_size=8),
    name=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8),
)
def test_each_word_of_any_text_finds_its_message(
    server: RedisProcess, prefix: str, quiet: None, content: str, role: str, name: str
) -> None:
    conversation_id = f"{name} {uuid.uuid4().hex[:6]}"  # any id, each example its own
    mem = ConversationMemory(conversation_id, url=server.url, prefix=prefix, index_messages=True)
    mine = {"role": role, "content": content}
    mem.messages = [mine, {"role": "other"}]
    itself = [MessageMatch(conversation_id, "messages", mine)]
    for word in set(words(search_text(content))):
        assert found(server, prefix, word, conversation=conversation_id) == itself, word
        if words(search_text(word.upper())) == [word]:  # in any case where folding gives the word back
            assert found(server, prefix, word.upper(), conversation=conversation_id) == itself, word
    if words(search_text(content)):
        assert found(server, prefix, content, conversation=conversation_id) == itself
    if as_tag(role) not in ("", "other"):
        assert found(server, prefix, role=role, conversation=conversation_id) == itself
    assert len(found(server, prefix, conversation=conversation_id)) == 2


# -- 8. the async API ---------------------------------------------------------------------------------------


def test_the_async_api_keeps_the_copies_too(server: RedisProcess, prefix: str, raw: redis.Redis, quiet: None) -> None:
    async def main() -> None:
        try:
            mem = aio.ConversationMemory("async", url=server.url, prefix=prefix, index_messages=True)
            await mem.set("messages", [message(0)])
            await mem.messages.append(message(1))
            await mem.messages.extend([message(2), message(3)])
            await mem.messages.insert(1, message(5))
            assert await mem.messages.pop() == message(3)
            assert await mem.messages.pop(0) == message(0)
            async with mem.transaction():
                await mem.messages.append(message(10))
            late = aio.ConversationMemory("async-late", url=server.url, prefix=prefix)
            await late.set("messages", [message(0)])
            await aio.ConversationMemory(
                "async-late", url=server.url, prefix=prefix, index_messages=True
            ).messages.append(message(1))
        finally:
            await aio.aclose()

    asyncio.run(main())
    stored = check_copies(raw, prefix, "async")
    assert stored == [message(5), message(1), message(2), message(10)]
    assert check_copies(raw, prefix, "async-late") == [message(0), message(1)]
    assert [(m.conversation_id, m.message) for m in found(server, prefix, "refund")] == [
        ("async", message(5)),
        ("async", message(10)),
        ("async-late", message(0)),
    ]
