"""The bot's daily counters (written by commit_turn.lua with each turn), summed over a period.

Per UTC day: a hash (`turns`, `fallbacks`, `intent:<name>`, `handoff:<reason>`) and two
HyperLogLogs (conversations the bot talked to, conversations it handed to a human). A period
reads one hash per day and counts the union of the day logs, so the cost is bounded by the
number of days (at most `MAX_DAYS`), never by the traffic. HyperLogLog counts are exact for
small numbers and within about 1 % for large ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydantic import BaseModel
from redis.asyncio import Redis

from handoff.keys import Keys

MAX_DAYS = 366


class PeriodError(ValueError):
    """A period that is empty, reversed or longer than MAX_DAYS."""


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # UTC days, both included
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError(f"the period ends ({self.last}) before it starts ({self.first})")
        if (self.last - self.first).days + 1 > MAX_DAYS:
            raise PeriodError(f"a period is at most {MAX_DAYS} days")

    @classmethod
    def last_days(cls, days: int, today: date) -> Period:
        if days < 1:
            raise PeriodError("--days must be at least 1")
        return cls(today - timedelta(days=days - 1), today)

    @property
    def days(self) -> list[str]:
        count = (self.last - self.first).days + 1
        return [(self.first + timedelta(days=n)).isoformat() for n in range(count)]


@dataclass(slots=True)
class BotCounters:
    turns: int = 0
    fallbacks: int = 0
    conversations: int = 0
    handed_off: int = 0
    intents: Counter[str] = field(default_factory=Counter)
    handoff_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.turns if self.turns else None

    @property
    def deflection_rate(self) -> float | None:
        """Share of the conversations the bot talked to that it finished without a human."""
        if not self.conversations:
            return None
        return max(0, self.conversations - self.handed_off) / self.conversations


async def bot_counters(redis: Redis, keys: Keys, period: Period) -> BotCounters:
    days = period.days
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(keys.stats_day(day))
        pipe.pfcount(*(keys.stats_day_convs(day) for day in days))
        pipe.pfcount(*(keys.stats_day_handoffs(day) for day in days))
        replies = await pipe.execute()
    counters = BotCounters(conversations=int(replies[-2]), handed_off=int(replies[-1]))
    for fields in replies[:-2]:
        for name, value in fields.items():
            _add(counters, str(name), int(value))
    return counters


def _add(counters: BotCounters, name: str, value: int) -> None:
    kind, _, label = name.partition(":")
    if kind == "turns":
        counters.turns += value
    elif kind == "fallbacks":
        counters.fallbacks += value
    elif kind == "intent":
        counters.intents[label] += value
    elif kind == "handoff":
        counters.handoff_reasons[label] += value


def period_of(since: date | None, until: date | None, days: int | None, today: date) -> Period:
    """`since`/`until` (either may be left out: the period runs from/to `today`, and `since`
    alone goes back at most MAX_DAYS), or the last `days` days; default the last 7."""
    if days is not None and (since is not None or until is not None):
        raise PeriodError("give either --days or --since/--until, not both")
    if since is None and until is None:
        return Period.last_days(days or 7, today)
    last = until or today
    return Period(since or last - timedelta(days=6), last)


# --- the report, as the API answers it and the CLI prints it ----------------------------
class IntentVolume(BaseModel):
    intent: str
    turns: int


class ReasonCount(BaseModel):
    reason: str
    handoffs: int


class Theme(BaseModel):
    """A group of similar messages the bot did not understand."""

    text: str  # the group's first message
    messages: int
    conversations: int
    top_guess: str | None = None  # the NLU's most frequent best guess over the group


class StatsOut(BaseModel):
    since: date
    until: date  # both UTC days, included
    turns: int
    fallbacks: int
    fallback_rate: float | None
    conversations: int
    handed_off: int
    deflection_rate: float | None
    intents: list[IntentVolume]
    handoff_reasons: list[ReasonCount]
    unrecognized_themes: list[Theme]


def stats_out(period: Period, counters: BotCounters, themes: list[Theme]) -> StatsOut:
    return StatsOut(
        since=period.first, until=period.last, turns=counters.turns,
        fallbacks=counters.fallbacks, fallback_rate=_rounded(counters.fallback_rate),
        conversations=counters.conversations, handed_off=counters.handed_off,
        deflection_rate=_rounded(counters.deflection_rate),
        intents=[IntentVolume(intent=name, turns=n) for name, n in counters.intents.most_common()],
        handoff_reasons=[ReasonCount(reason=name, handoffs=n)
                         for name, n in counters.handoff_reasons.most_common()],
        unrecognized_themes=themes,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
