"""Message search queries (``search_messages``, ``count_messages``): searches give the
answers computed in Python, find every word of any text in any case, page, and refuse bad
arguments without changing anything; on a server with RediSearch and on one without (SCAN
fallback, which warns once)."""

from __future__ import annotations

import string
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import ConversationMemory, InvalidNameError, MessageMatch, UnstorableValueError
from redis_memory.keys import encode_part
from redis_memory.search.filters import as_tag, words
from redis_memory.search.messages import search_text
from tests.message_search import _has, check_copies, copied_fields, found, message
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

pytest_plugins = ["tests.message_search"]


# -- answers -----------------------------------------------------------------------------------------

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


# -- bad input ------------------------------------------------------------------------------------------


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


# -- any text ------------------------------------------------------------------------------------------

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
