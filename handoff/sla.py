"""SLA timers, driven by whoever calls `due()` periodically (the worker), on the injected clock.

Two timers: a queued conversation unclaimed for `unclaimed_minutes` escalates (one priority
up, once), and an assigned one whose customer waits `reply_minutes` for a reply reminds its
owner (once per wait). The scripts mark what fired, so calling `due()` again, or from two
processes at once, reports each event exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from handoff.queue import SCORE_BAND
from handoff.scripted import Scripted

PRIORITY_BANDS = 4


@dataclass(frozen=True, slots=True)
class SlaEvent:
    kind: Literal["escalate", "remind"]
    conv: str
    since: float  # queued_at (escalate) or customer_waiting_since (remind)
    priority: str = ""  # escalate: the new priority
    owner: str = ""  # remind: the operator to remind
    version: int = 0


class Sla(Scripted):
    async def due(self) -> list[SlaEvent]:
        return await self._escalations() + await self._reminders()

    async def _escalations(self) -> list[SlaEvent]:
        due_before = self.clock.now() - self.config.unclaimed_seconds
        cutoff_ms = int(due_before * 1000)
        queue = self.keys.queue()
        # One score range per priority band: only conversations queued before the cutoff.
        async with self.redis.pipeline(transaction=False) as pipe:
            for band in range(PRIORITY_BANDS):
                pipe.zrangebyscore(queue, band * SCORE_BAND, band * SCORE_BAND + cutoff_ms,
                                   withscores=True)
            bands = await pipe.execute()
        found = [(str(conv), score) for entries in bands for conv, score in entries]
        fresh = await self._unmarked([conv for conv, _ in found], "escalated")
        events = []
        for conv, score in found:
            if conv not in fresh:
                continue
            keys = [self.keys.conversation(conv), queue, self.keys.journal()]
            result = await self._run("escalate", conv, keys,
                                     self._args(conv, due_before=due_before))
            if result.ok:
                since = (score % SCORE_BAND) / 1000
                events.append(SlaEvent("escalate", conv, since, priority=result.detail,
                                       version=result.version))
        return events

    async def _reminders(self) -> list[SlaEvent]:
        due_before = self.clock.now() - self.config.reply_seconds
        waiting = [str(c) for c in
                   await self.redis.zrangebyscore(self.keys.waiting(), "-inf", due_before)]
        fresh = await self._unmarked(waiting, "reminded")
        events = []
        for conv in waiting:
            if conv not in fresh:
                continue
            keys = [self.keys.conversation(conv), self.keys.journal()]
            result = await self._run("remind", conv, keys,
                                     self._args(conv, due_before=due_before))
            if result.ok:
                events.append(SlaEvent("remind", conv, float(result.detail), owner=result.owner,
                                       version=result.version))
        return events

    async def _unmarked(self, convs: list[str], mark: str) -> set[str]:
        """Those without `mark` yet: a cheap read so fired timers are not re-run every tick
        (the script checks again; this only saves round trips)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hget(self.keys.conversation(conv), mark)
            marks = await pipe.execute()
        return {conv for conv, value in zip(convs, marks, strict=True) if value != "1"}
