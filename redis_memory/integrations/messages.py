"""Chat messages converted between the OpenAI-style dicts a conversation stores and LangChain,
OpenAI and litellm message types.

The stored form is the one users append themselves and hand to the LLM clients unchanged::

    {"role": "user", "content": "Hi", "name": "alice"}
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}

- :func:`to_dict` makes that dict from a LangChain ``BaseMessage``, an openai SDK object
  (``ChatCompletionMessage``; the ``...MessageParam`` TypedDicts are dicts already), a litellm
  ``Message`` (``completion(...).choices[0].message``), or a dict (copied, checked).
- :func:`to_langchain` makes a LangChain message from any of those.

LangChain's conventions are kept, as ``langchain-openai`` does: ``AIMessage.tool_calls`` are the
parsed calls (``args`` a dict) and the calls as the provider wrote them stay in
``additional_kwargs["tool_calls"]``, so the argument texts come back byte for byte; arguments
that are not a JSON object become ``invalid_tool_calls``; a ``developer`` message is a
``SystemMessage`` marked ``additional_kwargs["__openai_role__"]``; LangChain's standard
content blocks become OpenAI content parts (langchain-core's converter); any other key of a dict
(``timestamp``, ``refusal``, ``function_call``...) goes to ``additional_kwargs`` and back. The
LangChain message ``id``, ``response_metadata``, ``usage_metadata`` and a ``ToolMessage``'s
``status`` and ``artifact`` have no place in an OpenAI message and are not kept. An assistant
message with tool calls and empty content gets ``"content": None``. langchain-core is imported
on first use, so the openai and litellm converters work without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from redis_memory.errors import InvalidValueError, UnstorableValueError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = ["to_dict", "to_dicts", "to_langchain", "to_langchain_messages"]

# The keys of an OpenAI chat message (request side): what an SDK object keeps.
_OPENAI_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal", "audio")
# What a dict's keys become in LangChain's own fields; every other key goes to additional_kwargs.
_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
_DEVELOPER = "__openai_role__"
_OPENAI_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})  # content part types


def _plain(value: Any) -> Any:
    """A plain, mutable copy of JSON-like data (stored elements are read-only snapshots)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _content(value: Any, where: str) -> str | list[Any]:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(part) for part in value]
    raise InvalidValueError(f"{where}: content must be a str, a list of parts or None, not {type(value).__name__}")


# -- to the stored dict -----------------------------------------------------------------------------


def to_dict(message: Any) -> dict[str, Any]:
    """The OpenAI-style dict of ``message``: a LangChain ``BaseMessage``, an openai or litellm
    message object (any pydantic model with a ``role``), or a mapping with a ``role`` (copied).

    Raises :class:`~redis_memory.errors.UnstorableValueError` (a ``TypeError``) for anything else
    and :class:`~redis_memory.errors.InvalidValueError` (a ``ValueError``) for a message that has
    no OpenAI form (a ``RemoveMessage``, a ``role`` that is not a non-empty str).
    """
    data: dict[str, Any]
    if isinstance(message, Mapping):
        data = {key: _plain(value) for key, value in message.items()}
    elif _is_langchain(message):
        return _from_langchain(message)
    elif callable(getattr(message, "model_dump", None)) and hasattr(message, "role"):
        data = _from_sdk(message)
    else:
        raise UnstorableValueError(
            f"cannot convert a {type(message).__name__} to a chat message: expected a LangChain message, "
            "an openai or litellm message, or a dict with a 'role'"
        )
    role = data.get("role")
    if not isinstance(role, str) or not role:
        raise InvalidValueError(f"a chat message needs a 'role' that is a non-empty str, not {role!r}")
    return data


