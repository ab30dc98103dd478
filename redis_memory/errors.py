"""The whole exception tree of redis-memory.

Every error the library raises on purpose derives from :class:`RedisMemoryError`; each leaf
also derives from the builtin exception a caller would naturally catch::

    RedisMemoryError
    ├── UnstorableValueError        (TypeError)       value cannot be stored; nothing written
    ├── ReadOnlyElementError        (TypeError)       in-place change of a stored list element
    ├── WrongTypeError              (TypeError)       a key holds a Redis type we did not expect
    ├── UnknownTypeError            (TypeError)       a stored value this process cannot read
    ├── InvalidNameError            (ValueError)      bad attribute name, id or prefix
    ├── InvalidValueError           (ValueError)      a value its declared type refuses
    ├── ReservedNameError           (AttributeError)  the name belongs to the class itself
    ├── MissingAttributeError       (AttributeError)  attribute not stored
    ├── MissingKeyError             (KeyError)        dict key not stored
    ├── MissingIndexError           (IndexError)      list index out of range
    ├── ConcurrentModificationError (RuntimeError)    another process changed what we changed
    ├── TransactionError            (RuntimeError)    a change that cannot be queued in a transaction
    ├── EmbeddedServerError         (RuntimeError)    the embedded redis-server cannot start
    ├── LayoutError                 (RuntimeError)    the data is in a layout this version does not know
    ├── MigrationError              (RuntimeError)    a migration cannot run on this server
    ├── ObjectExistsError           (RuntimeError)    an import would replace stored objects; nothing written
    ├── RedisConnectionError        (ConnectionError) Redis cannot be reached
    ├── AccessDeniedError           (PermissionError) credentials or TLS certificate refused
    ├── JournalError                                  Redis unreachable and the journal unwritable
    └── ServerError                                   any other error reply from Redis

redis-py's exceptions never escape: :func:`translate` maps them at one boundary
(``redis_memory.backend``) with ``raise ... from exc``.
"""

from __future__ import annotations

import ssl

import redis.exceptions


class RedisMemoryError(Exception):
    """Base class of every error redis-memory raises on purpose."""


class UnstorableValueError(RedisMemoryError, TypeError):
    """The value cannot be stored (unsupported type, NaN, out-of-range integer); nothing was written."""


class ReadOnlyElementError(RedisMemoryError, TypeError):
    """An element read from a stored list was changed in place; assign ``lst[i] = new`` instead."""


class WrongTypeError(RedisMemoryError, TypeError):
    """A key of this memory holds a Redis type other than the one its attribute kind needs."""


class UnknownTypeError(RedisMemoryError, TypeError):
    """A stored value cannot be read here: its kind or class is unknown (class not imported,
    unknown kind), or its text does not decode as its kind (written by something else)."""


class InvalidNameError(RedisMemoryError, ValueError):
    """An attribute name, memory id or key prefix is not acceptable."""


class ReservedNameError(RedisMemoryError, AttributeError):
    """The attribute name is one of the memory class's own (a method or property); it cannot be stored."""


class InvalidValueError(RedisMemoryError, ValueError):
    """The value does not validate against the attribute's declared type; nothing was written."""


class MissingAttributeError(RedisMemoryError, AttributeError):
    """The attribute is not stored in this memory."""


class MissingKeyError(RedisMemoryError, KeyError):
    """The key is not in the stored dict."""


class MissingIndexError(RedisMemoryError, IndexError):
    """The index is outside the stored list."""


class ConcurrentModificationError(RedisMemoryError, RuntimeError):
    """Another process replaced or changed the value this operation meant to change; nothing was written."""


class TransactionError(RedisMemoryError, RuntimeError):
    """The change cannot be made inside a transaction (it needs Redis's reply at once)."""


class EmbeddedServerError(RedisMemoryError, RuntimeError):
    """The embedded redis-server could not be found or started."""


class LayoutError(RedisMemoryError, RuntimeError):
    """The data under a prefix is in a storage layout newer than this version of the library
    knows (its ``<prefix>__meta__`` record says so): nothing was written."""


class ObjectExistsError(RedisMemoryError, RuntimeError):
    """An import would replace objects already stored (and ``overwrite`` was not given):
    nothing was written."""


class MigrationError(RedisMemoryError, RuntimeError):
    """A migration cannot run here (e.g. converting documents to RedisJSON on a server without
    the module); nothing was changed."""


class RedisConnectionError(RedisMemoryError, ConnectionError):
    """Redis could not be reached (refused, reset, timed out)."""


class AccessDeniedError(RedisMemoryError, PermissionError):
    """Redis refused this client: wrong username or password, a command or key the ACL user may
    not use, or a TLS certificate that is not trusted. Not an outage: never resent or journaled."""


class JournalError(RedisMemoryError):
    """Redis could not be reached and the write could not be journaled either (a full disk,
    an unwritable data directory): the write was not made."""


class ServerError(RedisMemoryError):
    """Redis answered with an error this library does not map to a more specific class."""


class ReplicationError(ServerError):
    """A write was applied on its primary, but fewer replicas than ``wait_replicas=`` asked
    for confirmed it in time (``WAIT``): it may not survive the loss of that primary."""


def access_denied(exc: BaseException) -> bool:
    """Whether a connection error is a refusal (credentials, ACL, TLS certificate), not an outage."""
    if isinstance(exc, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
        return True
    seen: BaseException | None = exc
    for _ in range(8):  # redis-py wraps the ssl error it met while connecting
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate(exc: redis.exceptions.RedisError) -> RedisMemoryError:
    """Map a redis-py exception to the public error it stands for (callers ``raise ... from exc``)."""
    if access_denied(exc):
        return AccessDeniedError(f"Redis refused this client: {exc}")
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return RedisConnectionError(f"cannot reach Redis: {exc}")
    message = str(exc)
    if message.startswith("WRONGTYPE") or "wrong Redis type" in message:
        return WrongTypeError(f"a key holds an unexpected Redis type: {message}")
    if "Unknown Redis command called from script" in message:  # an older Redis (see check_version)
        return ServerError(f"{message} (redis-memory needs Redis 7.4 or later: HPEXPIRE, hash field expiry)")
    return ServerError(message)
