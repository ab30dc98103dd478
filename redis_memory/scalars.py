"""Scalar values <-> hash field text: the registry of scalar kinds.

Every scalar is stored as one field of the object's hash, written so RediSearch can index it
(strings raw, numbers as decimal text, datetimes and dates as epoch seconds), and its *kind*
(in the ``_kind:<name>`` field) says how to read it back, parameters included::

    str  int  float  bool  none           the builtins
    datetime:naive                        a naive datetime (epoch seconds as if it were UTC)
    datetime:UTC / datetime:zone=<key> / datetime:offset=<seconds>
                                          an aware datetime and its tzinfo (a zoneinfo key,
                                          or any fixed offset; offset 0 reads back as UTC)
    date                                  epoch seconds of its midnight, UTC
    uuid  decimal  bytes (base64)  tuple (a JSON array)
    enum:<module>:<qualname>              an Enum member, stored as its JSON value
    isotext:<text>                        an ISO-8601 text assigned to an attribute indexed as a
                                          time (``last_activity`` ...): stored as its epoch
                                          seconds (a naive one as if UTC), read back as the text

Reading an ``enum:`` kind needs its class: it is looked up among the modules already imported
by this process (importing a module named by stored data would run arbitrary code).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import sys
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from redis_memory.errors import UnknownTypeError, UnstorableValueError
from redis_memory.jsontext import check_text, dumps

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ScalarCodec:
    """How one scalar type is written to and read from a hash field.

    ``encode(value)`` returns ``(kind, text)``; ``decode(parameter, text)`` gets the part of the
    kind after the first ``:`` (empty when none).
    """

    name: str
    encode: Callable[[Any], tuple[str, str]]
    decode: Callable[[str, str], Any]


def _epoch_text(moment: datetime) -> str:
    micros = (moment - _EPOCH) // _MICROSECOND
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}.{fraction:06d}"


def _from_epoch_text(text: str) -> datetime:
    sign = -1 if text.startswith("-") else 1
    seconds, _, fraction = text.lstrip("-").partition(".")
    micros = int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])
    return _EPOCH + sign * micros * _MICROSECOND


def _zone_parameter(zone: tzinfo) -> str:
    if isinstance(zone, zoneinfo.ZoneInfo):
        return f"zone={zone.key}"
    offset = zone.utcoffset(None)  # a fixed offset: timezone(...), pydantic's TzInfo, ...
    if offset is not None:
        return "UTC" if not offset else f"offset={int(offset.total_seconds())}"
    raise UnstorableValueError(
        f"cannot store a datetime whose tzinfo is {type(zone).__name__}: use timezone.utc, a "
        "fixed timezone(timedelta(...)) or a zoneinfo.ZoneInfo"
    )


def _zone(parameter: str) -> tzinfo:
    if parameter == "UTC":
        return UTC
    key, _, value = parameter.partition("=")
    if key == "zone":
        return zoneinfo.ZoneInfo(value)
    if key == "offset":
        return timezone(timedelta(seconds=int(value)))
    raise UnknownTypeError(f"unknown datetime kind parameter {parameter!r}")


def _encode_datetime(value: datetime) -> tuple[str, str]:
    if value.tzinfo is None:
        return "datetime:naive", _epoch_text(value.replace(tzinfo=UTC))
    if value.utcoffset() is None:
        raise UnstorableValueError("cannot store a datetime whose tzinfo gives no UTC offset")
    return f"datetime:{_zone_parameter(value.tzinfo)}", _epoch_text(value)


def _decode_datetime(parameter: str, text: str) -> datetime:
    moment = _from_epoch_text(text)
    if parameter == "naive":
        return moment.replace(tzinfo=None)
    return moment.astimezone(_zone(parameter))


def _encode_float(value: float) -> tuple[str, str]:
    if not math.isfinite(value):
        raise UnstorableValueError(f"cannot store the non-finite float {value!r}")
    return "float", repr(value)


def _encode_decimal(value: Decimal) -> tuple[str, str]:
    if not value.is_finite():
        raise UnstorableValueError(f"cannot store the non-finite Decimal {value!r}")
    return "decimal", str(value)


def _decode_decimal(parameter: str, text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise UnknownTypeError(f"stored decimal {text!r} is not a number") from exc


def _encode_bytes(value: bytes) -> tuple[str, str]:
    return "bytes", base64.b64encode(value).decode("ascii")


def _decode_bytes(parameter: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise UnknownTypeError("stored bytes are not valid base64") from exc


def _encode_tuple(value: tuple[Any, ...]) -> tuple[str, str]:
    return "tuple", dumps(list(value))


def _encode_date(value: date) -> tuple[str, str]:
    return "date", str((value.toordinal() - _EPOCH_ORDINAL) * 86_400)


def _decode_date(parameter: str, text: str) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + int(text) // 86_400)


def class_path(cls: type) -> str:
    """``module:qualname`` of a class, as recorded in a kind."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_class(path: str) -> type:
    """The class named ``module:qualname``, from a module this process has already imported."""
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        raise UnknownTypeError(f"the stored value is a {path}; import {module_name} in this process before reading it")
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise UnknownTypeError(f"the stored value is a {path}, which {module_name} does not define")
    if not isinstance(found, type):
        raise UnknownTypeError(f"{path} is not a class")
    return found


