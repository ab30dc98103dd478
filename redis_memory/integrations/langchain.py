"""A LangChain chat message history over a conversation's ``messages`` (``[langchain]`` extra).

:class:`RedisMemoryChatMessageHistory` is a ``langchain_core.chat_history.BaseChatMessageHistory``,
so ``RunnableWithMessageHistory`` (and anything else taking a chat history) works unchanged. The
messages are the conversation's ``messages`` list, stored as the OpenAI-style dicts users append
themselves (:mod:`redis_memory.integrations.messages` converts them), so one conversation is read
and written by LangChain, by ``mem.messages.append({...})`` and by the LLM clients alike. Reading
returns the whole list, however long (one round trip, none while the mirror is valid); adding
appends every message of a call in one RPUSH. The ``a...`` methods run on the asyncio API.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import redis
import redis.cluster
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from redis_memory import MISSING, aio
from redis_memory.errors import ConcurrentModificationError, MissingAttributeError, WrongTypeError
from redis_memory.integrations.messages import to_dicts, to_langchain_messages
from redis_memory.memory import ConversationMemory, storable_name

__all__ = ["RedisMemoryChatMessageHistory"]

_ATTEMPTS = 5  # reads and writes raced by another writer's clear, replacement or creation


def _stored_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise WrongTypeError(f"attribute {name!r} holds a {type(value).__name__}, not a list of messages")
    return value


class RedisMemoryChatMessageHistory(BaseChatMessageHistory):
    """The chat history of conversation ``conversation_id``: its ``messages`` attribute.

    >>> history = RedisMemoryChatMessageHistory("c1")   # doctest: +SKIP
    >>> history.add_messages([HumanMessage("Hi"), AIMessage("Hello!")])  # one RPUSH
    >>> ConversationMemory("c1").messages[-1]
    {'role': 'assistant', 'content': 'Hello!'}

    Connection as :class:`~redis_memory.ConversationMemory`: ``url=``, ``client=`` (a
    ``redis.Redis``), ``prefix=``, else the environment or the embedded server; or pass
    ``memory=``, an open ``ConversationMemory`` (then its connection, prefix and settings are
    used). ``attribute`` names the list (default ``messages``); ``max_messages`` keeps only the
    last N, ``ttl`` expires the conversation after the last write, as there.

    The async methods use ``async_memory=`` (a :class:`redis_memory.aio.ConversationMemory`) if
    given, else one opened with the same ``url=`` and ``prefix=``; with ``client=`` or
    ``memory=`` (a synchronous connection) and no ``async_memory=``, they run the synchronous
    methods in a worker thread, as LangChain's default does.
    """

    def __init__(
        self,
        conversation_id: str | int | uuid.UUID | None = None,
        *,
        url: str | None = None,
        client: redis.Redis | redis.cluster.RedisCluster | None = None,
        prefix: str | None = None,
        memory: ConversationMemory | None = None,
        async_memory: aio.ConversationMemory | None = None,
        attribute: str = "messages",
        max_messages: int | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Open the history (nothing is read until the messages are asked for)."""
        super().__init__()
        self._async = async_memory
        self._async_options: dict[str, Any] | None = None
        if memory is not None:
            if any(option is not None for option in (url, client, prefix, max_messages, ttl)):
                raise ValueError("pass memory=, or url=, client=, prefix=, max_messages=, ttl= to open one; not both")
            if conversation_id is not None and str(conversation_id) != memory.conversation_id:
                raise ValueError(f"conversation_id {conversation_id!r} is not the id of memory= ({memory!r})")
        elif conversation_id is None:
            raise TypeError("RedisMemoryChatMessageHistory needs a conversation_id (or memory=)")
        else:
            memory = ConversationMemory(
                conversation_id, url=url, client=client, prefix=prefix, max_messages=max_messages, ttl=ttl
            )
            if client is None:  # the same server and prefix for the asyncio API
                self._async_options = {"url": url, "prefix": prefix, "max_messages": max_messages, "ttl": ttl}
        if async_memory is not None and async_memory.conversation_id != memory.conversation_id:
            raise ValueError(f"async_memory= ({async_memory!r}) is not conversation {memory.conversation_id!r}")
        self._memory = memory
        self._attribute = storable_name(type(memory), attribute)

    @property
    def memory(self) -> ConversationMemory:
        """The conversation this history reads and writes."""
        return self._memory

    @property
    def conversation_id(self) -> str:
        """The conversation's id."""
        return self._memory.conversation_id

    # -- synchronous ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message, in order, as LangChain messages: one LRANGE of the whole list (none
        while this process's mirror of it is valid); ``[]`` when the conversation has none."""
        try:
            stored = getattr(self._memory, self._attribute)
        except MissingAttributeError:
            return []
        return to_langchain_messages(_stored_list(stored, self._attribute))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` atomically: one RPUSH of them all (O(k)). The first messages of a
        conversation create the list, in one transaction that checks it still has none (so two
        processes starting one conversation both keep theirs). Every message is converted and
        checked first: on an error nothing is written."""
        items = to_dicts(messages)
        if not items:
            return
        for _ in range(_ATTEMPTS):
            try:
                stored = getattr(self._memory, self._attribute)
            except MissingAttributeError:
                if self._create(items):
                    return
                continue
            try:
                _stored_list(stored, self._attribute).extend(items)
                return
            except ConcurrentModificationError:  # cleared or replaced between the read and the push
                continue
        raise ConcurrentModificationError(f"attribute {self._attribute!r} kept changing; nothing was added")

    def _create(self, items: list[dict[str, Any]]) -> bool:
        """Assign the list if the attribute is still not stored (False, nothing written, if it is)."""
        try:
            with self._memory.transaction():
                self._memory.compare_and_set(self._attribute, MISSING, 0)  # the check; replaced below
                setattr(self._memory, self._attribute, items)
        except ConcurrentModificationError:
            return False
        return True

    def clear(self) -> None:
        """Remove every message: the attribute becomes an empty list (one round trip)."""
        setattr(self._memory, self._attribute, [])

    # -- asyncio --------------------------------------------------------------------------------------

    def _amemory(self) -> aio.ConversationMemory | None:
        if self._async is None and self._async_options is not None:
            self._async = aio.ConversationMemory(self.conversation_id, **self._async_options)
        return self._async

    async def aget_messages(self) -> list[BaseMessage]:
        """:attr:`messages`, awaited: HMGET of the kind, then LRANGE of the whole list."""
        memory = self._amemory()
        if memory is None:
            return await super().aget_messages()
        stored = await memory.get(self._attribute, None)
        return [] if stored is None else to_langchain_messages(_stored_list(stored, self._attribute))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """:meth:`add_messages`, awaited: one RPUSH of them all (O(k)); the first messages of a
        conversation create the list in a checked transaction, as there."""
        memory = self._amemory()
        if memory is None:
            await super().aadd_messages(messages)
            return
        items = to_dicts(messages)
        if not items:
            return
        for _ in range(_ATTEMPTS):
            try:
                await getattr(memory, self._attribute).extend(items)
                return
            except ConcurrentModificationError:  # no list: not stored (yet), or of another kind
                if not await memory.has(self._attribute):
                    try:
                        async with memory.transaction():
                            await memory.compare_and_set(self._attribute, MISSING, 0)
                            await memory.set(self._attribute, items)
                        return
                    except ConcurrentModificationError:
                        continue
                _stored_list(await memory.get(self._attribute), self._attribute)
        raise ConcurrentModificationError(f"attribute {self._attribute!r} kept changing; nothing was added")

    async def aclear(self) -> None:
        """:meth:`clear`, awaited."""
        memory = self._amemory()
        if memory is None:
            await super().aclear()
            return
        await memory.set(self._attribute, [])

    def __repr__(self) -> str:
        return f"RedisMemoryChatMessageHistory(conversation_id={self.conversation_id!r})"
