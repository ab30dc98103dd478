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

A scalar attribute can be marked indexed, for ``find`` / ``count`` / ``cleanup`` of its class::

    class Ticket(ConversationMemory):
        state: Annotated[str, Indexed()]                          # TAG
        summary: Annotated[str, Indexed(full_text_search=True)]   # TEXT
        opened: Annotated[datetime, Indexed(sortable=True)]       # NUMERIC, sortable

The index type follows the annotation: ``str``, ``Literal``, ``Enum``, ``bool``, ``UUID``:
TAG (TEXT with ``full_text_search``); ``int``, ``float``, ``datetime``, ``date``: NUMERIC
(``X | None`` as ``X``). A marker on any other type raises
:class:`~redis_memory.errors.InvalidNameError` when the class is made.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from redis_memory.errors import InvalidNameError, InvalidValueError


@dataclass(frozen=True, slots=True)
class Indexed:
    """Marks a declared attribute indexed (inside ``Annotated``), as redis-om's
    ``Field(index=True, sortable=..., full_text_search=...)`` does: ``sortable`` lets
    ``find(sort_by=...)`` order by it; ``full_text_search`` makes a text attribute TEXT
    (matched by words with ``__contains``) instead of TAG (matched whole)."""

    sortable: bool = False
    full_text_search: bool = False


@dataclass(frozen=True, slots=True)
class Declared:
    """One declared attribute: its validator, its elements' when it is a list, and its index
    type (``TAG`` / ``TEXT`` / ``NUMERIC``) and sortability when it is marked :class:`Indexed`."""

    adapter: pydantic.TypeAdapter[Any]
    element: pydantic.TypeAdapter[Any] | None
    index: str | None = None
    sortable: bool = False


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
        marker = _marker(hint)
        index = _index_type(cls.__name__, name, hint, marker) if marker is not None else None
        sortable = bool(marker and marker.sortable)
        fields[name] = Declared(pydantic.TypeAdapter(hint), element, index, sortable)
    return fields


def _marker(hint: Any) -> Indexed | None:
    if typing.get_origin(hint) is not typing.Annotated:
        return None
    found = [item for item in hint.__metadata__ if isinstance(item, Indexed)]
    return found[-1] if found else None


def _bare(hint: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1:
            return _bare(rest[0])
    return hint


def _index_type(owner: str, name: str, hint: Any, marker: Indexed) -> str:
    """TAG / TEXT / NUMERIC for an attribute declared ``hint`` and marked ``marker``."""
    bare = _bare(hint)
    kind: str | None = None
    if typing.get_origin(bare) is typing.Literal:
        values = typing.get_args(bare)
        if all(type(value) in (int, float) for value in values):
            kind = "NUMERIC"
        elif all(type(value) in (str, bool) for value in values):
            kind = "TAG"
    elif isinstance(bare, type):
        if issubclass(bare, (bool, str, uuid.UUID, enum.Enum)):
            kind = "TAG"
        elif issubclass(bare, (int, float, dt.datetime, dt.date)):
            kind = "NUMERIC"
    if kind is None:
        raise InvalidNameError(
            f"{owner}.{name}: a {hint!r} cannot be indexed (index str, Literal, Enum, bool, UUID, "
            "int, float, datetime or date attributes)"
        )
    if marker.full_text_search:
        if kind != "TAG" or not (isinstance(bare, type) and issubclass(bare, str)):
            raise InvalidNameError(f"{owner}.{name}: full_text_search needs a str attribute, not {hint!r}")
        kind = "TEXT"
    return kind


def indexed(cls: type) -> dict[str, tuple[str, bool]]:
    """The attributes of ``cls`` marked :class:`Indexed`: name -> (index type, sortable)."""
    return {name: (field.index, field.sortable) for name, field in declared(cls).items() if field.index is not None}


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