def _encode_enum(value: enum.Enum) -> tuple[str, str]:
    return f"enum:{class_path(type(value))}", dumps(value.value)


def _decode_enum(parameter: str, text: str) -> enum.Enum:
    cls = resolve_class(parameter)
    if not issubclass(cls, enum.Enum):
        raise UnknownTypeError(f"{parameter} is not an Enum")
    member: enum.Enum = cls(json.loads(text))
    return member


def _encode_int(value: int) -> tuple[str, str]:
    try:
        return "int", str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits() (4,300 digits by default)
        raise UnstorableValueError(f"cannot store an int of {value.bit_length()} bits: too long for text") from None


_ISO_TEXT_LIMIT = 64  # longer texts are never read as times


def encode_time_text(text: str) -> tuple[str, str] | None:
    """``("isotext:<text>", epoch seconds)`` for an ISO-8601 date or time text (as
    ``datetime.fromisoformat`` reads it; naive: as if UTC, as a naive datetime is stored), or
    None when ``text`` is not one: so an attribute indexed as a time is queryable by time when
    it is written as text (``mem.last_activity = datetime.now().isoformat()``), and reads back
    as that text."""
    if len(text) > _ISO_TEXT_LIMIT or not text[:1].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset() is None:
        return None
    try:
        return f"isotext:{text}", _epoch_text(moment)
    except OverflowError:
        return None


def _encode_time_text(value: str) -> tuple[str, str]:
    found = encode_time_text(value)
    if found is None:
        raise UnstorableValueError(f"{value[:50]!r} is not an ISO-8601 date or time")
    return found


def _decode_time_text(parameter: str, text: str) -> str:
    float(text)  # the field holds the epoch seconds the index reads (ValueError if not)
    return parameter


_CODECS = [
    ScalarCodec("str", lambda v: ("str", check_text(v)), lambda p, s: s),
    ScalarCodec("bool", lambda v: ("bool", "1" if v else "0"), lambda p, s: s == "1"),
    ScalarCodec("int", _encode_int, lambda p, s: int(s)),
    ScalarCodec("float", _encode_float, lambda p, s: float(s)),
    ScalarCodec("none", lambda v: ("none", ""), lambda p, s: None),
    ScalarCodec("datetime", _encode_datetime, _decode_datetime),
    ScalarCodec("date", _encode_date, _decode_date),
    ScalarCodec("uuid", lambda v: ("uuid", str(v)), lambda p, s: uuid.UUID(s)),
    ScalarCodec("decimal", _encode_decimal, _decode_decimal),
    ScalarCodec("bytes", _encode_bytes, _decode_bytes),
    ScalarCodec("tuple", _encode_tuple, lambda p, s: tuple(json.loads(s))),
    ScalarCodec("enum", _encode_enum, _decode_enum),
    ScalarCodec("isotext", _encode_time_text, _decode_time_text),
]
BY_NAME: dict[str, ScalarCodec] = {codec.name: codec for codec in _CODECS}
BY_TYPE: dict[type, ScalarCodec] = {
    str: BY_NAME["str"],
    bool: BY_NAME["bool"],
    int: BY_NAME["int"],
    float: BY_NAME["float"],
    type(None): BY_NAME["none"],
    datetime: BY_NAME["datetime"],
    date: BY_NAME["date"],
    uuid.UUID: BY_NAME["uuid"],
    Decimal: BY_NAME["decimal"],
    bytes: BY_NAME["bytes"],
    tuple: BY_NAME["tuple"],
}


def codec_for(value: object) -> ScalarCodec | None:
    """The codec of a scalar value (exact types; Enum members by class), or None."""
    found = BY_TYPE.get(type(value))
    if found is None and isinstance(value, enum.Enum):
        return BY_NAME["enum"]
    return found


def encode(value: object) -> tuple[str, str]:
    """``(kind, text)`` of a scalar value; :class:`UnstorableValueError` if it is not one."""
    found = codec_for(value)
    if found is None:
        raise UnstorableValueError(f"{type(value).__name__} is not a scalar kind")
    return found.encode(value)


def decode(kind: str, text: str) -> Any:
    """Read back a scalar of ``kind`` from its field text."""
    name, _, parameter = kind.partition(":")
    found = BY_NAME.get(name)
    if found is None:
        raise UnknownTypeError(f"unknown stored kind {kind!r}; written by a newer redis-memory?")
    try:
        return found.decode(parameter, text)
    except (ValueError, TypeError, OverflowError) as exc:  # text another writer put there
        if isinstance(exc, UnknownTypeError):
            raise
        raise UnknownTypeError(f"the stored {name} {text[:50]!r} does not decode: {exc}") from exc
