"""Credentials kept out of everything the library shows: labels, logs, errors, ``stats()``
keys, the journal, span and metric attributes. The one place that hides them."""

from __future__ import annotations

import re

# The user:password@ of a URL (up to its last @, which may be part of an unencoded password),
# and any password= argument of its query string (redis-py accepts `?password=`).
_USERINFO = re.compile(r"(?<=://)[^\s<>,]*@")
_SECRET_ARGUMENT = re.compile(r"([?&;])[^=&#\s]*password[^=&#\s]*=[^&#\s]*&?", re.IGNORECASE)
_DANGLING = re.compile(r"[?&;]+(?=$|#|\s)")
_SECRET_VALUE = re.compile(r"([?&;][^=&#\s]*password[^=&#\s]*=)[^&#\s]*", re.IGNORECASE)


def redact(label: str, *, mask: str | None = None) -> str:
    """``label`` (a Redis URL, a client's ``repr``, or any text naming them) without credentials.

    By default the ``user:password@`` of every URL and every ``password=`` query argument are
    removed (span and metric attributes, error texts). With ``mask`` (``"***"``: backend labels,
    so ``stats()`` still tells users apart) the user name stays and each password is replaced
    by ``mask``. The rest is kept as it was.
    """
    if mask is None:
        label = _USERINFO.sub("", label)
        label = _SECRET_ARGUMENT.sub(lambda match: match[1], label)
        return _DANGLING.sub("", label)
    label = _USERINFO.sub(lambda match: _masked_user(match[0], mask), label)
    return _SECRET_VALUE.sub(lambda match: match[1] + mask, label)


def _masked_user(user_info: str, mask: str) -> str:
    user, colon, _ = user_info[:-1].partition(":")
    return f"{user}{':' + mask if colon else ''}@"
