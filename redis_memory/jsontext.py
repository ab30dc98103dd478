"""JSON text: which values round-trip exactly through JSON, and their compact encoding.

The rules every stored JSON value (list elements, set members, documents, tuple and Enum
scalars) is checked by before anything is written; a leaf, shared by :mod:`redis_memory.codec`
and :mod:`redis_memory.scalars`.
"""

from __future__ import annotations

import json
import math

from redis_memory.errors import UnstorableValueError

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# RedisJSON 2.8 refuses a value nested deeper than this (serde_json's recursion limit, 128,
# counts the innermost scalar too); one rule on every server, so no value's fate depends on it.
MAX_DEPTH = 127


def check_text(text: str, what: str = "text") -> str:
    """``text``, or :class:`UnstorableValueError` if it holds a lone surrogate (it has no UTF-8
    form, so Redis could never receive it). O(1) for ASCII text."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UnstorableValueError(f"cannot store {what} holding a lone surrogate ({exc.reason})") from None
    return text


def check_int64(value: int, where: str = "value") -> int:
    """``value``, or :class:`UnstorableValueError` unless it fits in a signed 64-bit integer
    (RedisJSON's integers, HINCRBY's increments)."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise UnstorableValueError(f"{where}: an integer of {value.bit_length()} bits does not fit in 64 bits")
    return value


def check_json(value: object, where: str = "value", *, addressable: bool = False, depth: int = 0) -> None:
    """Raise :class:`UnstorableValueError` unless ``value`` round-trips exactly through JSON.

    Strings must have a UTF-8 form (no lone surrogates), integers fit in 64 bits, containers
    nest at most :data:`MAX_DEPTH` levels (so a value that contains itself is refused too).
    ``addressable`` (dict attributes): dict keys must also be reachable by a RedisJSON path,
    which excludes keys containing ``"`` or ``\\`` (RedisJSON 2.8 writes them escaped) and keys
    starting with a space (its path parser drops leading spaces: ``[" name"]`` is ``name``).
    """
    kind = type(value)
    if kind is str:
        check_text(value, f"{where}: a string")  # type: ignore[arg-type]
        return
    if kind is bool or value is None:
        return
    if kind is int:
        check_int64(value, where)  # type: ignore[arg-type]
        return
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise UnstorableValueError(f"{where}: cannot store the non-finite float {value!r}")
        return
    if isinstance(value, (dict, list)):
        check_depth(depth, where)
    if isinstance(value, dict):
        for key, item in value.items():
            check_key(key, where, addressable=addressable)
            check_json(item, f"{where}[{key!r}]", addressable=addressable, depth=depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", addressable=addressable, depth=depth + 1)
        return
    raise UnstorableValueError(
        f"{where}: cannot store a value of type {kind.__name__} inside a list or dict "
        "(JSON values only: dict, list, str, int, float, bool, None)"
    )


def check_depth(depth: int, where: str = "value") -> None:
    """Refuse a container found ``depth`` levels inside a value: at most :data:`MAX_DEPTH`
    containers nest (a value that contains itself never ends, so it is refused too)."""
    if depth >= MAX_DEPTH:
        raise UnstorableValueError(
            f"{where}: nested more than {MAX_DEPTH} levels deep (or it contains itself); Redis cannot store it"
        )


def addressable_key(key: str) -> bool:
    """Whether a RedisJSON path can address dict key ``key`` (see :func:`check_json`)."""
    return '"' not in key and "\\" not in key and not key.startswith(" ")


def check_key(key: object, where: str = "value", *, addressable: bool = False) -> str:
    """Raise :class:`UnstorableValueError` unless ``key`` can be a key of a stored dict."""
    if type(key) is not str:
        raise UnstorableValueError(f"{where}: dict keys must be str, not {type(key).__name__}")
    check_text(key, f"{where}: a dict key")
    if addressable and not addressable_key(key):
        raise UnstorableValueError(
            f"{where}: dict key {key!r} contains '\"' or '\\\\' or starts with a space, which a dict "
            "attribute cannot hold (RedisJSON paths cannot address such keys); store it inside a list element instead"
        )
    return key


def dumps(value: object, *, addressable: bool = False) -> str:
    """Check ``value`` (see :func:`check_json`) and encode it as compact JSON text."""
    check_json(value, addressable=addressable)
    return check_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
