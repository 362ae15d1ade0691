"""The inbound worker: consumes the shard streams, one shard at a time per holder, in order.

Each shard is owned by one worker at a time (a Redis lease with heartbeat), so events of one
conversation are handled in order while shards spread over processes. The consumer name is the
shard's, so whoever owns a shard next first re-reads what a crashed owner left pending.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from bots.turns import TurnDecider
from handoff.conversations import ConversationStore
from handoff.events import EventFormatError, InboundEvent
from handoff.keys import Keys
from handoff.lease import Lease
from handoff.scripts import Scripts
from handoff.streams import ensure_group, read_group

log = logging.getLogger(__name__)

GROUP = "workers"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    shards: int = 8
    lease_ttl: float = 10.0
    batch: int = 64
    block_ms: int = 1000


class Worker:
    def __init__(
        self, redis: Redis, keys: Keys, scripts: Scripts, store: ConversationStore,
        decider: TurnDecider, config: WorkerConfig, owner: str,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._store = store
        self.decider = decider
        self.config = config
        self.owner = owner
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self._own_shard(shard, stop), name=f"shard {shard}")
            for shard in range(self.config.shards)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _own_shard(self, shard: int, stop: asyncio.Event) -> None:
        stream = self._keys.inbound_stream(shard)
        lease = Lease(
            self._redis, self._scripts, self._keys.shard_lease(shard),
            ttl=self.config.lease_ttl, owner=self.owner,
        )
        while not stop.is_set():
            if not await lease.acquire(stop):
                return
            try:
                await ensure_group(self._redis, stream, GROUP)
                await self._consume(shard, stream, stop, lease)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shard %d: consumer failed; retrying", shard)
                await asyncio.sleep(0.5)
            finally:
                await lease.release()

    async def _consume(self, shard: int, stream: str, stop: asyncio.Event, lease: Lease) -> None:
        consumer = f"shard-{shard}"
        cursor = "0"  # first what a previous owner left pending, then new entries
        while not stop.is_set() and not lease.lost.is_set():
            batches = await read_group(
                self._redis, GROUP, consumer, {stream: cursor},
                count=self.config.batch, block_ms=0 if cursor == "0" else self.config.block_ms,
            )
            entries = batches[0][1] if batches else []
            if cursor == "0" and not entries:
                cursor = ">"
                continue
            for entry_id, fields in entries:
                await self.process(stream, entry_id, fields)

    async def process(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        try:
            event = InboundEvent.from_json(fields["e"])
        except (EventFormatError, KeyError, TypeError) as exc:
            log.error("%s %s: unreadable event (%s): acked and skipped", stream, entry_id, exc)
            await self._redis.xack(stream, GROUP, entry_id)
            return
        conv = await self._store.load(event.conversation)
        for _attempt in range(5):
            decision = await self.decider.decide(conv, event)
            result = await self._store.commit(
                conv, shard_stream=stream, group=GROUP, entry=entry_id,
                dialogue=decision.dialogue,
                profile=event.profile if event.kind != "blocked" else None,
                transcript=decision.transcript, outbox=decision.outbox, handoff=decision.handoff,
                clear_unreachable=event.kind != "blocked", unreachable=decision.unreachable,
            )
            if result.status != "conflict":
                break
            # Someone (an operator, the API) changed the conversation meanwhile: decide again.
            conv = await self._store.load(event.conversation)
        else:
            log.error("%s: repeated conflicts; event stays pending", event.conversation)
            return
        self.processed += 1
        if result.status == "duplicate":
            log.info("%s: event %s was already committed", event.conversation, event.event_id)


