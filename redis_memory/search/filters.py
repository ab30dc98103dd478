"""Keyword filters: parsed once, then run by RediSearch or, without it, in Python.

``find(state="active", last_activity__lt=cutoff, topic__contains="refund")``:

    name=value            equal (TAG and NUMERIC fields; TAG values are compared without the
                          spaces, tabs and newlines around them, as RediSearch indexes them)
    name__ne=value        not equal
    name__in=[a, b]       one of
    name__gt / __gte / __lt / __lte=value     NUMERIC fields (numbers, datetimes, dates)
    name__contains="w1 w2"                    TEXT fields: every word appears, words as
                                              RediSearch splits them (see :func:`words`)
    name__startswith="bill"                   TAG fields: the value starts with this text

The indexed fields and their types come from a schema (``schemas/conversation.json``).
Values are encoded as the hash stores them (``redis_memory.scalars``) and reach RediSearch
as query parameters (TAG values) or escaped words (TEXT), so that no value can change the
query's meaning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis_memory import codec
from redis_memory.errors import InvalidNameError, UnstorableValueError
from redis_memory.jsontext import check_text

OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "contains", "startswith")
_NUMERIC_OPERATORS = {"gt", "gte", "lt", "lte"}
# RediSearch's tokenizer: a TEXT value's words are split at spaces, tabs and this ASCII
# punctuation (not at "_", newlines or any non-ASCII character); a backslash makes the next
# character part of the word; ASCII control characters are dropped from words, and letters
# lowercased; the value ends at its first NUL
_SEPARATORS = "\t !\"#$%&'()*+,-./:;<=>?@[]^`{|}~"
_WORD = re.compile("(?:\\\\.|[^\\\\" + re.escape(_SEPARATORS) + "])+", re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_NORMALIZE = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "".join(map(chr, (*range(0x20), 0x7F)))
)
# RediSearch trims these around a TAG value when it indexes it (not other whitespace)
_TAG_TRIM = " \t\n\r\x0b\x0c"


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition: ``field`` (its index type ``TAG``/``TEXT``/``NUMERIC``), ``op``, values
    as the hash stores them (text), or, for ranges, a number."""

    field: str
    kind: str
    op: str
    values: tuple[str, ...]


def as_tag(text: str) -> str:
    """A hash field's text as RediSearch indexes it in a TAG field: up to its first NUL, with
    spaces, tabs and newlines around it trimmed ('' is not indexed at all)."""
    return text.split("\x00", 1)[0].strip(_TAG_TRIM)


def words(text: str) -> list[str]:
    """The words of a text as RediSearch 2.10 indexes a TEXT field (and reads a query's words):
    split at spaces, tabs and ASCII punctuation but ``_``; ``\\`` takes the next character
    literally; ASCII control characters dropped (``"there\\nI"`` is ``"therei"``); ASCII
    letters lowercased, other letters kept as they are; no stemming; nothing after a NUL.
    ``"my_order, ÉCOLE"`` -> ``["my_order", "École"]``."""
    found = (_ESCAPED.sub(r"\1", word).translate(_NORMALIZE) for word in _WORD.findall(text.split("\x00", 1)[0]))
    return [word for word in found if word]


def _stored(value: object) -> str:
    """A filter value as the hash field holds it."""
    try:
        return codec.encode_scalar(value)[1]
    except UnstorableValueError as exc:
        raise UnstorableValueError(f"cannot filter on a {type(value).__name__}: {exc}") from exc


def _number(value: object) -> float:
    try:
        number = float(_stored(value)) if not isinstance(value, (int, float)) else float(value)
    except OverflowError:
        raise UnstorableValueError(f"cannot filter on {type(value).__name__} beyond the float range") from None
    if math.isnan(number):
        raise UnstorableValueError("cannot filter on NaN")
    return number


def parse(filters: Mapping[str, object], fields: Mapping[str, str]) -> list[Filter]:
    """Parse keyword filters against the indexed ``fields`` (name -> TAG / TEXT / NUMERIC)."""
    parsed = []
    for key, value in filters.items():
        name, _, op = key.partition("__")
        op = op or "eq"
        kind = fields.get(name)
        if kind is None:
            raise InvalidNameError(f"{name!r} is not an indexed field (indexed: {', '.join(sorted(fields))})")
        if op not in OPERATORS:
            raise InvalidNameError(f"unknown filter {key!r}: use one of __{', __'.join(OPERATORS[1:])}")
        if op in _NUMERIC_OPERATORS and kind != "NUMERIC":
            raise InvalidNameError(f"{key!r}: ranges need a NUMERIC field, {name!r} is {kind}")
        if op == "startswith" and kind != "TAG":
            raise InvalidNameError(f"{key!r}: __startswith needs a TAG field, {name!r} is {kind}")
        if op == "contains" and kind != "TEXT":
            raise InvalidNameError(f"{key!r}: __contains needs a TEXT field, {name!r} is {kind}")
        if op in ("eq", "ne", "in") and kind == "TEXT":
            raise InvalidNameError(f"{key!r}: TEXT fields are matched by words, use {name}__contains")
        if op == "in":
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise UnstorableValueError(f"{key!r} takes a list of values")
            values = tuple(_stored(item) for item in value)
        elif op in _NUMERIC_OPERATORS or (kind == "NUMERIC" and op in ("eq", "ne")):
            values = (repr(_number(value)),)
        elif op == "contains":
            if not isinstance(value, str):
                raise UnstorableValueError(f"{key!r} takes text")
            values = tuple(words(check_text(value)))
            if not values:
                raise UnstorableValueError(f"{key!r}: {value!r} holds no word to search for")
        else:
            values = (_stored(value),)
        if op == "startswith":
            if not isinstance(value, str):
                raise UnstorableValueError(f"{key!r} takes text")
            values = (check_text(value).split("\x00", 1)[0].lstrip(_TAG_TRIM),)
        elif kind == "TAG":  # an empty tag is never indexed: drop it
            values = tuple(tag for value in values if (tag := as_tag(value)))
        parsed.append(Filter(name, kind, op, values))
    return parsed


