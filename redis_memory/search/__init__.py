"""Querying conversations: filters, their RediSearch form, and the fallback without it."""
