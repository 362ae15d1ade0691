"""The team's reports: what each operator did over a period, how fast and how well.

The transition scripts count as they go (lua/lib_report.lua): one hash per hour, with counts
(taken, closed, returned to the bot, transferred, cancelled, banned), duration histograms (first
reaction: queued → first operator reply; response: the customer's message, or the claim → the
operator's reply; handle: take → close), the peak of parallel chats, and the customers' ratings,
each per operator, for the whole team, per channel and per tag. A report reads one hash per hour
of its period, so its cost is bounded by the period's length (at most `MAX_DAYS` days), never by
the traffic: 100,000 conversations report as fast as ten (bench.reports). Each figure is also
counted per UTC day, so a month reads some 30 day hashes and the hours at its two edges.

Percentiles come from the histograms (linear within a bucket of `BOUNDS`): exact to the bucket,
which is what a team needs to see ("p90 under two minutes"), not to the second. Periods are
whole hours; a time zone with a half-hour offset gets its day boundaries to the hour.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from handoff.keys import Keys

#: Bucket upper bounds in seconds; the same list as REPORT_BOUNDS in lua/lib_report.lua.
BOUNDS = (5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
REPORT_DAYS = 400  # how long the daily counters are kept
HOUR_DAYS = 35  # how long the hourly ones are: older periods are told to the UTC day
MAX_DAYS = 366
COUNTS = ("taken", "closed", "returned", "transferred", "cancelled", "banned")
DURATIONS = ("first_reaction", "response", "handle")
NAMED_PERIODS = ("today", "yesterday", "7d", "30d")


class ReportError(ValueError):
    """A period that cannot be reported (unknown name, reversed, too long, bad date)."""


def report_args(keys: Keys) -> dict[str, Any]:
    """What every counting script needs: where the hourly hashes live and how long they stay."""
    return {"prefix": keys.prefix, "ttl": REPORT_DAYS * 86400, "hour_ttl": HOUR_DAYS * 86400}


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    start: float  # epoch seconds, included
    end: float  # epoch seconds, excluded
    label: str  # as a person reads it, in the team's time zone

    @classmethod
    def parse(
        cls, name: str | None, first: str | None, last: str | None, zone: str, now: float
    ) -> ReportPeriod:
        """A named period (today, yesterday, 7d, 30d: days ending today) or `first`..`last`
        (dates, both included), in the time zone `zone`."""
        tz = ZoneInfo(zone)
        today = datetime.fromtimestamp(now, tz).date()
        if first or last:
            if name:
                raise ReportError("give a period name or dates, not both")
            try:
                start_day = date.fromisoformat(first) if first else today
                end_day = date.fromisoformat(last) if last else today
            except ValueError as exc:
                raise ReportError(f"dates are YYYY-MM-DD: {exc}") from None
        else:
            days = {"today": (0, 0), "yesterday": (1, 1), "7d": (6, 0), "30d": (29, 0)}
            if (name or "today") not in days:
                raise ReportError(f"unknown period {name!r} (known: {', '.join(NAMED_PERIODS)})")
            back, forward = days[name or "today"]
            start_day, end_day = today - timedelta(days=back), today - timedelta(days=forward)
        if end_day < start_day:
            raise ReportError(f"the period ends ({end_day}) before it starts ({start_day})")
        if (end_day - start_day).days + 1 > MAX_DAYS:
            raise ReportError(f"a report covers at most {MAX_DAYS} days")
        start = datetime.combine(start_day, time(), tz).timestamp()
        end = datetime.combine(end_day + timedelta(days=1), time(), tz).timestamp()
        label = str(start_day) if start_day == end_day else f"{start_day} – {end_day}"
        return cls(start, end, f"{label} ({zone})")

    @property
    def hours(self) -> range:
        return range(math.floor(self.start / 3600), math.ceil(self.end / 3600))

    def counter_keys(self, keys: Keys, now: float) -> list[str]:
        """The hashes that add up to this period: a UTC day's own hash for each day wholly
        inside it, and hours at its edges (a day in Moscow is 21:00-21:00 UTC). Hours older than
        the hourly counters are kept give way to their day's hash, when most of it is inside."""
        found: list[str] = []
        kept_since = now - HOUR_DAYS * 86400 + 3600
        for day in range(math.floor(self.start / 86400), math.ceil(self.end / 86400)):
            first, last = max(self.start, day * 86400), min(self.end, (day + 1) * 86400)
            if last - first >= 86400:
                found.append(keys.report_day(day))
            elif first >= kept_since:
                found += [keys.report_hour(h) for h in range(math.floor(first / 3600),
                                                             math.ceil(last / 3600))]
            elif last - first >= 43200:
                found.append(keys.report_day(day))
        return found


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    average: float | None
    p50: float | None
    p90: float | None


