"""A stored list or dict is accepted unchanged, with its real content, by what agents pass it to.

``mem.messages`` is a ``RedisList`` (a real ``list`` whose items are filled when read) and
``mem.context`` a ``RedisDict``. json, orjson, pydantic, ``copy``, ``pickle``, concatenation,
slicing and comparison must all see exactly the stored content: a ``list`` subclass whose own
storage were empty would make orjson, pydantic and ``x + [...]`` silently wrong.

Every test runs against a server with RedisJSON and one without (the ``memory`` fixture), and
reads the values two ways: through the memory object that stored them (served from its local
mirror) and through a second backend with its own connection, as another process would (a
cold read from Redis).
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import orjson
import pydantic
import pytest
import redis

from redis_memory import ConversationMemory, FrozenDict, ReadOnlyElementError, RedisDict, RedisList
from redis_memory.keys import KeySpace
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a terse assistant."},
    {
        "role": "user",
        "content": 'Héllo ✓ "quoted" \\ and a newline\n',
        "meta": {"n": 1, "score": 0.5, "ok": True, "none": None, "tags": ["a", ["nested", 2]]},
    },
    {"role": "assistant", "content": "Hi! How can I help you?"},
]

CONTEXT: dict[str, Any] = {
    "topic": "technical support",
    "tags": ["billing", "urgent"],
    "user": {"name": "Alice", "preferences": {"language": "en", "tone": "casual"}},
    "score": 0.75,
    "open": True,
    "note": None,
    "turns": 3,
    "history": [{"intent": "greeting"}, {"intent": "billing_question"}],
}

EXTRA = {"role": "user", "content": "Tell me a joke"}


@pytest.fixture(params=["writer", "reader"])
def mem(request: pytest.FixtureRequest, memory: MemoryFactory, server: RedisProcess, prefix: str) -> ConversationMemory:
    """Conversation "c1" holding MESSAGES and CONTEXT, opened by the writer or by a second backend."""
    writer = memory("c1")
    writer.messages = copy.deepcopy(MESSAGES)
    writer.context = copy.deepcopy(CONTEXT)
    if request.param == "writer":
        return writer
    client = server.client()
    request.addfinalizer(client.close)
    return ConversationMemory("c1", client=client, prefix=prefix)


@pytest.fixture
def stored(raw: redis.Redis, prefix: str) -> Callable[[], list[Any]]:
    """Reads the messages straight from Redis with a plain client (LRANGE), bypassing the library."""
    key = KeySpace(prefix, "c1").collection_key("messages")

    def read() -> list[Any]:
        return [json.loads(item) for item in raw.lrange(key, 0, -1)]

    return read


def assert_plain(value: Any) -> None:
    """``value`` is made of plain, mutable ``dict`` and ``list`` objects only (no proxies)."""
    if isinstance(value, dict):
        assert type(value) is dict, type(value)
        for item in value.values():
            assert_plain(item)
    elif isinstance(value, list):
        assert type(value) is list, type(value)
        for item in value:
            assert_plain(item)


# -- the list attribute -------------------------------------------------------------------------


def test_messages_is_a_real_filled_list(mem: ConversationMemory) -> None:
    messages = mem.messages
    assert isinstance(messages, RedisList)
    assert isinstance(messages, list)
    assert len(messages) == 3
    assert list.__len__(messages) == 3  # the list's own storage, as C code reads it
    assert messages[1]["meta"]["tags"][1] == ["nested", 2]


def test_json_dumps(mem: ConversationMemory) -> None:
    text = json.dumps(mem.messages)
    assert text == json.dumps(MESSAGES)
    assert json.loads(text) == MESSAGES
    assert json.dumps(mem.messages, ensure_ascii=False, indent=2) == json.dumps(MESSAGES, ensure_ascii=False, indent=2)


def test_orjson_dumps(mem: ConversationMemory) -> None:
    data = orjson.dumps(mem.messages)
    assert data == orjson.dumps(MESSAGES)
    assert orjson.loads(data) == MESSAGES
    assert orjson.dumps(mem.messages, option=orjson.OPT_INDENT_2) == orjson.dumps(MESSAGES, option=orjson.OPT_INDENT_2)


@pytest.mark.parametrize("strict", [False, True], ids=["lax", "strict"])
def test_pydantic_type_adapter(mem: ConversationMemory, strict: bool) -> None:
    adapter = pydantic.TypeAdapter(list[dict[str, Any]], config=pydantic.ConfigDict(strict=strict))
    validated = adapter.validate_python(mem.messages, strict=strict)
    assert validated == MESSAGES
    assert type(validated) is list
    assert [type(item) for item in validated] == [dict, dict, dict]
    assert adapter.dump_json(mem.messages) == adapter.dump_json(MESSAGES)
    assert json.loads(adapter.dump_json(mem.messages)) == MESSAGES

    bare = pydantic.TypeAdapter(list[dict])  # type: ignore[type-arg]  # the bare form users write
    assert bare.validate_python(mem.messages, strict=strict) == MESSAGES


@pytest.mark.parametrize("strict", [False, True], ids=["lax", "strict"])
def test_pydantic_model_field(mem: ConversationMemory, strict: bool) -> None:
    class Chat(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(strict=strict)
        messages: list[dict[str, Any]]
        context: dict[str, Any]

    chat = Chat(messages=mem.messages, context=mem.context)
    assert chat.messages == MESSAGES
    assert chat.context == CONTEXT
    assert json.loads(chat.model_dump_json()) == {"messages": MESSAGES, "context": CONTEXT}
    assert Chat.model_validate({"messages": mem.messages, "context": mem.context}).model_dump() == {
        "messages": MESSAGES,
        "context": CONTEXT,
    }


def test_deepcopy_is_plain_mutable_and_independent(
    mem: ConversationMemory, memory: MemoryFactory, stored: Callable[[], list[Any]]
) -> None:
    messages = mem.messages
    duplicate = copy.deepcopy(messages)
    assert duplicate == MESSAGES
    assert_plain(duplicate)

    duplicate[0]["content"] = "changed"
    duplicate[1]["meta"]["tags"][1].append("more")
    del duplicate[1]["meta"]["score"]
    duplicate.append(EXTRA)

    assert messages == MESSAGES
    assert mem.messages == MESSAGES
    assert memory("c1").messages == MESSAGES
    assert stored() == MESSAGES
    # deep-copying a container that holds the list works as well
    assert copy.deepcopy({"history": messages}) == {"history": MESSAGES}


def test_copy_copy(mem: ConversationMemory, stored: Callable[[], list[Any]]) -> None:
    messages = mem.messages
    duplicate = copy.copy(messages)
    assert type(duplicate) is list
    assert duplicate == MESSAGES
    assert duplicate[2] is messages[2]  # shallow: the same (read-only) elements

    duplicate.append(EXTRA)
    duplicate.pop(0)
    assert duplicate == [*MESSAGES[1:], EXTRA]
    assert messages == MESSAGES
    assert stored() == MESSAGES


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(mem: ConversationMemory, protocol: int, stored: Callable[[], list[Any]]) -> None:
    restored = pickle.loads(pickle.dumps(mem.messages, protocol=protocol))
    assert restored == MESSAGES
    assert_plain(restored)
    restored[0]["content"] = "changed"
    restored.append(EXTRA)
    assert stored() == MESSAGES

    both = pickle.loads(pickle.dumps({"messages": mem.messages, "context": mem.context}, protocol=protocol))
    assert both == {"messages": MESSAGES, "context": CONTEXT}
    assert_plain(both)


def test_concatenation(mem: ConversationMemory, stored: Callable[[], list[Any]]) -> None:
    messages = mem.messages
    after = messages + [EXTRA]
    before = [EXTRA] + messages
    assert after == [*MESSAGES, EXTRA]
    assert before == [EXTRA, *MESSAGES]
    assert type(after) is list
    assert type(before) is list
    assert len(after) == len(before) == 4
    assert messages * 2 == MESSAGES * 2
    assert [*messages, EXTRA] == [*MESSAGES, EXTRA]
    assert messages == MESSAGES
    assert stored() == MESSAGES


def test_list_constructor_and_iteration(mem: ConversationMemory) -> None:
    messages = mem.messages
    plain = list(messages)
    assert type(plain) is list
    assert plain == MESSAGES
    assert [message["role"] for message in messages] == ["system", "user", "assistant"]
    assert tuple(messages) == tuple(MESSAGES)
    assert list(reversed(messages)) == MESSAGES[::-1]
    assert MESSAGES[2] in messages
    assert messages.index(MESSAGES[1]) == 1
    assert messages.count(MESSAGES[0]) == 1


def test_equality(mem: ConversationMemory) -> None:
    messages = mem.messages
    assert messages == MESSAGES
    assert MESSAGES == messages  # noqa: SIM300 - the plain list's __eq__ is what is tested
    assert not messages != MESSAGES  # noqa: SIM202 - __ne__ is what is tested
    assert messages != MESSAGES[:2]
    assert messages != [*MESSAGES, EXTRA]
    assert messages != [MESSAGES[0], MESSAGES[1], {"role": "assistant", "content": "other"}]
    assert messages == mem.messages


def test_slicing(mem: ConversationMemory) -> None:
    messages = mem.messages
    assert messages[1:] == MESSAGES[1:]
    assert messages[:-1] == MESSAGES[:-1]
    assert messages[::-1] == MESSAGES[::-1]
    assert messages[-1:] == [MESSAGES[-1]]
    assert messages[5:] == []
    assert type(messages[1:]) is list
    assert messages[-1] == MESSAGES[-1]
    assert messages[-2]["role"] == "user"


def test_serializers_see_writes_made_through_the_proxy(
    mem: ConversationMemory, memory: MemoryFactory, server: RedisProcess, prefix: str
) -> None:
    """After an append by another client, then one through a list read before it, all readers are current."""
    messages = mem.messages
    other = {"role": "assistant", "content": "from another writer"}
    with server.client() as client:
        ConversationMemory("c1", client=client, prefix=prefix).messages.append(other)
    messages.append(EXTRA)  # `messages` missed the other append: this write re-reads it
    expected = [*MESSAGES, other, EXTRA]
    assert messages == expected
    assert json.loads(json.dumps(messages)) == expected
    assert orjson.loads(orjson.dumps(messages)) == expected
    assert pydantic.TypeAdapter(list[dict]).validate_python(messages, strict=True) == expected  # type: ignore[type-arg]
    assert messages + [] == expected
    assert memory("c1").messages == expected


# -- the dict attribute -------------------------------------------------------------------------


def test_context_is_a_real_filled_dict(mem: ConversationMemory) -> None:
    context = mem.context
    assert isinstance(context, RedisDict)
    assert isinstance(context, dict)
    assert dict.__len__(context) == len(CONTEXT)
    assert context == CONTEXT
    assert CONTEXT == context  # noqa: SIM300 - the plain dict's __eq__ is what is tested


def test_dict_json_dumps(mem: ConversationMemory) -> None:
    text = json.dumps(mem.context)
    assert json.loads(text) == CONTEXT
    assert json.dumps(mem.context, sort_keys=True) == json.dumps(CONTEXT, sort_keys=True)


def test_dict_orjson_dumps(mem: ConversationMemory) -> None:
    data = orjson.dumps(mem.context)
    assert orjson.loads(data) == CONTEXT
    assert orjson.dumps(mem.context, option=orjson.OPT_SORT_KEYS) == orjson.dumps(CONTEXT, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("strict", [False, True], ids=["lax", "strict"])
def test_dict_pydantic_type_adapter(mem: ConversationMemory, strict: bool) -> None:
    for adapter in (pydantic.TypeAdapter(dict), pydantic.TypeAdapter(dict[str, Any])):
        validated = adapter.validate_python(mem.context, strict=strict)
        assert validated == CONTEXT
        assert type(validated) is dict
        assert json.loads(adapter.dump_json(mem.context)) == CONTEXT
        assert json.loads(adapter.dump_json(validated)) == CONTEXT


def test_dict_copies_are_plain_and_independent(mem: ConversationMemory, memory: MemoryFactory) -> None:
    context = mem.context
    for duplicate in (copy.deepcopy(context), copy.copy(context), pickle.loads(pickle.dumps(context))):
        assert duplicate == CONTEXT
        assert_plain(duplicate)
        duplicate["user"]["preferences"]["tone"] = "formal"
        duplicate["tags"].append("changed")
    assert context == CONTEXT
    assert memory("c1").context == CONTEXT


# -- elements are read-only snapshots --------------------------------------------------------------


def test_element_assignment_raises_and_writes_nothing(
    mem: ConversationMemory, memory: MemoryFactory, stored: Callable[[], list[Any]]
) -> None:
    with pytest.raises(ReadOnlyElementError) as caught:
        mem.messages[0]["content"] = "x"
    assert isinstance(caught.value, TypeError)
    assert mem.messages[0]["content"] == MESSAGES[0]["content"]
    assert memory("c1").messages == MESSAGES
    assert stored() == MESSAGES


MUTATIONS: dict[str, Callable[[list[Any]], object]] = {
    "setitem-new-key": lambda m: m[0].__setitem__("name", "bot"),
    "delitem": lambda m: m[0].__delitem__("content"),
    "update": lambda m: m[0].update(content="x"),
    "pop": lambda m: m[0].pop("content"),
    "popitem": lambda m: m[0].popitem(),
    "setdefault": lambda m: m[0].setdefault("name", "bot"),
    "clear": lambda m: m[0].clear(),
    "ior": lambda m: m[0].__ior__({"content": "x"}),
    "nested-dict": lambda m: m[1]["meta"].__setitem__("n", 2),
    "nested-list-append": lambda m: m[1]["meta"]["tags"].append("c"),
    "nested-list-setitem": lambda m: m[1]["meta"]["tags"].__setitem__(0, "z"),
    "nested-list-extend": lambda m: m[1]["meta"]["tags"][1].extend([3]),
    "nested-list-sort": lambda m: m[1]["meta"]["tags"].sort(key=str),
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_every_in_place_change_of_an_element_raises(
    mem: ConversationMemory, stored: Callable[[], list[Any]], mutate: Callable[[list[Any]], object]
) -> None:
    messages = mem.messages
    with pytest.raises(ReadOnlyElementError):
        mutate(messages)
    assert messages == MESSAGES
    assert mem.messages == MESSAGES
    assert stored() == MESSAGES


def test_elements_are_dicts_and_copy_to_mutable(mem: ConversationMemory, stored: Callable[[], list[Any]]) -> None:
    element = mem.messages[1]
    assert isinstance(element, dict)
    assert isinstance(element, FrozenDict)
    assert json.loads(json.dumps(element)) == MESSAGES[1]
    assert orjson.loads(orjson.dumps(element)) == MESSAGES[1]
    mutable = copy.deepcopy(element)
    assert_plain(mutable)
    mutable["content"] = "x"
    mutable["meta"]["tags"].append("c")
    assert dict(element) == MESSAGES[1]
    assert {**element, "content": "x"} == {**MESSAGES[1], "content": "x"}
    assert stored() == MESSAGES


def test_replacing_an_element_is_the_way_to_change_it(
    mem: ConversationMemory, memory: MemoryFactory, stored: Callable[[], list[Any]]
) -> None:
    messages = mem.messages
    messages[0] = {**messages[0], "content": "x"}
    expected = [{**MESSAGES[0], "content": "x"}, *MESSAGES[1:]]
    assert messages == expected
    assert stored() == expected
    assert memory("c1").messages == expected


def test_empty_list(memory: MemoryFactory) -> None:
    mem = memory("empty")
    mem.messages = []
    messages = mem.messages
    assert isinstance(messages, RedisList)
    assert messages == []
    assert json.dumps(messages) == "[]"
    assert orjson.dumps(messages) == b"[]"
    assert pydantic.TypeAdapter(list[dict[str, Any]]).validate_python(messages, strict=True) == []
    assert messages + [EXTRA] == [EXTRA]
    assert [EXTRA] + messages == [EXTRA]
    assert pickle.loads(pickle.dumps(messages)) == []
    assert copy.deepcopy(messages) == []


def test_dict_serializers_see_nested_writes(mem: ConversationMemory, memory: MemoryFactory) -> None:
    context = mem.context
    context["user"]["preferences"]["tone"] = "formal"
    context["tags"].insert(0, "vip")
    context["history"].append({"intent": "refund"})
    context["turns"] = 4
    del context["note"]
    expected = copy.deepcopy(CONTEXT)
    expected["user"]["preferences"]["tone"] = "formal"
    expected["tags"].insert(0, "vip")
    expected["history"].append({"intent": "refund"})
    expected["turns"] = 4
    del expected["note"]
    assert context == expected
    assert json.loads(json.dumps(context)) == expected
    assert orjson.loads(orjson.dumps(context)) == expected
    assert pydantic.TypeAdapter(dict[str, Any]).validate_python(context, strict=True) == expected
    assert copy.deepcopy(context) == expected
    assert memory("c1").context == expected
