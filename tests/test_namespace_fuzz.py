"""Namespace isolation under fuzzing: random ids, names, values, filters and sequences of
operations on one object, which stores or refuses each value as documented.

How the fuzz checks that an object never reads or writes a key outside its namespace: it
runs as an ACL user allowed only the object's own keys (``~<prefix>{<encoded id>}*``, its
message copies ``~<prefix>#m{<encoded id>}*``, its op log ``~<prefix>~ops{<encoded id>}*``)
and the prefix's indexes (``~<prefix>idx:*``), and after each example asserts that the
server's ``ACL LOG`` holds no denial. Redis checks key permissions on every command,
including each ``redis.call`` inside our Lua scripts, so a script touching an undeclared key
outside the namespace is caught too; and the ACL LOG records denials even when the library
swallows the error (a ``MONITOR`` thread would have to parse every command's key positions,
and a SCAN before/after only sees writes). As a second, independent check, every key that
appeared on the server during the example must belong to the object.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_memory import (
    ConversationMemory,
    InvalidNameError,
    MissingIndexError,
    MissingKeyError,
    RedisMemoryError,
    ReservedNameError,
    UnstorableValueError,
    WrongTypeError,
)
from redis_memory.keys import MAX_ID_LENGTH, MAX_NAME_LENGTH, parse_hash_key
from redis_memory.memory import RESERVED_NAMES
from redis_memory.search.index import conversation_index
from tests.security import AclServer

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

pytest_plugins = ["tests.security"]


FIND_PARAMETERS = {"sort_by", "limit", "offset", "url", "client", "prefix"}
INDEXED = sorted(conversation_index().fields)
NAME_ERRORS = (InvalidNameError, ReservedNameError)
DOC_KEY_CHARACTERS = st.characters(exclude_characters='"\\', exclude_categories=["Cs"])
# the keys a dict attribute holds: no '"' or '\\', no leading space (docs/usage.md)
doc_keys = st.text(alphabet=DOC_KEY_CHARACTERS, max_size=8).filter(lambda key: not key.startswith(" "))

ids = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from([*"{}:*?[]\\%#~\n\r\t \x00", "ü", "💥", "a"]), max_size=40),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.uuids(),
    st.builds(lambda char, n: char * n, st.sampled_from(["x", "{", "💥", "%"]), st.integers(1020, 1030)),
    st.sampled_from([None, 1.5, b"bytes", True, ""]),
)
common_names = st.sampled_from(["messages", "profile", "tags", "state", "confidence", "n", "ünï"])
names = st.one_of(
    common_names,  # most operations meet an attribute stored by an earlier one
    common_names,
    common_names,
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True),
    st.sampled_from([*INDEXED, "x" * (MAX_NAME_LENGTH + 1), "_private"]),
    st.sampled_from(sorted(RESERVED_NAMES | {"memory_id", "conversation_id", "index_messages"})),
    st.text(max_size=12).filter(lambda text: not text.startswith("_")),
)
collection_names = st.one_of(st.sampled_from(["messages", "profile", "tags"]), names)
scalar_json = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalar_json,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(doc_keys, children, max_size=4),
    ),
    max_leaves=12,
)
# (must store, value): values the documentation says are stored, and values it says are refused
values = st.one_of(
    st.tuples(st.just(True), json_values),
    st.tuples(st.just(True), st.sets(st.one_of(st.none(), st.booleans(), st.integers(-100, 100), st.text(max_size=8)))),
    st.tuples(st.just(True), st.one_of(st.uuids(), st.dates(), st.datetimes(), st.binary(max_size=10))),
    st.tuples(st.just(True), st.decimals(allow_nan=False, allow_infinity=False, places=4)),
    st.tuples(st.just(True), st.tuples(scalar_json, scalar_json)),
    st.tuples(
        st.just(False), st.sampled_from([math.nan, math.inf, Decimal("NaN"), 1j, object(), [2**64], [date(2025, 1, 1)]])
    ),
    st.tuples(st.just(False), st.dictionaries(st.sampled_from(['a"b', "c\\d", " e"]), st.integers(0, 3), min_size=1)),
    st.tuples(st.just(False), st.sets(st.tuples(st.integers(0, 3)), min_size=1)),
)
# Stored first in every example, so that the operations meet each kind of attribute.
seeds = st.fixed_dictionaries(
    {
        "messages": st.lists(json_values, max_size=4),
        "profile": st.builds(
            lambda doc, inner: {**doc, "a": inner},
            st.dictionaries(doc_keys, json_values, max_size=3),
            st.dictionaries(doc_keys, json_values, max_size=3),
        ),
        "tags": st.sets(st.one_of(st.integers(-100, 100), st.text(max_size=8)), max_size=4),
        "state": st.text(max_size=20),
        "n": st.integers(-1000, 1000),
    }
)
amounts = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6), st.sampled_from(["1", None, True, math.nan, math.inf])
)
filter_values = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from([*"{}|@*()-~$\\\"' :\x1f%", "a", "é"]), max_size=12),
    st.integers(-(2**70), 2**70),  # beyond float range: pinned in test_pinned_bugs
    st.floats(),
    st.datetimes(),
    st.dates(),
    st.lists(st.one_of(st.text(max_size=6), st.integers(-5, 5)), max_size=3),
    st.none(),
    st.booleans(),
    st.uuids(),
)
filter_keys = st.one_of(
    st.builds(
        lambda name, op: name + op,
        st.sampled_from([*INDEXED, "messages", "nope"]),
        st.sampled_from(["", "__ne", "__in", "__startswith", "__gt", "__gte", "__lt", "__lte", "__contains", "__x"]),
    ),
    st.text(max_size=10),
).filter(lambda key: key not in FIND_PARAMETERS)
sort_keys = st.one_of(st.none(), st.sampled_from([*INDEXED, *(f"-{name}" for name in INDEXED), "nope", "-"]))
operations = st.one_of(
    st.tuples(st.just("set"), names, values),
    st.tuples(st.just("set"), common_names, values),
    st.tuples(st.just("get"), names),
    st.tuples(st.just("delete"), names),
    st.tuples(st.just("append"), collection_names, values),
    st.tuples(st.just("path"), collection_names, st.text(max_size=6), values),
    st.tuples(st.just("pop"), collection_names, st.text(max_size=6)),
    st.tuples(st.just("incr"), names, amounts),
    st.tuples(st.just("cas"), names, values, values),
    st.tuples(st.just("transaction"), st.lists(st.tuples(names, values), min_size=1, max_size=3), names),
    st.tuples(st.just("find"), st.dictionaries(filter_keys, filter_values, max_size=3), sort_keys),
    st.tuples(st.just("search"), st.one_of(st.none(), st.text(max_size=12)), filter_values),
    st.tuples(st.just("to_dict")),
    st.tuples(st.just("dir")),
    st.tuples(st.just("clear")),
)


def storable_name(name: str) -> bool:
    """The documented rule: a Python identifier, not starting with '_', at most 200
    characters, and not a name of the class itself."""
    return (
        name.isidentifier()
        and not name.startswith("_")
        and len(name) <= MAX_NAME_LENGTH
        and name not in RESERVED_NAMES
        and not hasattr(ConversationMemory, name)
    )


def valid_id(value: object) -> bool:
    """The documented rule: a non-empty str, int or UUID of at most 1024 characters, UTF-8."""
    if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
        return False
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return 0 < len(text) <= MAX_ID_LENGTH


def same(read: object, stored: object) -> bool:
    """``read == stored``, except that floats inside documents may differ in the last bit:
    RedisJSON 2.8 does not parse every float exactly (pinned in test_pinned_bugs)."""
    if isinstance(stored, float) and isinstance(read, float):
        return math.isclose(read, stored, rel_tol=4e-16)
    if isinstance(stored, dict) and isinstance(read, dict):
        return read.keys() == stored.keys() and all(same(read[key], stored[key]) for key in stored)
    if isinstance(stored, list) and isinstance(read, list):
        return len(read) == len(stored) and all(map(same, read, stored))
    return read == stored


def comparable(value: object) -> bool:
    """Whether reading back must give ``== value`` (aware datetimes in the same zone compare
    by wall-clock fields, which a nonexistent local time does not keep; left out)."""
    return not isinstance(value, datetime) or value.tzinfo is None


@dataclass
class Fuzz:
    """One example: a memory object under test, a reader that bypasses the local mirror, and
    the names that must be stored (changed only by operations that succeeded)."""

    mem: ConversationMemory
    reader: ConversationMemory
    url: str
    prefix: str
    stored: set[str] = field(default_factory=set)

    def attempt(self, allowed: tuple[type[BaseException], ...], action: Callable[[], Any]) -> tuple[bool, Any]:
        """Run ``action``; only ``allowed`` errors may come out, and only the library's own or
        the plain builtins it documents for bad arguments."""
        try:
            return True, action()
        except allowed as exc:
            assert isinstance(exc, RedisMemoryError) or type(exc) in (ValueError, TypeError, AttributeError), exc
            return False, exc

    def run(self, operation: tuple[Any, ...]) -> None:
        kind, *args = operation
        getattr(self, f"op_{kind}")(*args)

    def op_set(self, name: str, value: tuple[bool, Any]) -> None:
        must, item = value
        ok, _ = self.attempt((*NAME_ERRORS, UnstorableValueError), lambda: setattr(self.mem, name, item))
        if storable_name(name) and must:
            assert ok, f"storing {item!r} as {name!r} should work"
        if not must and not name.startswith("_"):
            assert not ok, f"{item!r} should be refused"
        if ok and not name.startswith("_"):
            self.stored.add(name)
            if comparable(item):
                read = getattr(self.reader, name)
                assert same(read, item), (read, item)

    def op_get(self, name: str) -> None:
        ok, _ = self.attempt((AttributeError,), lambda: getattr(self.mem, name))
        if storable_name(name):
            assert ok == (name in self.stored)

    def op_delete(self, name: str) -> None:
        was_stored = name in self.stored
        ok, _ = self.attempt((AttributeError,), lambda: delattr(self.mem, name))
        if storable_name(name):
            assert ok == was_stored
        if ok and not name.startswith("_"):
            self.stored.discard(name)

    def _collection(self, name: str) -> Any:
        ok, found = self.attempt((AttributeError,), lambda: getattr(self.mem, name))
        return found if ok and isinstance(found, (list, dict, set)) else None

    def op_append(self, name: str, value: tuple[bool, Any]) -> None:
        target, (_, item) = self._collection(name), value
        allowed = (UnstorableValueError, TypeError)  # TypeError: an unhashable value for a set
        if isinstance(target, list):
            self.attempt(allowed, lambda: target.append(item))
        elif isinstance(target, set):
            self.attempt(allowed, lambda: target.add(item))
        elif isinstance(target, dict):
            self.attempt(allowed, lambda: target.setdefault("k", item))

    def op_path(self, name: str, key: str, value: tuple[bool, Any]) -> None:
        target, (_, item) = self._collection(name), value
        if not isinstance(target, dict):
            return
        nested = next((child for child in target.values() if isinstance(child, dict)), None)
        container = nested if nested is not None and key.startswith("a") else target
        self.attempt((UnstorableValueError,), lambda: container.__setitem__(key, item))
        self.attempt((UnstorableValueError,), lambda: container.update({key: item, "k2": 1}))

    def op_pop(self, name: str, key: str) -> None:
        target = self._collection(name)
        if isinstance(target, list):
            self.attempt((MissingIndexError,), target.pop)
        elif isinstance(target, set):
            self.attempt((MissingKeyError,), target.pop)
        elif isinstance(target, dict):  # a key no dict attribute can hold: UnstorableValueError
            self.attempt((MissingKeyError, UnstorableValueError), lambda: target.pop(key))

    def op_incr(self, name: str, amount: Any) -> None:
        allowed = (*NAME_ERRORS, UnstorableValueError, WrongTypeError)
        ok, _ = self.attempt(allowed, lambda: self.mem.incr(name, amount))
        if ok:
            self.stored.add(name)

    def op_cas(self, name: str, expected: tuple[bool, Any], new: tuple[bool, Any]) -> None:
        allowed = (*NAME_ERRORS, UnstorableValueError)
        ok, changed = self.attempt(allowed, lambda: self.mem.compare_and_set(name, expected[1], new[1]))
        if ok and changed:
            self.stored.add(name)

    def op_transaction(self, writes: list[tuple[str, tuple[bool, Any]]], counter: str) -> None:
        def block() -> None:
            with self.mem.transaction():
                for name, (_, item) in writes:
                    setattr(self.mem, name, item)
                self.mem.incr(counter)

        before = self.reader.to_dict()
        ok, _ = self.attempt((*NAME_ERRORS, UnstorableValueError, WrongTypeError), block)
        if ok:
            self.stored |= {name for name, _ in writes if not name.startswith("_")} | {counter}
        else:
            assert self.reader.to_dict() == before, "a failed transaction must write nothing"

    def op_find(self, filters: dict[str, Any], sort_by: str | None) -> None:
        def query() -> list[ConversationMemory]:
            return ConversationMemory.find(url=self.url, prefix=self.prefix, sort_by=sort_by, limit=None, **filters)

        ok, found = self.attempt((InvalidNameError, UnstorableValueError, ValueError), query)
        if ok:
            assert {match.conversation_id for match in found} <= {self.mem.conversation_id}

    def op_search(self, text: str | None, role: Any) -> None:
        def query() -> list[Any]:
            return ConversationMemory.search_messages(text, url=self.url, prefix=self.prefix, role=role)

        ok, found = self.attempt((InvalidNameError, UnstorableValueError, ValueError), query)
        if ok:
            assert {match.conversation_id for match in found} <= {self.mem.conversation_id}

    def op_to_dict(self) -> None:
        assert set(self.mem.to_dict()) == self.stored

    def op_dir(self) -> None:
        assert self.stored <= set(dir(self.mem))

    def op_clear(self) -> None:
        self.mem.clear()
        self.stored.clear()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(object_id=ids, index_messages=st.booleans(), seed=seeds, steps=st.lists(operations, min_size=2, max_size=12))
def test_fuzzed_ids_names_values_and_filters_stay_in_their_namespace(
    acl_server: AclServer,
    prefix: str,
    object_id: Any,
    index_messages: bool,
    seed: dict[str, Any],
    steps: list[tuple[Any, ...]],
) -> None:
    password = "fuzz-pw"
    url = acl_server.url("fuzz", password)
    # Until it knows which object it is, the user may only touch the prefix's indexes.
    acl_server.admin.execute_command(
        "ACL", "SETUSER", "fuzz", "on", f">{password}", "&*", "+@all", "resetkeys", f"~{prefix}idx:*",
        "~memory:__probe__",
    )  # fmt: skip
    if not valid_id(object_id):
        with pytest.raises(InvalidNameError):
            ConversationMemory(object_id, url=url, prefix=prefix)
        return
    mem = ConversationMemory(object_id, url=url, prefix=prefix, index_messages=index_messages)
    hash_key = mem._space.hash_key
    tag = hash_key[len(prefix) :]
    assert tag.startswith("{") and tag.endswith("}") and not set(tag[1:-1]) & set("{}*?[]\\: \n#")
    assert parse_hash_key(hash_key, prefix) == str(object_id)
    own = (hash_key, f"{prefix}#m{tag}", f"{prefix}~ops{tag}", f"{prefix}__meta__")  # and the layout record
    acl_server.admin.execute_command(
        "ACL", "SETUSER", "fuzz", "resetkeys", *(f"~{start}*" for start in own), f"~{prefix}idx:*",
        "~memory:__probe__",
    )  # fmt: skip
    reader = ConversationMemory(object_id, url=url, prefix=prefix, cache=False)
    fuzz = Fuzz(mem, reader, url, prefix)
    keys_before = set(acl_server.all_keys())
    try:
        for name, value in seed.items():
            fuzz.op_set(name, (True, value))
        for step in steps:
            fuzz.run(step)
        fuzz.op_to_dict()
        assert acl_server.denials() == []
        strangers = [key for key in set(acl_server.all_keys()) - keys_before if not key.startswith(own)]
        assert strangers == []
    finally:
        for key in acl_server.admin.scan_iter(f"{prefix}*", count=1000):
            acl_server.admin.delete(key)
        acl_server.admin.acl_log_reset()
