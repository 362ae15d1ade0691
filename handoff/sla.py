"""SLA timers, driven by whoever calls `due()` periodically (the worker), on the injected clock.

Two timers: a queued conversation unclaimed for `unclaimed_minutes` escalates (one priority
up, once), and an assigned one whose customer waits `reply_minutes` for a reply reminds its
owner (once per wait). Both count business hours only (`HandoffConfig.hours`): the night and
holidays do not make a wait overdue. The scripts mark what fired, so calling `due()` again, or
from two processes at once, reports each event exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from handoff.queue import SCORE_BAND
from handoff.scripted import Scripted

PRIORITY_BANDS = 4
# A timer is run with its own start as the latest acceptable one (a wait that restarted since is
# refused by the script); stored times are rounded to the microsecond, hence the slack.
_SLACK = 0.001


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
            since = (score % SCORE_BAND) / 1000
            if conv not in fresh or not self._waited(since, self.config.unclaimed_seconds):
                continue
            keys = [self.keys.conversation(conv), queue, self.keys.journal()]
            # due_before = its own queued time: the script still refuses one re-queued since
            result = await self._run("escalate", conv, keys,
                                     self._args(conv, due_before=min(since + _SLACK, due_before)))
            if result.ok:
                events.append(SlaEvent("escalate", conv, since, priority=result.detail,
                                       version=result.version))
        return events

    def _waited(self, since: float, limit: float) -> bool:
        """Whether a wait since `since` is over `limit` in business hours (every hour counts
        when the team has none): a chat queued at 23:30 is due five minutes after opening,
        not at 23:35."""
        hours = self.config.hours
        return hours is None or hours.open_seconds(since, self.clock.now()) >= limit

    async def _reminders(self) -> list[SlaEvent]:
        due_before = self.clock.now() - self.config.reply_seconds
        found: Any = await self.redis.zrangebyscore(self.keys.waiting(), "-inf", due_before,
                                                    withscores=True)
        waiting = {str(conv): float(since) for conv, since in found}
        fresh = await self._unmarked(list(waiting), "reminded")
        events = []
        for conv, since in waiting.items():
            if conv not in fresh or not self._waited(since, self.config.reply_seconds):
                continue
            keys = [self.keys.conversation(conv), self.keys.journal()]
            result = await self._run("remind", conv, keys,
                                     self._args(conv, due_before=min(since + _SLACK, due_before)))
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