def with_prefixes_resolved(filters: list[Filter], values_of: Callable[[str], list[str]]) -> list[Filter]:
    """Turn each ``__startswith`` into an ``__in`` of the field's indexed values that start with
    it (``values_of(field)``: FT.TAGVALS), exact whatever the number of values, where a
    RediSearch prefix query expands to at most MAXPREFIXEXPANSIONS of them."""
    resolved = []
    for item in filters:
        if item.op == "startswith":
            found = tuple(value for value in values_of(item.field) if value.startswith(item.values[0]))
            item = Filter(item.field, item.kind, "in", found)
        resolved.append(item)
    return resolved


def check_tag_values(filters: list[Filter]) -> None:
    """Refuse TAG values holding the index's tag separator (RediSearch would split them)."""
    for item in filters:
        if item.kind == "TAG" and any("\x1f" in value for value in item.values):
            raise UnstorableValueError(f"{item.field}: a TAG value cannot contain the character U+001F")


# -- RediSearch ------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape every character a RediSearch query could read as syntax: every ASCII character
    but letters and digits (a lone ``_`` is a syntax error, ``\\_`` is not). Other characters
    are never syntax, and a backslash before them would be taken literally. (Words of TEXT
    filters hold no control character: see :func:`words`.)"""
    return "".join("\\" + char if char < "\x80" and not char.isalnum() else char for char in text)


def _numeric_range(op: str, number: float) -> str:
    bound = repr(number)
    return {
        "gt": f"[({bound} +inf]",
        "gte": f"[{bound} +inf]",
        "lt": f"[-inf ({bound}]",
        "lte": f"[-inf {bound}]",
    }[op]


def can_match(filters: list[Filter]) -> bool:
    """False when a filter asks for a TAG among no values (nothing can match)."""
    return all(item.values or item.op == "ne" for item in filters)


def to_query(filters: list[Filter]) -> tuple[str, list[str]]:
    """The RediSearch query (dialect 2) of the filters, all of which must hold (those that can
    match: see :func:`can_match`), and its PARAMS: TAG values travel as parameters
    (``@state:{$v0 | $v1}``), never inside the query text, so any character matches itself.
    A ``__ne`` of no value holds for every object."""
    terms = []
    params: list[str] = []
    for item in filters:
        if not item.values:
            continue
        field = "@" + item.field
        if item.op == "contains":
            term = f"{field}:({' '.join(escape(word) for word in item.values)})"
        elif item.kind == "NUMERIC" and item.op in ("eq", "ne"):
            term = f"{field}:[{item.values[0]} {item.values[0]}]"
        elif item.kind == "NUMERIC":
            term = f"{field}:{_numeric_range(item.op, float(item.values[0]))}"
        else:
            names = []
            for value in item.values:
                names.append(f"$v{len(params) // 2}")
                # RediSearch still reads a backslash in a TAG parameter as an escape: double it
                params += [names[-1][1:], value.replace("\\", "\\\\")]
            term = f"{field}:{{{' | '.join(names)}}}"
        terms.append(f"-({term})" if item.op == "ne" else term)
    return (" ".join(terms) if terms else "*"), params


# -- without RediSearch --------------------------------------------------------------------------


def matches(fields: Mapping[str, str | None], filters: list[Filter]) -> bool:
    """Whether an object whose hash holds ``fields`` (name -> text, None if absent) passes,
    with the same meaning as :func:`to_query` has in RediSearch."""
    for item in filters:
        text = fields.get(item.field)
        if item.kind == "NUMERIC":
            try:
                number = float(text) if text is not None else None
            except ValueError:
                number = None
            if item.op in ("eq", "ne"):
                hit = number is not None and number == float(item.values[0])
            elif number is None:
                hit = False
            else:
                bound = float(item.values[0])
                hit = {"gt": number > bound, "gte": number >= bound, "lt": number < bound, "lte": number <= bound}[
                    item.op
                ]
        elif item.op == "contains":
            hit = text is not None and set(item.values) <= set(words(text))
        elif item.op == "startswith":
            tag = as_tag(text) if text is not None else ""
            hit = tag != "" and tag.startswith(item.values[0])
        else:
            tag = as_tag(text) if text is not None else ""
            hit = tag != "" and tag in item.values
        if hit == (item.op == "ne"):
            return False
    return True