def to_dicts(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """:func:`to_dict` of each message; an error names the position of the one that failed."""
    converted = []
    for position, message in enumerate(messages):
        try:
            converted.append(to_dict(message))
        except (InvalidValueError, UnstorableValueError) as exc:
            raise type(exc)(f"message {position}: {exc}") from exc
    return converted


def _is_langchain(message: Any) -> bool:
    """True for a LangChain message (langchain-core is not imported here unless it already is)."""
    module = sys.modules.get("langchain_core.messages")
    return module is not None and isinstance(message, module.BaseMessage)


def _from_sdk(message: Any) -> dict[str, Any]:
    """An openai ``ChatCompletionMessage`` or a litellm ``Message``: its OpenAI message keys."""
    dumped = message.model_dump(mode="json", exclude_none=True)
    data: dict[str, Any] = {"role": dumped.get("role"), "content": dumped.get("content")}
    for key in _OPENAI_KEYS[2:]:
        if dumped.get(key) is not None:
            data[key] = dumped[key]
    if isinstance(data.get("audio"), Mapping):
        data["audio"] = {"id": data["audio"]["id"]}  # a request refers to earlier audio by id
    if "tool_calls" in data:
        data["tool_calls"] = [_sdk_tool_call(call) for call in data["tool_calls"]]
    return data


def _sdk_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    if call.get("type", "function") == "function" and isinstance(call.get("function"), Mapping):
        function = call["function"]
        return {
            "id": call.get("id"),
            "type": "function",
            "function": {"name": function.get("name"), "arguments": function.get("arguments", "")},
        }
    return {key: value for key, value in call.items() if key != "index"}


def _from_langchain(message: BaseMessage) -> dict[str, Any]:
    from langchain_core.messages import (
        AIMessage,
        ChatMessage,
        FunctionMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    extra = _plain(message.additional_kwargs)
    roles: dict[type, str] = {
        HumanMessage: "user",
        AIMessage: "assistant",
        SystemMessage: "system",
        ToolMessage: "tool",
        FunctionMessage: "function",
    }
    # isinstance, not message.type: a chunk (AIMessageChunk, from streaming) is its message's subclass
    role = next((role for cls, role in roles.items() if isinstance(message, cls)), "")
    if isinstance(message, ChatMessage):
        role = message.role
    elif role == "system" and extra.get(_DEVELOPER) == "developer":
        role = "developer"
    elif not role:
        raise InvalidValueError(f"a LangChain {type(message).__name__} ({message.type!r}) has no OpenAI form")
    data: dict[str, Any] = {"role": role, "content": _lc_content(message)}
    if message.name is not None:
        data["name"] = message.name
    raw_calls = extra.pop("tool_calls", None)
    extra.pop(_DEVELOPER, None)
    if isinstance(message, AIMessage):
        calls = _tool_calls(message, raw_calls)
        if calls:
            data["tool_calls"] = calls
            if data["content"] in ("", []):
                data["content"] = None
    elif isinstance(message, ToolMessage):
        data["tool_call_id"] = message.tool_call_id
    elif isinstance(message, FunctionMessage):
        data["name"] = message.name
    for key, value in extra.items():
        data.setdefault(key, value)
    return data


def _lc_content(message: BaseMessage) -> Any:
    """A LangChain message's content as OpenAI takes it: a text, or content parts; LangChain's
    standard blocks (``{"type": "image", "url": ...}``...) made OpenAI parts by langchain-core."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [{"type": "text", "text": part} if isinstance(part, str) else _plain(part) for part in content]
    if all(isinstance(part, dict) and part.get("type") in _OPENAI_PARTS for part in parts):
        return parts
    from langchain_core.messages import convert_to_openai_messages

    try:
        converted = convert_to_openai_messages(message, text_format="block")
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidValueError(f"a LangChain {type(message).__name__}'s content has no OpenAI form: {exc}") from exc
    return _plain(converted["content"])


def _tool_calls(message: Any, raw: Any) -> list[dict[str, Any]]:
    """The OpenAI tool calls of an AIMessage: the raw ones in ``additional_kwargs`` when they are
    the same calls (so argument texts are kept exactly), else made from ``tool_calls`` and
    ``invalid_tool_calls``."""
    parsed = {call.get("id"): call.get("args") for call in message.tool_calls}
    invalid = {call.get("id"): call.get("args") for call in message.invalid_tool_calls}
    same = isinstance(raw, list) and len(raw) == len(parsed) + len(invalid) and all(map(_is_function_call, raw))
    if same and all(_same_call(call, parsed, invalid) for call in raw):
        return [_plain(call) for call in raw]
    calls = [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"], ensure_ascii=False)},
        }
        for call in message.tool_calls
    ]
    calls += [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {"name": call.get("name") or "", "arguments": call.get("args") or ""},
        }
        for call in message.invalid_tool_calls
    ]
    return calls


def _is_function_call(call: Any) -> bool:
    return isinstance(call, Mapping) and isinstance(call.get("function"), Mapping)


def _same_call(call: Mapping[str, Any], parsed: Mapping[Any, Any], invalid: Mapping[Any, Any]) -> bool:
    text = call["function"].get("arguments")
    if call.get("id") in parsed:
        return bool(_parsed_arguments(text) == parsed[call.get("id")])
    return call.get("id") in invalid and bool(invalid[call.get("id")] == text)


def _parsed_arguments(text: Any) -> dict[str, Any] | None:
    """The arguments of a tool call as a dict, or None when the text is not a JSON object."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- to LangChain -----------------------------------------------------------------------------------


def to_langchain(message: Any) -> BaseMessage:
    """The LangChain message of ``message``: a stored dict, an openai or litellm message object,
    or a LangChain message (returned as it is).

    ``user`` -> ``HumanMessage``, ``assistant`` -> ``AIMessage`` (with ``tool_calls``),
    ``system`` and ``developer`` -> ``SystemMessage``, ``tool`` -> ``ToolMessage`` (needs a
    ``tool_call_id``), ``function`` -> ``FunctionMessage`` (needs a ``name``), any other role ->
    ``ChatMessage``. Raises :class:`~redis_memory.errors.InvalidValueError` for a dict that is no
    chat message, :class:`~redis_memory.errors.UnstorableValueError` for a value of another type.
    """
    from langchain_core.messages import (
        AIMessage,
        ChatMessage,
        FunctionMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    if _is_langchain(message):
        return message  # type: ignore[no-any-return]
    data = to_dict(message)
    role = data["role"]
    content = _content(data.get("content"), f"a {role!r} message")
    extra = {key: value for key, value in data.items() if key not in _FIELDS}
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidValueError(f"a {role!r} message: name must be a str, not {type(name).__name__}")
    common: dict[str, Any] = {"content": content, "additional_kwargs": extra}
    if name is not None:
        common["name"] = name
    if role == "user":
        return HumanMessage(**common)
    if role in ("system", "developer"):
        if role == "developer":
            extra[_DEVELOPER] = "developer"
        return SystemMessage(**common)
    if role == "assistant":
        raw = data.get("tool_calls")
        if raw is None:
            return AIMessage(**common)
        valid, invalid = _langchain_calls(raw)
        extra["tool_calls"] = raw
        return AIMessage(**common, tool_calls=valid, invalid_tool_calls=invalid)
    if role == "tool":
        call_id = data.get("tool_call_id")
        if not isinstance(call_id, str):
            raise InvalidValueError(f"a 'tool' message needs a 'tool_call_id' (a str), not {call_id!r}")
        return ToolMessage(**common, tool_call_id=call_id)
    if role == "function":
        if name is None:
            raise InvalidValueError("a 'function' message needs a 'name'")
        return FunctionMessage(**common)
    return ChatMessage(**common, role=role)


def to_langchain_messages(messages: Iterable[Any]) -> list[BaseMessage]:
    """:func:`to_langchain` of each message; an error names the position of the one that failed."""
    converted = []
    for position, message in enumerate(messages):
        try:
            converted.append(to_langchain(message))
        except (InvalidValueError, UnstorableValueError) as exc:
            raise type(exc)(f"message {position}: {exc}") from exc
    return converted


def _langchain_calls(raw: Any) -> tuple[list[Any], list[Any]]:
    """LangChain's ``tool_calls`` and ``invalid_tool_calls`` from OpenAI ``tool_calls``."""
    from langchain_core.messages.tool import invalid_tool_call, tool_call

    if not isinstance(raw, list):
        raise InvalidValueError(f"tool_calls must be a list, not {type(raw).__name__}")
    valid, invalid = [], []
    for position, call in enumerate(raw):
        if not _is_function_call(call) or call.get("type", "function") != "function":
            raise InvalidValueError(f"tool call {position} is not a function call: {call!r}")
        function = call["function"]
        name, text, call_id = function.get("name"), function.get("arguments"), call.get("id")
        if not isinstance(name, str) or (call_id is not None and not isinstance(call_id, str)):
            raise InvalidValueError(f"tool call {position} needs a str 'function.name' and 'id': {call!r}")
        arguments = _parsed_arguments(text)
        if arguments is None:
            args = text if isinstance(text, str) else None
            invalid.append(invalid_tool_call(name=name, args=args, id=call_id, error="arguments are not a JSON object"))
        else:
            valid.append(tool_call(name=name, args=arguments, id=call_id))
    return valid, invalid
