"""What an error reply means: our scripts' error codes and redis-py's errors, mapped to the
public exception tree (:mod:`redis_memory.errors`) in this one place."""

from __future__ import annotations

from collections.abc import Callable

import redis.exceptions

from redis_memory.errors import (
    ConcurrentModificationError,
    MissingIndexError,
    MissingKeyError,
    UnstorableValueError,
    WrongTypeError,
    translate,
)


class FullScriptNeeded(Exception):
    """push.lua refused a searchable list (RMFULL), having written nothing: send op:push."""


# The error replies of our scripts: their first word is a code.
SCRIPT_ERRORS: dict[str, Callable[[str], Exception]] = {
    "RMFULL": FullScriptNeeded,
    "RMKIND": ConcurrentModificationError,
    "RMCAS": ConcurrentModificationError,
    "RMPATH": ConcurrentModificationError,
    "RMNOKEY": MissingKeyError,
    "RMNOINDEX": MissingIndexError,
    "RMTYPE": WrongTypeError,
    "RMSTALE": ConcurrentModificationError,
    "RMVALUE": UnstorableValueError,
}


def public_error(exc: Exception) -> Exception:
    """The public error for a redis-py error (our scripts' error codes included)."""
    if isinstance(exc, redis.exceptions.ResponseError):
        code, _, message = str(exc).partition(" ")
        factory = SCRIPT_ERRORS.get(code)
        if factory is not None:
            return factory(message)
    if isinstance(exc, redis.exceptions.RedisError):
        return translate(exc)
    return exc
