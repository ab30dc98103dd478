"""Framework integrations, on top of the public API: each module needs its framework's extra.

``redis_memory.integrations.langchain`` (``pip install redis-memory[langchain]``): a LangChain
chat message history over a conversation's ``messages``; ``redis_memory.integrations.messages``:
converters between the OpenAI-style message dicts stored there and LangChain, OpenAI and
litellm message types; ``redis_memory.integrations.langgraph`` (``[langgraph]``): a LangGraph
checkpointer. Nothing in the library imports this package, and importing it imports no
framework.
"""
