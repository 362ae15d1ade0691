"""Durable, deduplicated ingest: an event is in a Redis stream before the platform is answered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from handoff.events import InboundEvent
from handoff.keys import Keys, shard_of
from handoff.scripts import Scripts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    shards: int = 8
    dedup_ttl: int = 48 * 3600
    maxlen: int = 100_000


class Ingestor:
    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts, config: IngestConfig) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self.config = config

    async def ingest(self, events: Sequence[InboundEvent]) -> list[str | None]:
        """Store a batch in one round trip; per event, its stream entry id, or None if a duplicate.

        Raises on a Redis failure: the caller must then NOT acknowledge the platform, so the
        platform delivers the batch again and dedup drops whatever did get stored.
        """
        if not events:
            return []
        script = self._scripts["ingest"]
        try:
            results = await self._store(events, script.sha)
        except NoScriptError:  # first call, or Redis restarted: nothing ran, so run it again
            await self._redis.script_load(script.script)
            results = await self._store(events, script.sha)
        stored = [str(result) if result else None for result in results]
        for event, entry in zip(events, stored, strict=True):
            if entry is None:
                log.info("duplicate event %s dropped", event.event_id)
        return stored

    async def _store(self, events: Sequence[InboundEvent], sha: str) -> list[Any]:
        # EVALSHA straight into the pipeline: redis-py's scripts in a pipeline would ask
        # SCRIPT EXISTS first, one more round trip on every message's way in.
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                shard = shard_of(event.conversation, self.config.shards)
                pipe.evalsha(sha, 2, self._keys.seen(shard, event.event_id),
                             self._keys.inbound_stream(shard), self.config.dedup_ttl,
                             self.config.maxlen, event.to_json())
            return list(await pipe.execute())