@dataclass(slots=True)
class Figures:
    """The figures of one operator, or of the team, a channel or a tag."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    durations: dict[str, Durations] = field(default_factory=dict)
    peak_parallel: int = 0
    ratings: int = 0
    rating_sum: int = 0
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    comments: int = 0

    @property
    def average_rating(self) -> float | None:
        return round(self.rating_sum / self.ratings, 2) if self.ratings else None


@dataclass(frozen=True, slots=True)
class Comment:
    at: float
    op: str
    conv: str
    score: int | None
    text: str


@dataclass(slots=True)
class Report:
    period: ReportPeriod
    team: Figures
    operators: dict[str, Figures]
    channels: dict[str, Figures]
    tags: dict[str, Figures]
    comments: list[Comment]


async def read_report(redis: Redis, keys: Keys, period: ReportPeriod, now: float) -> Report:
    async with redis.pipeline(transaction=False) as pipe:
        for key in period.counter_keys(keys, now):
            pipe.hgetall(key)
        pipe.lrange(keys.report_comments(), 0, -1)
        *hours, comments = await pipe.execute()
    totals: dict[str, float] = defaultdict(float)
    for fields in hours:
        for name, value in fields.items():
            key = name.decode() if isinstance(name, bytes) else name
            number = float(value)
            totals[key] = max(totals[key], number) if key.endswith("|peak") else (
                totals[key] + number)
    by_dimension = _figures(totals)
    return Report(
        period=period,
        team=by_dimension.pop("all", Figures()),
        operators=_part(by_dimension, "op:"),
        channels=_part(by_dimension, "ch:"),
        tags=_part(by_dimension, "tag:"),
        comments=_comments(comments, period),
    )


def _figures(totals: dict[str, float]) -> dict[str, Figures]:
    grouped: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in totals.items():
        dimension, _, metric = key.partition("|")
        grouped[dimension][metric] = value
    return {dimension: _one(metrics) for dimension, metrics in grouped.items()}


def _one(metrics: dict[str, float]) -> Figures:
    figures = Figures()
    for name in COUNTS:
        figures.counts[name] = int(metrics.get(name, 0))
    for name in DURATIONS:
        buckets = [int(metrics.get(f"{name}|b{i}", 0)) for i in range(1, len(BOUNDS) + 2)]
        figures.durations[name] = durations(buckets, metrics.get(f"{name}|sum", 0.0))
    figures.peak_parallel = int(metrics.get("peak", 0))
    figures.ratings = int(metrics.get("csat_n", 0))
    figures.rating_sum = int(metrics.get("csat_sum", 0))
    for score in range(1, 6):
        figures.distribution[score] = int(metrics.get(f"csat|{score}", 0))
    figures.comments = int(metrics.get("comments", 0))
    return figures


def durations(buckets: list[int], total: float) -> Durations:
    """Count, mean and p50/p90 of a histogram over BOUNDS (the last bucket is open: its
    percentiles are given as its lower bound)."""
    count = sum(buckets)
    if count == 0:
        return Durations(0, None, None, None)
    return Durations(count, round(total / count, 1), _percentile(buckets, count, 0.5),
                     _percentile(buckets, count, 0.9))


def _percentile(buckets: list[int], count: int, q: float) -> float:
    rank = q * count
    seen = 0
    for index, size in enumerate(buckets):
        if size and seen + size >= rank:
            low = BOUNDS[index - 1] if index > 0 else 0
            if index >= len(BOUNDS):
                return float(low)
            return round(low + (BOUNDS[index] - low) * (rank - seen) / size, 1)
        seen += size
    return float(BOUNDS[-1])


def _part(by_dimension: dict[str, Figures], prefix: str) -> dict[str, Figures]:
    return {name.removeprefix(prefix): figures for name, figures in sorted(by_dimension.items())
            if name.startswith(prefix)}


def _comments(raw: Iterable[Any], period: ReportPeriod) -> list[Comment]:
    """The period's comments, newest first, one per rated handoff (a changed comment
    replaces the earlier one)."""
    seen: set[tuple[str, float]] = set()
    found = []
    for item in raw:
        data = json.loads(item)
        at, conv = float(data.get("at", 0)), str(data.get("conv", ""))
        if not period.start <= at < period.end or (conv, at) in seen:
            continue
        seen.add((conv, at))
        score = data.get("score")
        found.append(Comment(at, str(data.get("op", "")), conv,
                             int(score) if isinstance(score, int | float) else None,
                             str(data.get("comment", ""))))
    return found


COLUMNS = (
    "scope", "name", *COUNTS,
    *(f"{name}_{stat}" for name in DURATIONS for stat in ("p50", "p90", "avg")),
    "peak_parallel", "ratings", "csat_avg", *(f"csat_{score}" for score in range(1, 6)),
    "comments",
)


def rows(report: Report) -> list[list[str]]:
    """One row per figure set (team, each operator, channel and tag) under COLUMNS; durations
    in seconds, empty where nothing was measured. The CSV export and the tables show these."""
    parts = [("team", {"all": report.team}), ("operator", report.operators),
             ("channel", report.channels), ("tag", report.tags)]
    return [_row(scope, name, figures) for scope, part in parts for name, figures in part.items()]


def _row(scope: str, name: str, figures: Figures) -> list[str]:
    timed = []
    for metric in DURATIONS:
        measured = figures.durations.get(metric) or Durations(0, None, None, None)
        timed += [_blank(measured.p50), _blank(measured.p90), _blank(measured.average)]
    return [scope, name, *(str(figures.counts[c]) for c in COUNTS), *timed,
            str(figures.peak_parallel), str(figures.ratings), _blank(figures.average_rating),
            *(str(figures.distribution[s]) for s in range(1, 6)), str(figures.comments)]


def _blank(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def as_json(report: Report) -> dict[str, Any]:
    """The report as the API returns it."""
    def figures(f: Figures) -> dict[str, Any]:
        return {
            "counts": f.counts,
            "durations": {name: asdict(d) for name, d in f.durations.items()},
            "peak_parallel": f.peak_parallel,
            "csat": {"ratings": f.ratings, "average": f.average_rating,
                     "distribution": {str(s): n for s, n in f.distribution.items()},
                     "comments": f.comments},
        }
    return {
        "period": {"start": report.period.start, "end": report.period.end,
                   "label": report.period.label},
        "team": figures(report.team),
        "operators": {op: figures(f) for op, f in report.operators.items()},
        "channels": {name: figures(f) for name, f in report.channels.items()},
        "tags": {name: figures(f) for name, f in report.tags.items()},
        "comments": [asdict(c) for c in report.comments],
    }
