"""ACL username and password from the URL: used for every command, refused clearly (and
never journaled), never shown in logs, warnings or stats, and enough for a user allowed
only the prefix's keys."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from redis_memory import AccessDeniedError, ConversationMemory, ServerError, stats
from redis_memory.redaction import redact
from tests.security import ALICE, EXPECTED, AclServer, acl_user, exercise
from tests.tls import free_port

pytest_plugins = ["tests.security"]


def test_acl_credentials_in_the_url_are_used(acl_server: AclServer, prefix: str) -> None:
    url = acl_server.url(*ALICE)
    mem = exercise(url, prefix)
    assert ConversationMemory("c1", url=url, prefix=prefix, cache=False).to_dict() == EXPECTED
    assert acl_server.admin.hget(mem._space.hash_key, "state") == "answering"
    connections = [client for client in acl_server.admin.client_list() if client["user"] == ALICE[0]]
    assert connections and all(client["laddr"].endswith(f":{acl_server.port}") for client in connections)
    assert acl_server.denials() == []


REFUSED = [
    (ALICE[0] + ":wrong", "invalid username-password pair"),
    ("nobody:" + quote(ALICE[1], safe=""), "invalid username-password pair"),
    ("", "authenticated"),  # the default user is off: no credentials is refused too
]


@pytest.mark.parametrize(("credentials", "message"), REFUSED, ids=["wrong-password", "unknown-user", "no-credentials"])
def test_refused_credentials_are_an_access_denied_error_and_write_nothing(
    acl_server: AclServer, fresh_backends: Path, prefix: str, credentials: str, message: str
) -> None:
    url = f"redis://{credentials + '@' if credentials else ''}127.0.0.1:{acl_server.port}/0"
    mem = ConversationMemory("c1", url=url, prefix=prefix, offline="raise")
    with pytest.raises(AccessDeniedError, match=message) as info:
        mem.state = "written?"
    assert isinstance(info.value, PermissionError) and not isinstance(info.value, redis.exceptions.RedisError)
    assert isinstance(info.value.__cause__, redis.exceptions.AuthenticationError)
    with pytest.raises(AccessDeniedError, match=message):
        mem.messages.append("x")
    with pytest.raises(AccessDeniedError, match=message):
        _ = mem.state
    assert [key for key in acl_server.all_keys() if key.startswith(prefix)] == []


def test_refused_credentials_are_not_journaled_as_an_outage(
    acl_servers: dict[str, AclServer], fresh_backends: Path, prefix: str
) -> None:
    url = f"redis://{ALICE[0]}:wrong@127.0.0.1:{acl_servers['plain'].port}/0"
    mem = ConversationMemory("c1", url=url, prefix=prefix)  # offline="journal", the default
    with pytest.raises(AccessDeniedError, match="invalid username-password pair"):
        mem.state = "written?"
    assert stats()[redact(url, mask="***")]["journaled"] == 0


def test_the_password_in_the_url_is_never_shown(
    acl_servers: dict[str, AclServer], fresh_backends: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    acl = acl_servers["plain"]
    url = acl.url(*ALICE) + f"?client_name={prefix.rstrip(':')}"  # a URL of this test: warnings are once per URL
    down = f"redis://{ALICE[0]}:{quote(ALICE[1], safe='')}@127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.INFO, logger="redis_memory"):
        ConversationMemory("c1", url=url, prefix=prefix).state = "active"
        with pytest.warns(RuntimeWarning) as warned:  # no RediSearch on this server
            ConversationMemory.find(url=url, prefix=prefix, state="active")
        with pytest.raises(ServerError) as refused:
            ConversationMemory.find_raw("*", url=url, prefix=prefix)
        ConversationMemory("c1", url=down, prefix=prefix).state = "journaled"  # Redis down: journaled, logged
    shown = [record.getMessage() for record in caplog.records]
    shown += [str(warning.message) for warning in warned] + [str(refused.value)] + list(stats())
    assert shown and [text for text in shown if ALICE[1] in text or quote(ALICE[1], safe="") in text] == []


def test_a_user_limited_to_the_prefix_can_use_every_feature(acl_server: AclServer, prefix: str) -> None:
    # Everything below runs EVALSHA, FT.* or SCAN; Redis checks each key a script touches.
    # memory:__probe__ is granted because of the bug pinned below (RedisJSON 2.8 does not
    # flag JSON.TYPE's key as read-only, so %R~ is not enough).
    rules = [f"~{prefix}*", "~memory:__probe__"]
    keys_before = set(acl_server.all_keys())
    with acl_user(acl_server, "limited", *rules) as url:
        outside = redis.Redis(host="127.0.0.1", port=acl_server.port, username="limited", password="limited-pw")
        with outside, pytest.raises(redis.exceptions.NoPermissionError):
            outside.get("memory:{c1}")  # the control: the restriction is real
        acl_server.admin.acl_log_reset()

        mem = exercise(url, prefix)
        assert ConversationMemory("c1", url=url, prefix=prefix, cache=False).to_dict() == EXPECTED
        searchable = ConversationMemory("c2", url=url, prefix=prefix, index_messages=True)
        searchable.messages = [{"role": "user", "content": "where is my refund"}]
        searchable.messages.append({"role": "assistant", "content": "on its way"})
        searchable.state = "closed"
        found = ConversationMemory.find(url=url, prefix=prefix, state="answering", sort_by="-last_activity")
        assert [c.conversation_id for c in found] == ["c1"]
        assert ConversationMemory.count(url=url, prefix=prefix, state__in=["answering", "closed"]) == 2
        assert ConversationMemory.ids(url=url, prefix=prefix) == ["c1", "c2"]
        matches = ConversationMemory.search_messages("refund", url=url, prefix=prefix)
        assert [(m.conversation_id, m.message["content"]) for m in matches] == [("c2", "where is my refund")]
        assert ConversationMemory.cleanup(older_than=timedelta(days=1), url=url, prefix=prefix, dry_run=True) == ["c1"]
        searchable.messages.pop()
        mem.clear()
        searchable.clear()
        assert acl_server.denials("limited") == []
    assert all(key.startswith(prefix) for key in set(acl_server.all_keys()) - keys_before)


def test_the_redisjson_probe_stays_inside_the_prefix(acl_servers: dict[str, AclServer], prefix: str) -> None:
    acl = acl_servers["modules"]
    acl.admin.acl_log_reset()
    with acl_user(acl, "prefixonly", f"~{prefix}*") as url:
        mem = ConversationMemory("c1", url=url, prefix=prefix)
        mem.profile = {"name": "Alice"}
        denied = [entry["object"] for entry in acl.denials("prefixonly")]
        stored_as = acl.admin.type(mem._space.collection_key("profile"))
    assert (denied, stored_as) == ([], "ReJSON-RL")
