"""How text is split into words: filters.words() is RediSearch's tokenizer, word for word, and
the message copies' search_text() is lib.lua's, character for character."""

from __future__ import annotations

import string
import uuid
import warnings
from collections.abc import Iterator
from importlib import resources

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import ConversationMemory
from redis_memory.search.filters import words
from redis_memory.search.messages import fold, search_text
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

# ASCII (every separator, "_", "\\", controls, letters of both cases) and beyond: letters that
# fold or not, punctuation, spaces, a character beyond U+FFFF
ALPHABET = string.printable + "\x00\x01\x7f" + "éÉßØñçÜαΩжЖЁǄİĲŸĸ中—«»\u00a0\u2028\u3000\u3001\u3008😀"
LIB = resources.files("redis_memory").joinpath("lua/lib.lua").read_text("utf-8")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def search(modules_server: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(unix_socket_path=str(modules_server.socket), protocol=2)
    yield client
    client.close()


@SETTINGS
@given(text=st.text(alphabet=ALPHABET, max_size=30))
def test_words_are_the_terms_redisearch_indexes(search: redis.Redis, text: str) -> None:
    index, key_prefix = f"w{uuid.uuid4().hex[:8]}", f"w{uuid.uuid4().hex[:8]}:"
    search.execute_command(
        "FT.CREATE", index, "ON", "HASH", "PREFIX", "1", key_prefix, "STOPWORDS", "0", "SCHEMA", "t", "TEXT", "NOSTEM"
    )  # fmt: skip
    try:
        search.hset(f"{key_prefix}1", "t", text)
        terms = {term.decode() for term in search.execute_command("FT.DEBUG", "DUMP_TERMS", index)}
        # RediSearch keeps 16 bits of a character beyond U+FFFF, in the words it indexes and in
        # those it searches for alike: "😀" (U+1F600) is found by itself (and by U+2F600)
        assert terms == {"".join(chr(ord(char) & 0xFFFF) for char in word) for word in words(text)}
    finally:
        search.execute_command("FT.DROPINDEX", index, "DD")


@SETTINGS
@given(text=st.text(alphabet=ALPHABET, max_size=40))
def test_search_text_is_what_lib_lua_writes(search: redis.Redis, text: str) -> None:
    probe = LIB + "\nreturn search_text(ARGV[1])\n"  # lib.lua's local functions are in scope
    assert search.eval(probe, 0, text).decode() == search_text(text)


def test_fold_lowercases_as_python_does_and_blanks_punctuation() -> None:
    for code in range(0x80, 0x3100):
        char, folded = chr(code), chr(fold(code))
        if folded == " ":
            assert not char.isalnum() or code in (0xAA, 0xB2, 0xB3, 0xB5, 0xB9, 0xBA, 0xBC, 0xBD, 0xBE), hex(code)
        elif folded != char:
            assert char.isupper() and char.lower() == folded, hex(code)


@SETTINGS
@given(texts=st.lists(st.text(alphabet=ALPHABET, max_size=20), min_size=1, max_size=4), query=st.data())
def test_text_fields_match_the_same_with_and_without_redisearch(
    servers: dict[str, RedisProcess], texts: list[str], query: st.DataObject
) -> None:
    candidates = sorted({word for text in texts for word in words(text)} | {"x"})
    wanted = query.draw(st.sampled_from(candidates))
    wanted = query.draw(st.sampled_from([wanted, wanted.upper(), f"{wanted} {candidates[0]}"]))
    if not words(wanted):
        return
    answers = []
    for kind in ("modules", "plain"):
        prefix = f"w{uuid.uuid4().hex[:8]}:"
        url = servers[kind].url
        for n, text in enumerate(texts):
            ConversationMemory(f"c{n}", url=url, prefix=prefix).summary = text
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            found = ConversationMemory.find(url=url, prefix=prefix, summary__contains=wanted, limit=None)
        answers.append(sorted(mem.conversation_id for mem in found))
    assert answers[0] == answers[1], (texts, wanted)


def test_a_newline_inside_a_text_field_joins_the_words_around_it(servers: dict[str, RedisProcess]) -> None:
    """RediSearch drops control characters from words, so "there\nI" is the word "therei";
    the fallback agrees. (Message copies turn them into spaces: see test_message_copies.)"""
    for kind in ("modules", "plain"):
        prefix = f"w{uuid.uuid4().hex[:8]}:"
        url = servers[kind].url
        ConversationMemory("c", url=url, prefix=prefix).summary = "Hello there\nI need a refund"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert ConversationMemory.count(url=url, prefix=prefix, summary__contains="refund hello") == 1
            assert ConversationMemory.count(url=url, prefix=prefix, summary__contains="there") == 0
            assert ConversationMemory.count(url=url, prefix=prefix, summary__contains="there\nI") == 1
            assert ConversationMemory.count(url=url, prefix=prefix, summary__contains="thereI") == 1
