"""SLA timers, driven by whoever calls `due()` periodically (the worker), on the injected clock.

Two timers, each a ladder of `LADDER` levels. A queued conversation unclaimed for
`unclaimed_minutes` escalates: level 1 raises its priority (once) and calls the operators on
shift, level 2 (`ladder_minutes` later) the supervisors, level 3 (as much again) everyone once
more. An assigned one whose customer waits `reply_minutes` for a reply reminds its owner (1),
then the supervisors (2), then both (3); a reply starts the ladder over. Waits count business
hours only, of the conversation's desk (`HandoffConfig.hours_for`): the night and holidays do
not make a wait overdue. The scripts store the level reached, so calling `due()` again, or
from two processes at once, reports each level exactly once; a scheduler that was down fires
only the highest level due, not every level it missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from handoff.queue import SCORE_BAND
from handoff.scripted import Scripted

PRIORITY_BANDS = 4
LADDER = 3
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
    level: int = 1  # 1 the owner (or the operators on shift), 2 the supervisors, 3 all again


class Sla(Scripted):
    async def due(self) -> list[SlaEvent]:
        return await self._escalations() + await self._reminders()

    async def _escalations(self) -> list[SlaEvent]:
        limit = self.config.unclaimed_seconds
        due_before = self.clock.now() - limit
        cutoff_ms = int((due_before + _SLACK) * 1000)
        queue = self.keys.queue()
        # One score range per priority band: only conversations queued before the cutoff.
        async with self.redis.pipeline(transaction=False) as pipe:
            for band in range(PRIORITY_BANDS):
                pipe.zrangebyscore(queue, band * SCORE_BAND, band * SCORE_BAND + cutoff_ms,
                                   withscores=True)
            bands = await pipe.execute()
        found = {str(conv): (score % SCORE_BAND) / 1000 for entries in bands
                 for conv, score in entries}
        events = []
        for conv, (level, desk) in (await self._levels(list(found), "escalated")).items():
            since = found[conv]
            due = self._due_level(since, limit, desk)
            if due <= level:
                continue
            keys = [self.keys.conversation(conv), queue, self.keys.journal()]
            # due_before = its own queued time: the script still refuses one re-queued since
            args = self._args(conv, due_before=since + _SLACK, level=due)
            result = await self._run("escalate", conv, keys, args)
            if result.ok:
                events.append(SlaEvent("escalate", conv, since, priority=result.detail,
                                       version=result.version, level=due))
        return events

    def _due_level(self, since: float, limit: float, desk: str) -> int:
        """The ladder's level a wait since `since` has reached (0: none yet), in business
        hours of the desk (every hour counts when it has none): a chat queued at 23:30 is due
        five minutes after opening, not at 23:35."""
        hours = self.config.hours_for(desk)
        now = self.clock.now()
        # Stored times are rounded to the microsecond: a wait of exactly `limit` is due.
        waited = (now - since if hours is None else hours.open_seconds(since, now)) + _SLACK
        if waited < limit:
            return 0
        step = self.config.ladder_seconds
        return 1 if step <= 0 else min(LADDER, 1 + int((waited - limit) // step))

    async def _reminders(self) -> list[SlaEvent]:
        limit = self.config.reply_seconds
        due_before = self.clock.now() - limit
        found: Any = await self.redis.zrangebyscore(self.keys.waiting(), "-inf",
                                                    due_before + _SLACK, withscores=True)
        waiting = {str(conv): float(since) for conv, since in found}
        events = []
        for conv, (level, desk) in (await self._levels(list(waiting), "reminded")).items():
            since = waiting[conv]
            due = self._due_level(since, limit, desk)
            if due <= level:
                continue
            keys = [self.keys.conversation(conv), self.keys.journal()]
            args = self._args(conv, due_before=since + _SLACK, level=due)
            result = await self._run("remind", conv, keys, args)
            if result.ok:
                events.append(SlaEvent("remind", conv, float(result.detail), owner=result.owner,
                                       version=result.version, level=due))
        return events

    async def _levels(self, convs: list[str], mark: str) -> dict[str, tuple[int, str]]:
        """The level each has reached and its desk, for those below the top of the ladder: a
        cheap read so finished ladders are not re-run every tick (the script checks again;
        this only saves round trips)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hmget(self.keys.conversation(conv), mark, "desk")
            replies = await pipe.execute()
        levels = {conv: (int(level or 0), str(desk or ""))
                  for conv, (level, desk) in zip(convs, replies, strict=True)}
        return {conv: found for conv, found in levels.items() if found[0] < LADDER}
