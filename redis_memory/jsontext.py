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


def check_text(text: str, what: str = "text") -> str:
    """``text``, or :class:`UnstorableValueError` if it holds a lone surrogate (it has no UTF-8
    form, so Redis could never receive it). O(1) for ASCII text."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UnstorableValueError(f"cannot store {what} holding a lone surrogate ({exc.reason})") from None
    return text


def check_json(value: object, where: str = "value", *, addressable: bool = False) -> None:
    """Raise :class:`UnstorableValueError` unless ``value`` round-trips exactly through JSON.

    ``addressable`` (dict attributes): dict keys must also be reachable by a RedisJSON path,
    which excludes keys containing ``"`` or ``\\`` (RedisJSON 2.8 writes them escaped).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise UnstorableValueError(f"{where}: integer {value} does not fit in 64 bits")
        return
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise UnstorableValueError(f"{where}: cannot store the non-finite float {value!r}")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            check_key(key, where, addressable=addressable)
            check_json(item, f"{where}[{key!r}]", addressable=addressable)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", addressable=addressable)
        return
    raise UnstorableValueError(
        f"{where}: cannot store a value of type {kind.__name__} inside a list or dict "
        "(JSON values only: dict, list, str, int, float, bool, None)"
    )


def check_key(key: object, where: str = "value", *, addressable: bool = False) -> str:
    """Raise :class:`UnstorableValueError` unless ``key`` can be a key of a stored dict."""
    if type(key) is not str:
        raise UnstorableValueError(f"{where}: dict keys must be str, not {type(key).__name__}")
    if addressable and ('"' in key or "\\" in key):
        raise UnstorableValueError(
            f"{where}: dict key {key!r} contains '\"' or '\\\\', which a dict attribute cannot hold "
            "(RedisJSON paths cannot address such keys); store it inside a list element instead"
        )
    return key


def dumps(value: object, *, addressable: bool = False) -> str:
    """Check ``value`` (see :func:`check_json`) and encode it as compact JSON text."""
    check_json(value, addressable=addressable)
    return check_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
