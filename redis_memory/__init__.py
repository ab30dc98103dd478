"""redis-memory: shared, durable, queryable agent state in Redis with plain attribute access."""

from redis_memory import telemetry as telemetry  # its switch: REDIS_MEMORY_OTEL=1 on import
from redis_memory.codec import JSON, FrozenDict, FrozenList
from redis_memory.connections import stats
from redis_memory.conversation import Conversation, Message
from redis_memory.errors import (
    AccessDeniedError,
    ConcurrentModificationError,
    EmbeddedServerError,
    InvalidNameError,
    InvalidValueError,
    JournalError,
    LayoutError,
    MigrationError,
    MissingAttributeError,
    MissingIndexError,
    MissingKeyError,
    ObjectExistsError,
    ReadOnlyElementError,
    RedisConnectionError,
    RedisMemoryError,
    ReplicationError,
    ReservedNameError,
    ServerError,
    TransactionError,
    UnknownTypeError,
    UnstorableValueError,
    WrongTypeError,
)
from redis_memory.memory import MISSING, ConversationMemory, Memory, Transaction
from redis_memory.proxies.document import RedisDict, RedisDocList
from redis_memory.proxies.list import RedisList, UnreadList
from redis_memory.proxies.set import RedisSet
from redis_memory.schema import Indexed
from redis_memory.search.messages import MessageMatch

# The original package's names for a stored list and dict (``redis-memory`` 0.4.3, ``synced-memory``):
# ``isinstance(mem.messages, SyncedList)`` and ``type(mem.profile) == SyncedDict`` hold here too.
SyncedList = RedisList
SyncedDict = RedisDict

__version__ = "0.1.0"

__all__ = [
    "JSON",
    "MISSING",
    "AccessDeniedError",
    "ConcurrentModificationError",
    "Conversation",
    "ConversationMemory",
    "EmbeddedServerError",
    "FrozenDict",
    "FrozenList",
    "Indexed",
    "InvalidNameError",
    "InvalidValueError",
    "JournalError",
    "LayoutError",
    "Memory",
    "Message",
    "MessageMatch",
    "MigrationError",
    "MissingAttributeError",
    "MissingIndexError",
    "MissingKeyError",
    "ObjectExistsError",
    "ReadOnlyElementError",
    "RedisConnectionError",
    "RedisDict",
    "RedisDocList",
    "RedisList",
    "RedisMemoryError",
    "RedisSet",
    "ReplicationError",
    "ReservedNameError",
    "ServerError",
    "SyncedDict",
    "SyncedList",
    "Transaction",
    "TransactionError",
    "UnknownTypeError",
    "UnreadList",
    "UnstorableValueError",
    "WrongTypeError",
    "__version__",
    "stats",
]
