"""Dict attributes behave like Python dicts and write through at the changed path."""

from __future__ import annotations

import json
import random

import pytest
import redis

from redis_memory import ConcurrentModificationError, ConversationMemory, RedisDict, RedisDocList, WrongTypeError
from tests.conftest import MemoryFactory
from tests.servers import RedisProcess

pytestmark = pytest.mark.on_cluster  # also on a Redis Cluster (tests/conftest.py)


def test_dict_methods_write_through(memory: MemoryFactory) -> None:
    mem = memory()
    mem.profile = {"name": "Alice"}
    profile = mem.profile
    profile["age"] = 30
    profile.update({"city": "Paris"}, lang="en")
    assert profile.setdefault("name", "Bob") == "Alice"
    assert profile.setdefault("tags", []) == []
    assert profile.pop("age") == 30
    assert profile.pop("missing", "default") == "default"
    del profile["lang"]
    expected = {"name": "Alice", "city": "Paris", "tags": []}
    assert profile == expected
    assert memory().profile == expected
    assert profile.popitem() == ("tags", [])
    assert memory().profile == {"name": "Alice", "city": "Paris"}
    profile |= {"x": 1}
    assert memory().profile["x"] == 1
    profile.clear()
    assert memory().profile == {}


def test_dict_reads(memory: MemoryFactory) -> None:
    mem = memory()
    mem.context = {"topic": "billing", "n": 1}
    context = memory().context
    assert isinstance(context, RedisDict) and isinstance(context, dict)
    assert context["topic"] == "billing" and context.get("zzz") is None and "n" in context and len(context) == 2
    assert list(context.keys()) == ["topic", "n"] and list(context.values()) == ["billing", 1]
    assert dict(context.items()) == {"topic": "billing", "n": 1}
    with pytest.raises(KeyError):
        _ = context["zzz"]


def test_nested_mutation_changes_one_path(memory: MemoryFactory, raw: redis.Redis, server) -> None:
    mem = memory()
    mem.user_profile = {"name": "Alice", "preferences": {"language": "en", "tone": "casual"}, "history": [1]}
    mem.user_profile["preferences"]["tone"] = "formal"
    mem.user_profile["history"].append(2)
    mem.user_profile["history"].insert(0, 0)
    assert memory().user_profile == {
        "name": "Alice",
        "preferences": {"language": "en", "tone": "formal"},
        "history": [0, 1, 2],
    }
    assert isinstance(mem.user_profile["history"], RedisDocList)
    if server.modules:
        key = mem._space.collection_key("user_profile")
        assert json.loads(raw.execute_command("JSON.GET", key, '$["preferences"]["tone"]')) == ["formal"]


def test_nested_list_methods(memory: MemoryFactory) -> None:
    mem = memory()
    mem.doc = {"xs": [3, 1, 2]}
    xs = mem.doc["xs"]
    xs.sort()
    assert memory().doc["xs"] == [1, 2, 3]
    assert xs.pop() == 3 and xs.pop(0) == 1
    xs.extend([{"a": 1}, {"b": 2}])
    xs[1]["a"] = 10  # nested dict inside a nested list: its path follows the shift from pop(0)
    xs.remove(2)
    assert memory().doc == {"xs": [{"a": 10}, {"b": 2}]}
    xs[0:1] = []
    del xs[0]
    assert memory().doc == {"xs": []}


def test_keys_with_json_path_characters(memory: MemoryFactory) -> None:
    mem = memory()
    keys = ["x]y", "q'z", "$", "..", "[0]", "ü ñ", "a.b", "", "\n", "\t", "x\x01y", "*", "@", "{}"]
    mem.doc = {}
    for index, key in enumerate(keys):
        mem.doc[key] = {"i": index}
    for key in keys:
        mem.doc[key]["i"] += 100
    assert memory().doc == {key: {"i": index + 100} for index, key in enumerate(keys)}


@pytest.mark.parametrize("key", ['a"b', "back\\slash"])
def test_keys_a_json_path_cannot_address_are_refused_on_every_server(memory: MemoryFactory, key: str) -> None:
    mem = memory()
    with pytest.raises(TypeError):
        mem.doc = {"ok": {key: 1}}
    mem.doc = {"ok": 1}
    with pytest.raises(TypeError):
        mem.doc[key] = 1
    with pytest.raises(TypeError):
        mem.doc.update({"fine": 1, key: 2})
    assert memory().doc == {"ok": 1}
    mem.messages = [{key: 1}]  # list elements are JSON text: any key is fine there
    assert memory().messages == [{key: 1}]


def test_non_str_keys_and_bad_values_are_rejected(memory: MemoryFactory) -> None:
    mem = memory()
    mem.doc = {"a": 1}
    with pytest.raises(TypeError):
        mem.doc[1] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        mem.doc["b"] = {1, 2}
    with pytest.raises(TypeError):
        mem.doc.update({"ok": 1, "bad": object()})
    assert memory().doc == {"a": 1}


