"""The only place that builds or parses Redis key names.

Layout (see docs/design.md)::

    <prefix>{<id>}            the object's hash: scalar fields, plus "_kind:<name>" per attribute
    <prefix>{<id>}:<name>     one collection attribute (a List, a RedisJSON document, ...)

``<id>`` and ``<name>`` are percent-encoded: every byte outside ``[A-Za-z0-9_.-]`` becomes ``%XX``.
The encoded id therefore never contains ``{``, ``}``, ``:``, glob characters or whitespace,
so one id can never reach another object's keys, and the mapping is reversible. All keys of
one object share the hash tag ``{<id>}``: one Cluster slot, one MULTI, one Lua call.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from redis_memory.errors import InvalidNameError

MAX_ID_LENGTH = 1024
MAX_NAME_LENGTH = 200
KIND_FIELD_PREFIX = "_kind:"
DEFAULT_PREFIX = "memory:"
DEFAULT_ID = "default"

_SAFE = "_.-"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:\-]{0,100}$")


@functools.lru_cache(maxsize=8192)
def encode_part(text: str) -> str:
    """Percent-encode ``text`` so it holds only ``[A-Za-z0-9_.-%]``; reversible with :func:`decode_part`."""
    return quote(text, safe=_SAFE, encoding="utf-8", errors="strict")


def decode_part(text: str) -> str:
    """Invert :func:`encode_part`."""
    return unquote(text, encoding="utf-8", errors="strict")


def normalize_id(value: object) -> str:
    """Return the memory id as text, or raise: ``str``, ``int`` and ``uuid.UUID`` are accepted."""
    if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
        raise InvalidNameError(f"a memory id must be a str, int or UUID, not {type(value).__name__}")
    if isinstance(value, int) and value.bit_length() > 4 * MAX_ID_LENGTH:  # str() might refuse it
        raise InvalidNameError(f"a memory id must be at most {MAX_ID_LENGTH} characters")
    text = str(value)
    if not text:
        raise InvalidNameError("a memory id must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidNameError(f"a memory id must be at most {MAX_ID_LENGTH} characters, got {len(text)}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidNameError("a memory id must be valid Unicode text (no lone surrogates)") from exc
    return text


def check_name(name: object) -> str:
    """Validate an attribute name: a Python identifier, not starting with ``_``, at most 200 chars."""
    if not isinstance(name, str):
        raise InvalidNameError(f"attribute names must be str, not {type(name).__name__}")
    if not name.isidentifier() or name.startswith("_") or len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"{name[:50]!r} is not a storable attribute name: use a Python identifier that does "
            f"not start with '_' (at most {MAX_NAME_LENGTH} characters)"
        )
    return name


def check_prefix(prefix: object) -> str:
    """Validate a key prefix: letters, digits, ``_ . : -``, at most 100 characters."""
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise InvalidNameError(f"key prefix {prefix!r} must be at most 100 characters of letters, digits and '_.:-'")
    return prefix


@dataclass(frozen=True, slots=True)
class KeySpace:
    """The key names of one memory object (one id under one prefix)."""

    prefix: str
    object_id: str
    hash_key: str = field(init=False, compare=False)  # the object's hash: ``<prefix>{<id>}``

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash_key", f"{self.prefix}{{{encode_part(self.object_id)}}}")

    def collection_key(self, name: str) -> str:
        """The key of collection attribute ``name``: ``<prefix>{<id>}:<name>``."""
        return f"{self.hash_key}:{encode_part(name)}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key of this object (the hash and its collections)."""
        return f"{self.hash_key}*"


def meta_key(prefix: str) -> str:
    """The database's layout record under ``prefix``: the hash ``<prefix>__meta__``."""
    return f"{prefix}__meta__"


def migration_key(prefix: str, name: str) -> str:
    """The bookkeeping of migration ``name`` under ``prefix`` (checkpoint, applied set):
    ``<prefix>__migrations__:<name>``, never an object's key (no ``{``)."""
    return f"{prefix}__migrations__:{encode_part(name)}"


def kind_field(name: str) -> str:
    """The hash field recording the kind of attribute ``name``."""
    return KIND_FIELD_PREFIX + name


def parse_kind_field(field: str) -> str | None:
    """Return the attribute name recorded by a kind field, or None for a scalar value field."""
    if field.startswith(KIND_FIELD_PREFIX):
        return field[len(KIND_FIELD_PREFIX) :]
    return None


def parse_collection_key(key: str, prefix: str) -> tuple[str, str] | None:
    """Return ``(object id, attribute name)`` of a collection key ``<prefix>{<id>}:<name>``,
    or None if ``key`` is not one."""
    hash_key, colon, name = key.partition("}:")
    object_id = parse_hash_key(hash_key + "}", prefix) if colon else None
    if object_id is None or not name or any(c in name for c in "{}:"):
        return None
    return object_id, decode_part(name)


def parse_hash_key(key: str, prefix: str) -> str | None:
    """Return the object id of a hash key ``<prefix>{<id>}``, or None if ``key`` is not one."""
    if not key.startswith(prefix + "{") or not key.endswith("}"):
        return None
    inner = key[len(prefix) + 1 : -1]
    if "{" in inner or "}" in inner or ":" in inner:
        return None
    return decode_part(inner)
