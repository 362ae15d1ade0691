"""How much of one message a transcript keeps.

A transcript entry is stored in Redis and shown in the API, the desk card and the trainers'
inbox. Telegram's own limit is 4,096 characters, but other channels (and the API) can carry
more: a pasted log of 100,000 characters would otherwise be one 230 KB entry, read back with
every transcript. Longer texts keep their start and say how long they were.
"""

from __future__ import annotations

MAX_STORED = 4096  # characters of one message's text kept in its transcript entry


def capped(text: str, limit: int = MAX_STORED) -> str:
    """The text itself, or its first `limit` characters and a marker with the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated, {len(text)} characters]"