def test_update_is_all_or_none_when_a_path_vanished(memory: MemoryFactory) -> None:
    mem = memory()
    mem.doc = {"inner": {"a": 1}, "b": 0}
    inner = mem.doc["inner"]
    memory(separate=True).doc = {"b": 5}  # someone replaces the whole document
    with pytest.raises(ConcurrentModificationError):
        inner.update({"a": 2, "c": 3})
    assert memory(cache=False).doc == {"b": 5}


def test_update_of_a_deleted_attribute_is_refused(memory: MemoryFactory) -> None:
    mem = memory()
    mem.doc = {"a": 1}
    held = mem.doc
    del memory(separate=True).doc
    with pytest.raises(ConcurrentModificationError):
        held["a"] = 2
    assert not hasattr(memory(cache=False), "doc")


@pytest.mark.parametrize("seed", range(4))
def test_random_operations_match_a_python_dict(memory: MemoryFactory, seed: int) -> None:
    rng = random.Random(seed)
    mem = memory()
    mem.doc = {}
    model: dict[str, object] = {}

    def containers(node: object, path: tuple) -> list[tuple]:
        found = [path]
        items = node.items() if isinstance(node, dict) else enumerate(node)  # type: ignore[union-attr]
        for key, child in items:
            if isinstance(child, (dict, list)):
                found += containers(child, (*path, key))
        return found

    def resolve(node: object, path: tuple) -> object:
        for part in path:
            node = node[part]  # type: ignore[index]
        return node

    for _ in range(150):
        path = rng.choice(containers(model, ()))
        target, local = resolve(mem.doc, path), resolve(model, path)
        value = rng.choice([rng.randint(0, 9), "s", {"k": rng.randint(0, 2)}, [rng.randint(0, 2)], None, 1.5])
        if isinstance(local, dict):
            key = rng.choice(["a", "b", "c", "d"])
            op = rng.choice(["set", "set", "del", "pop", "setdefault", "update"])
            if op == "set":
                target[key] = value
                local[key] = value
            elif op == "update":
                target.update({key: value, "e": 1})
                local.update({key: value, "e": 1})
            elif op == "setdefault":
                assert target.setdefault(key, value) == local.setdefault(key, value)
            elif key in local:
                if op == "del":
                    del target[key]
                    del local[key]
                else:
                    assert target.pop(key) == local.pop(key)
        else:
            op = rng.choice(["append", "insert", "pop", "set", "remove"])
            if op == "append":
                target.append(value)
                local.append(value)
            elif op == "insert":
                index = rng.randint(-3, 3)
                target.insert(index, value)
                local.insert(index, value)
            elif local:
                index = rng.randrange(len(local))
                if op == "pop":
                    assert target.pop(index) == local.pop(index)
                elif op == "set":
                    target[index] = value
                    local[index] = value
                else:
                    item = local[index]
                    target.remove(item)
                    local.remove(item)
        assert mem.doc == model
        assert memory(cache=False).doc == model


def test_a_mirrored_dict_is_invalidated_by_another_writer(memory: MemoryFactory) -> None:
    mem, other = memory(), memory(separate=True)
    mem.doc = {"a": 1, "inner": {"b": 1}}
    assert mem.doc == {"a": 1, "inner": {"b": 1}}  # mirrored
    for n in range(2, 30):
        other.doc["inner"]["b"] = n
        other.turn = n
        assert mem.turn == n  # the document's invalidation came before this reply
        assert mem.doc == {"a": n - 1, "inner": {"b": n}}
        mem.doc["a"] = n  # and our own writes keep the mirror current
        mem.turn = -n
        assert other.turn == -n
        assert other.doc["a"] == n


def test_reassigning_a_dict_read_earlier_stores_it(memory: MemoryFactory) -> None:
    mem = memory()
    mem.doc = {"a": {"b": [1]}}
    held = mem.doc
    del mem.doc
    mem.doc = held
    assert memory(cache=False).doc == {"a": {"b": [1]}}
    mem.doc["a"]["b"] += [2]  # rebinds doc["a"]["b"] to itself: appended once
    mem.doc["a"] |= {"c": 3}
    mem.doc |= {"d": 4}
    assert memory(cache=False).doc == {"a": {"b": [1, 2], "c": 3}, "d": 4}
    mem.other = mem.doc["a"]  # a nested dict stored as another attribute
    assert memory(cache=False).other == {"b": [1, 2], "c": 3}


def test_a_document_stored_as_text_is_still_readable_once_redisjson_is_loaded(
    modules_server: RedisProcess, prefix: str
) -> None:
    def memory(cache: bool = True) -> ConversationMemory:
        return ConversationMemory("text", url=modules_server.url, prefix=prefix, cache=cache)

    mem = memory()
    mem.doc = {"placeholder": 1}
    key = mem._space.collection_key("doc")
    raw = modules_server.client()
    raw.delete(key)
    raw.set(key, '{"written": "without the module"}')  # as a server without RedisJSON stored it
    assert memory(cache=False).doc == {"written": "without the module"}
    with pytest.raises(WrongTypeError):  # reassigning the dict converts it
        memory(cache=False).doc["x"] = 1
    mem.doc = memory(cache=False).doc.copy()
    mem.doc["x"] = 1
    assert memory(cache=False).doc == {"written": "without the module", "x": 1}
    assert raw.type(key) == b"ReJSON-RL"
