"""The outbox: streams of outbound calls per channel, with a customer lane ahead of the desk lane.

The worker appends (inside its commit script); a channel's sender reads here, delivers and acks.
One sender per channel reads at a time (the holder of its lease, bots/delivery/lanes.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
    """Reads a channel's outbox for its one sender (the holder of the channel's sender lease).

    The consumer name is stable (`sender`), so a new holder finds what the previous one took and
    never acknowledged; `take_over` also adopts entries pending under any other name (senders
    of versions that named consumers per process). An entry is handed out once while it is in
    flight: `take_over` after a restart of the loop cannot queue it a second time.
    """

    def __init__(self, redis: Redis, keys: Keys, channel: str, consumer: str = "sender") -> None:
        self._redis = redis
        self._streams = {lane: keys.outbox(channel, lane) for lane in LANES}
        self._lane_of = {stream: lane for lane, stream in self._streams.items()}
        self.consumer = consumer
        self._in_flight: set[tuple[str, str]] = set()  # (stream, entry id)

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

    async def take_over(self) -> list[OutboxItem]:
        """Everything pending in the group, under our name: what the previous holder left.

        Only the lease holder reads, so an entry pending under any name is nobody's work now.
        """
        items: list[OutboxItem] = []
        for stream in self._streams.values():
            cursor = "0-0"
            while True:
                reply = await self._redis.xautoclaim(
                    stream, GROUP, self.consumer, 0, start_id=cursor, count=500)
                items.extend(await self._decode(stream, reply[1]))
                cursor = str(reply[0])
                if cursor == "0-0":
                    break
        return items

    async def ack(self, item: OutboxItem) -> None:
        stream = self._streams[item.lane]
        await self._redis.xack(stream, GROUP, item.entry_id)
        self._in_flight.discard((stream, item.entry_id))

    def forget_in_flight(self) -> None:
        """The holder stopped: what it held is pending in Redis for the next one."""
        self._in_flight.clear()

    async def _decode(
        self, stream: str, entries: list[tuple[str, dict[str, str]]]
    ) -> list[OutboxItem]:
        """Readable entries not already in flight; unreadable ones are logged and acked so
        they cannot block anything."""
        lane = self._lane_of[stream]
        items = []
        for entry_id, fields in entries:
            if (stream, entry_id) in self._in_flight:
                continue
            if not fields:  # trimmed away while pending
                await self._redis.xack(stream, GROUP, entry_id)
                continue
            try:
                items.append(OutboxItem(lane, entry_id, OutboundMessage.from_json(fields["m"])))
            except (EventFormatError, KeyError, TypeError) as exc:
                log.error("outbox %s entry %s unreadable (%s): dropped", stream, entry_id, exc)
                await self._redis.xack(stream, GROUP, entry_id)
                continue
            self._in_flight.add((stream, entry_id))
        return items
