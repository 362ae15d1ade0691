"""Trainer analytics: the bot's daily counters plus the themes of what it did not understand.

The counters come from `handoff.stats`; the themes group the inbox entries filed in the period
(labelled ones included: they were not understood then). Both reads are bounded: one hash per
day, and at most `handoff.inbox.READ_MAX` inbox entries (the newest, when there are more).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from redis.asyncio import Redis

from bots.trainer.inbox import grouped
from handoff.inbox import Inbox
from handoff.keys import Keys
from handoff.stats import Period, StatsOut, Theme, bot_counters, stats_out

THEMES = 10


class TrainerStats:
    """The report over a period; what `supportbot stats` prints and `GET /stats` answers."""

    def __init__(self, redis: Redis, keys: Keys, themes: int = THEMES) -> None:
        self._redis = redis
        self._keys = keys
        self._inbox = Inbox(redis, keys)
        self._themes = themes

    async def __call__(self, period: Period) -> StatsOut:
        counters = await bot_counters(self._redis, self._keys, period)
        start = datetime.combine(period.first, time(), UTC)
        end = datetime.combine(period.last + timedelta(days=1), time(), UTC)
        entries = await self._inbox.entries(since=start.timestamp(), until=end.timestamp(),
                                            include_done=True)
        groups = await asyncio.to_thread(grouped, entries)
        themes = [
            Theme(text=group.text, messages=len(group.entries),
                  conversations=group.conversations,
                  top_guess=group.guesses[0][0] if group.guesses else None)
            for group in groups[: self._themes]
        ]
        return stats_out(period, counters, themes)


def csv_rows(report: StatsOut) -> list[list[str]]:
    """One long table (section, name, value, extra) that a spreadsheet pivots easily."""
    rows = [["section", "name", "value", "extra"]]
    summary = {
        "since": report.since.isoformat(), "until": report.until.isoformat(),
        "turns": report.turns, "fallbacks": report.fallbacks,
        "fallback_rate": report.fallback_rate, "conversations": report.conversations,
        "handed_off": report.handed_off, "deflection_rate": report.deflection_rate,
    }
    rows += [["summary", name, "" if value is None else str(value), ""]
             for name, value in summary.items()]
    rows += [["intent", item.intent, str(item.turns), ""] for item in report.intents]
    rows += [["handoff_reason", item.reason, str(item.handoffs), ""]
             for item in report.handoff_reasons]
    rows += [["theme", theme.text, str(theme.messages),
              f"{theme.conversations} conversations; guess {theme.top_guess or '-'}"]
             for theme in report.unrecognized_themes]
    return rows
