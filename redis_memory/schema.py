"""Declared attributes: type annotations on a memory class, validated by pydantic.

::

    class Support(ConversationMemory):
        state: Literal["active", "closed"]
        last_activity: datetime
        messages: list[Message]

Assigning a declared attribute validates (and coerces) the value first: ``mem.state =
"paused"`` raises :class:`~redis_memory.errors.InvalidValueError` and stores nothing;
``mem.last_activity = "2025-12-24T10:00:00+00:00"`` stores a datetime. For ``list[X]``, every
element appended later is validated as an ``X`` too, and stored as its JSON form (a pydantic
model as its ``model_dump(mode="json")``). Undeclared attributes stay dynamic.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from redis_memory.errors import InvalidValueError


@dataclass(frozen=True, slots=True)
class Declared:
    """One declared attribute: its validator, and its elements' when it is a list."""

    adapter: pydantic.TypeAdapter[Any]
    element: pydantic.TypeAdapter[Any] | None


_DECLARED: dict[type, dict[str, Declared]] = {}


def declared(cls: type) -> dict[str, Declared]:
    """The attributes ``cls`` (and its bases) declare with annotations, by name (cached)."""
    found = _DECLARED.get(cls)
    if found is None:
        found = _DECLARED[cls] = _declared(cls)
    return found


def _declared(cls: type) -> dict[str, Declared]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Declared] = {}
    for name, hint in hints.items():
        if name.startswith("_") or typing.get_origin(hint) is typing.ClassVar:
            continue
        element = None
        if typing.get_origin(hint) is list:
            (item,) = typing.get_args(hint) or (Any,)
            element = pydantic.TypeAdapter(item)
        fields[name] = Declared(pydantic.TypeAdapter(hint), element)
    return fields


def _storable(value: Any) -> Any:
    """Models become their JSON form inside lists (the fields that were given, so a message
    keeps exactly its keys); everything else is kept as validated."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def validate(cls: type, name: str, value: Any) -> Any:
    """``value`` validated against the declaration of ``name`` on ``cls`` (as is if undeclared)."""
    field = declared(cls).get(name)
    if field is None:
        return value
    try:
        checked = field.adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        raise InvalidValueError(f"{cls.__name__}.{name}: {exc}") from exc
    return _storable(checked) if field.element is not None else checked


def element_validators(cls: type) -> dict[str, Callable[[Any], Any]]:
    """For each declared ``list[X]`` of ``cls``: a function validating one element as an ``X``."""
    validators: dict[str, Callable[[Any], Any]] = {}
    for name, field in declared(cls).items():
        if field.element is not None:
            validators[name] = functools.partial(_check_element, cls.__name__, name, field.element)
    return validators


def _check_element(owner: str, name: str, element: pydantic.TypeAdapter[Any], value: Any) -> Any:
    try:
        return _storable(element.validate_python(value))
    except pydantic.ValidationError as exc:
        raise InvalidValueError(f"{owner}.{name}[]: {exc}") from exc
