"""redis-memory for asyncio: the same storage, operations and guarantees, awaited."""

from redis_memory.aio.memory import Attribute, ConversationMemory, Memory, aclose

__all__ = ["Attribute", "ConversationMemory", "Memory", "aclose"]
