"""The outbox: streams of outbound calls per channel, with a customer lane ahead of the desk lane.

The worker appends (inside its commit script); a channel's sender reads here, delivers and acks.
Entries a dead sender left unacknowledged are claimed back after `claim_idle_ms`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from handoff.events import EventFormatError, Lane, OutboundMessage
from handoff.keys import Keys
from handoff.streams import ensure_group, read_group

log = logging.getLogger(__name__)

LANES: tuple[Lane, ...] = ("customer", "desk")
GROUP = "senders"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    lane: Lane
    entry_id: str
    message: OutboundMessage


class OutboxReader:
    def __init__(
        self, redis: Redis, keys: Keys, channel: str, consumer: str, *, claim_idle_ms: int = 30_000
    ) -> None:
        self._redis = redis
        self._streams = {lane: keys.outbox(channel, lane) for lane in LANES}
        self._lane_of = {stream: lane for lane, stream in self._streams.items()}
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms

    async def start(self) -> None:
        for stream in self._streams.values():
            await ensure_group(self._redis, stream, GROUP)

    async def read(self, *, count: int = 100, block_ms: int = 1000) -> list[OutboxItem]:
        """New entries, customer lane first."""
        batches = await read_group(
            self._redis, GROUP, self.consumer, {s: ">" for s in self._streams.values()},
            count=count, block_ms=block_ms,
        )
        items: list[OutboxItem] = []
        for stream, entries in batches:
            items.extend(await self._decode(stream, entries))
        return items

    async def pending(self) -> list[OutboxItem]:
        """Entries this consumer took but never acked (a restart under the same name)."""
        items: list[OutboxItem] = []
        for stream in self._streams.values():
            reply: Any = await self._redis.xreadgroup(
                GROUP, self.consumer, {stream: "0"}, count=1000
            )
            for _name, entries in reply or []:
                items.extend(await self._decode(stream, entries))
        return items

    async def reclaim(self) -> list[OutboxItem]:
        """Take over entries other (dead) senders left unacknowledged for too long."""
        items: list[OutboxItem] = []
        for stream in self._streams.values():
            reply = await self._redis.xautoclaim(
                stream, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=500
            )
            items.extend(await self._decode(stream, reply[1]))
        return items

    async def ack(self, item: OutboxItem) -> None:
        await self._redis.xack(self._streams[item.lane], GROUP, item.entry_id)

    async def _decode(
        self, stream: str, entries: list[tuple[str, dict[str, str]]]
    ) -> list[OutboxItem]:
        """Readable entries; unreadable ones are logged and acked so they cannot block anything."""
        lane = self._lane_of[stream]
        items = []
        for entry_id, fields in entries:
            if not fields:  # trimmed away while pending
                await self._redis.xack(stream, GROUP, entry_id)
                continue
            try:
                items.append(OutboxItem(lane, entry_id, OutboundMessage.from_json(fields["m"])))
            except (EventFormatError, KeyError, TypeError) as exc:
                log.error("outbox %s entry %s unreadable (%s): dropped", stream, entry_id, exc)
                await self._redis.xack(stream, GROUP, entry_id)
        return items
