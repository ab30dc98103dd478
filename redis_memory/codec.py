"""Python values <-> their Redis representation, and the one registry for type dispatch.

A value assigned to an attribute is classified once, by :func:`classify`:

* a scalar kind (``str``, ``int``, ``float``, ``bool``, ``none``, ``datetime:...``, ``date``,
  ``uuid``, ``decimal``, ``bytes``, ``tuple``, ``enum:...``; see :mod:`redis_memory.scalars`)
  is stored as one field of the object's hash, index-friendly;
* ``list`` is stored as a Redis List with one JSON document per element;
* ``dict`` is stored as one JSON document (RedisJSON, or a JSON string without the module),
  and so is a pydantic model (kind ``model:<module>:<qualname>``, read back as the model);
* ``set`` is stored as a Redis Set of JSON scalars.

JSON values are checked before anything is written (:func:`check_json`): only ``dict`` with
``str`` keys, ``list``, ``str``, ``int`` within 64 bits, finite ``float``, ``bool`` and ``None``
round-trip exactly, so everything else raises :class:`UnstorableValueError`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any, NoReturn, TypeAlias

import pydantic

from redis_memory import scalars
from redis_memory.errors import ReadOnlyElementError, UnknownTypeError, UnstorableValueError
from redis_memory.jsontext import check_depth, check_text
from redis_memory.jsontext import check_json as check_json
from redis_memory.jsontext import check_key as check_key
from redis_memory.jsontext import dumps as dumps

JSON: TypeAlias = "None | bool | int | float | str | list[JSON] | dict[str, JSON]"

# Kinds that are not scalars, and the Redis structure each is stored in.
LIST = "list"
DICT = "dict"
SET = "set"
MODEL_PREFIX = "model:"  # model:<module>:<qualname>, a pydantic model stored as a document
HASH, JSON_DOC = "hash", "json"

_SET_MEMBER_TYPES = (str, int, float, bool, type(None))


def structure_of(kind: str) -> str:
    """The Redis structure a kind is stored in: ``hash`` (a field), ``list``, ``json`` or ``set``."""
    if kind == LIST:
        return LIST
    if kind == DICT or kind.startswith(MODEL_PREFIX):
        return JSON_DOC
    if kind == SET:
        return SET
    return HASH


def classify(value: object) -> str:
    """Return the kind a value is stored as, or raise :class:`UnstorableValueError`."""
    found = scalars.codec_for(value)
    if found is not None:
        return found.encode(value)[0] if found.name in ("datetime", "enum") else found.name
    if isinstance(value, list):
        return LIST
    if isinstance(value, dict):
        return DICT
    if isinstance(value, (set, frozenset)):
        return SET
    if isinstance(value, pydantic.BaseModel):
        return MODEL_PREFIX + scalars.class_path(type(value))
    raise UnstorableValueError(
        f"cannot store a value of type {type(value).__name__}: use a str, int, float, bool, None, "
        "datetime, date, UUID, Decimal, Enum, bytes, tuple, list, dict, set or pydantic model"
    )


def encode_scalar(value: object) -> tuple[str, str]:
    """Return ``(kind, text)`` for a scalar value (see :mod:`redis_memory.scalars`)."""
    return scalars.encode(value)


@functools.cache
def time_fields() -> frozenset[str]:
    """The attributes ``schemas/conversation.json`` indexes as times (``datetime``, NUMERIC):
    ``created_at``, ``started_at``, ``last_activity``."""
    schema = json.loads(resources.files("redis_memory").joinpath("schemas", "conversation.json").read_text("utf-8"))
    return frozenset(
        name
        for name, field in schema["fields"].items()
        if field["kind"] == "datetime" and field.get("index") == "NUMERIC"
    )


def encode_attribute(name: str, value: object) -> tuple[str, str]:
    """:func:`encode_scalar`, except that an ISO-8601 text assigned to an attribute indexed as
    a time (:func:`time_fields`) is stored as that time, kind ``isotext:<text>``
    (:func:`redis_memory.scalars.encode_time_text`): queryable by time, read back as the text."""
    if type(value) is str and name in time_fields():
        timed = scalars.encode_time_text(value)
        if timed is not None:
            return timed
    return scalars.encode(value)


def decode_scalar(kind: str, text: str) -> Any:
    """Invert :func:`encode_scalar` for a stored ``kind``."""
    return scalars.decode(kind, text)


def model_document(model: pydantic.BaseModel) -> dict[str, Any]:
    """The JSON document of a pydantic model; raises unless it reads back as an equal model."""
    document: dict[str, Any] = model.model_dump(mode="json")
    check_json(document)
    try:
        same = type(model).model_validate(document) == model
    except pydantic.ValidationError:
        same = False
    if not same:
        raise UnstorableValueError(f"{type(model).__name__} does not read back equal from its JSON form")
    return document


def read_model(kind: str, document: Any) -> pydantic.BaseModel:
    """Rebuild the pydantic model of kind ``model:<module>:<qualname>`` from its document."""
    cls = scalars.resolve_class(kind.removeprefix(MODEL_PREFIX))
    if not issubclass(cls, pydantic.BaseModel):
        raise UnknownTypeError(f"{cls.__qualname__} is not a pydantic model")
    return cls.model_validate(document)


def set_members(value: Iterable[Any]) -> list[str]:
    """The encoded members of a set value: JSON scalars only (str, int, float, bool, None)."""
    members = []
    for member in value:
        if type(member) not in _SET_MEMBER_TYPES:
            raise UnstorableValueError(
                f"set members must be str, int, float, bool or None, not {type(member).__name__}"
            )
        members.append(dumps(member))
    return members


# RedisJSON 2.8 reads numbers with serde_json's fast parser, which is not correctly rounded:
# the digits as an integer, times or divided by a table power of ten. _serde_float is that
# parser (tests/test_pinned_bugs.py checks it against the server); json_float picks a text that
# both it and Python read back as the same float.
_POW10 = [float(f"1e{n}") for n in range(309)]
_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?")


def _serde_float(text: str) -> float | None:
    found = _NUMBER.fullmatch(text)
    if found is None:
        return None
    sign, whole, fraction, exponent = found.groups()
    fraction = fraction or ""
    significand, power = int(whole + fraction), int(exponent or 0) - len(fraction)
    if significand >= 2**64:
        return None  # serde_json reads such digits another way; never produced below
    number = float(significand)
    while True:
        if abs(power) < len(_POW10):
            number = number * _POW10[power] if power >= 0 else number / _POW10[-power]
            break
        if number == 0.0:
            break
        number, power = number / 1e308, power + 308
    return -number if sign else number


def json_float(number: float) -> str:
    """The JSON text of a finite float that RedisJSON reads back exactly: its ``repr`` when
    that works, else digits and a power of ten that its parser turns into the same float (not
    always the closest decimal: for RedisJSON only). About 1 float in 700 has no such text
    (RedisJSON cannot hold it): then its ``repr``, which RedisJSON reads as a neighbour."""
    text = repr(number)
    if ("e" not in text and len(text) <= 16) or _serde_float(text) == number:  # 15 digits or fewer: exact
        return text
    for digits in range(15, 21):  # the parser divides (or multiplies) float(digits) by 10**power
        mantissa, _, exponent = f"{number:.{digits - 1}e}".partition("e")
        sign, base = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
        power = int(exponent) - (digits - 1)
        below = above = float(int(base.replace(".", "")))  # try its neighbouring floats too
        for _ in range(4):
            for significand in (below, above):
                candidate = f"{sign}{int(significand)}e{power}"
                if 0 < significand < 2.0**64 and _serde_float(candidate) == number:
                    return candidate
            below, above = math.nextafter(below, 0.0), math.nextafter(above, math.inf)
    return text


def _exact_json(value: Any) -> str:
    if type(value) is float:
        return json_float(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_exact_json(key)}:{_exact_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_exact_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _has_float(value: Any) -> bool:
    if type(value) is float:
        return True
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_float(item) for item in value)
    return False


def document_dumps(value: object) -> str:
    """JSON text of a checked value (see :func:`dumps`) for RedisJSON to parse: every float
    written so that RedisJSON holds exactly that float (see :func:`json_float`). Python may
    read such a float's text as a neighbouring float: never parse it here."""
    return _exact_json(value) if _has_float(value) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def thaw(value: Any) -> Any:
    """Return a plain, mutable deep copy of a JSON value (frozen or proxy containers included)."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


def _read_only(*_args: object, **_kwargs: object) -> NoReturn:
    raise ReadOnlyElementError(
        "elements read from a stored list are read-only snapshots; assign "
        "mem.<name>[i] = new_value to change one, or copy.deepcopy() it for a local copy"
    )


class FrozenDict(dict[str, Any]):
    """A ``dict`` element of a stored list: a real dict for readers, read-only for writers.

    Its copies (``.copy()``, ``copy.copy``, ``copy.deepcopy``, pickling) are plain, mutable and
    deep, so code that copies a message before editing it (as litellm does) edits its own copy.
    """

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def copy(self) -> dict[str, Any]:
        """A plain, mutable deep copy."""
        result: dict[str, Any] = thaw(self)
        return result

    def __copy__(self) -> dict[str, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        result: dict[str, Any] = thaw(self)
        return result

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return (dict, (thaw(self),))


class FrozenList(list[Any]):
    """A ``list`` nested in an element of a stored list: a real list, read-only; copies are deep."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def copy(self) -> list[Any]:
        """A plain, mutable deep copy."""
        result: list[Any] = thaw(self)
        return result

    def __copy__(self) -> list[Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        result: list[Any] = thaw(self)
        return result

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return (list, (thaw(self),))


def frozen_copy(value: Any, where: str = "value", depth: int = 0) -> Any:
    """Check ``value`` like :func:`check_json` and return a read-only copy, in one walk."""
    kind = type(value)
    if kind is bool or value is None:
        return value
    if kind is str or kind is int or kind is float:
        check_json(value, where)
        return value
    if isinstance(value, dict):
        check_depth(depth, where)
        result = FrozenDict()
        for key, item in value.items():
            check_key(key, where)
            dict.__setitem__(result, key, frozen_copy(item, f"{where}[{key!r}]", depth + 1))
        return result
    if isinstance(value, list):
        check_depth(depth, where)
        return FrozenList(frozen_copy(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
    check_json(value, where)  # raises with the message for this type
    return value


def encode_elements(values: Iterable[Any]) -> tuple[list[str], list[Any]]:
    """Encode list elements: ``(JSON texts, read-only copies)``, every one checked first."""
    pairs = [encode_element(value) for value in values]
    return [raw for raw, _ in pairs], [frozen for _, frozen in pairs]


def encode_element(value: Any) -> tuple[str, Any]:
    """Return ``(JSON text, read-only copy)`` of one list element, checked before either is made."""
    frozen = frozen_copy(value)
    return check_text(json.dumps(frozen, ensure_ascii=False, separators=(",", ":"), allow_nan=False)), frozen


def _freeze_object(pairs: dict[str, Any]) -> FrozenDict:
    for key, item in pairs.items():
        if type(item) is list:
            pairs[key] = _freeze_list(item)
    return FrozenDict(pairs)


def _freeze_list(items: list[Any]) -> FrozenList:
    return FrozenList(_freeze_list(item) if type(item) is list else item for item in items)


def loads_elements(raw: Iterable[bytes]) -> list[Any]:
    """Decode stored list elements into read-only values, in one ``json.loads`` call."""
    try:
        items = json.loads(b"[" + b",".join(raw) + b"]", object_hook=_freeze_object)
    except ValueError as exc:  # an element another writer put there
        raise UnknownTypeError(f"a stored element is not JSON: {exc}") from exc
    return [_freeze_list(item) if type(item) is list else item for item in items]


def loads(raw: bytes | str) -> Any:
    """Decode one JSON document into plain Python values."""
    try:
        return json.loads(raw)
    except ValueError as exc:  # text another writer put there
        raise UnknownTypeError(f"a stored value is not JSON: {exc}") from exc
