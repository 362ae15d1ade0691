"""Consumer-group plumbing shared by the inbound worker and the outbox senders."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

Entry = tuple[str, dict[str, str]]


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create the group at the stream's start (so nothing appended earlier is skipped)."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read_group(
    redis: Redis, group: str, consumer: str, streams: dict[str, str], *, count: int, block_ms: int
) -> list[tuple[str, list[Entry]]]:
    """XREADGROUP returning (stream, entries) pairs in the order of `streams`."""
    reply: Any = await redis.xreadgroup(
        group, consumer, streams, count=count, block=block_ms  # type: ignore[arg-type]
    )
    if not reply:
        return []
    by_stream: dict[str, list[Entry]] = {str(item[0]): item[1] for item in reply}
    return [(name, by_stream[name]) for name in streams if by_stream.get(name)]
