"""Team reports: figures counted by the transition scripts, read back over a period."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.keys import Keys
from handoff.reports import BOUNDS, ReportError, ReportPeriod, durations, read_report
from handoff.scripts import LUA_DIR
from handoff.service import HandoffService
from tests.test_handoff_support import enqueue

ANN, BOB = "ann", "bob"
ZONE = "Europe/Moscow"


def whole_day(clock: FakeClock) -> ReportPeriod:
    return ReportPeriod.parse("today", None, None, ZONE, clock.now())


async def test_a_scripted_day_gives_the_expected_figures(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    for op in (ANN, BOB):
        await service.set_status(op, "online")
    # 1: Ann takes it after 30 s, answers 20 s later, closes 5 min after taking; rated 5
    await enqueue(redis, keys, "tg:1", clock, tags=("refund",))
    clock.advance(30)
    assert (await service.claim("tg:1", ANN)).ok
    clock.advance(20)
    assert (await service.reply("tg:1", ANN, "Здравствуйте")).ok
    # 2, in parallel: Ann takes a VK chat at once, transfers it to Bob, who closes it
    await enqueue(redis, keys, "vk:2", clock)
    assert (await service.claim("vk:2", ANN)).ok
    assert (await service.transfer("vk:2", ANN, BOB)).ok
    clock.advance(60)
    assert (await service.reply("vk:2", BOB, "Добрый день")).ok
    assert (await service.close("vk:2", BOB)).ok
    clock.advance(220)
    assert (await service.close("tg:1", ANN)).ok
    assert (await service.rate("tg:1", 5, "быстро и вежливо")).ok
    # 3: back to the bot by Bob, then a rating for a close that never happened is refused
    await enqueue(redis, keys, "tg:3", clock)
    assert (await service.claim("tg:3", BOB)).ok
    assert (await service.return_to_bot("tg:3", BOB)).ok
    assert not (await service.rate("tg:3", 1)).ok

    report = await read_report(redis, keys, whole_day(clock), clock.now())
    ann, bob = report.operators[ANN], report.operators[BOB]
    assert ann.counts == {"taken": 2, "closed": 1, "returned": 0, "transferred": 1,
                          "cancelled": 0, "banned": 0}
    assert bob.counts["taken"] == 1 and bob.counts["closed"] == 1 and bob.counts["returned"] == 1
    assert ann.peak_parallel == 2 and bob.peak_parallel == 1
    handle = ann.durations["handle"]
    assert (handle.count, handle.average) == (1, 300.0)
    first = ann.durations["first_reaction"]
    assert (first.count, first.average) == (1, 50.0)  # queued → Ann's first reply
    assert bob.durations["first_reaction"].average == 60.0
    assert (ann.ratings, ann.average_rating, ann.distribution[5], ann.comments) == (1, 5.0, 1, 1)
    assert report.team.counts["closed"] == 2 and report.team.counts["taken"] == 3
    assert report.channels["vk"].counts["closed"] == 1
    assert report.tags["refund"].counts["closed"] == 1
    assert [(c.op, c.conv, c.score, c.text) for c in report.comments] == [
        (ANN, "tg:1", 5, "быстро и вежливо")]


async def test_a_late_rating_counts_in_its_close_and_a_new_score_replaces_the_old(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    assert (await service.claim("tg:1", ANN)).ok
    assert (await service.close("tg:1", ANN)).ok
    closed_day = whole_day(clock)
    clock.advance(3 * 86400)
    assert (await service.rate("tg:1", 2)).ok
    assert (await service.rate("tg:1", 4)).ok
    then = (await read_report(redis, keys, closed_day, clock.now())).operators[ANN]
    assert (then.ratings, then.average_rating, then.distribution) == (
        1, 4.0, {1: 0, 2: 0, 3: 0, 4: 1, 5: 0})
    assert ANN not in (await read_report(redis, keys, whole_day(clock), clock.now())).operators


def test_periods_are_days_in_the_team_time_zone() -> None:
    now = 1_800_000_000.0  # 2027-01-15 08:00 UTC: 11:00 in Moscow, 18:00 in Vladivostok
    moscow = ReportPeriod.parse("today", None, None, ZONE, now)
    assert (moscow.end - moscow.start, moscow.start % 86400) == (86400, 86400 - 3 * 3600)
    week = ReportPeriod.parse("7d", None, None, "Asia/Vladivostok", now)
    assert week.end - week.start == 7 * 86400 and week.end > now
    dates = ReportPeriod.parse(None, "2027-01-01", "2027-01-02", ZONE, now)
    assert dates.end - dates.start == 2 * 86400 and "2027-01-01 – 2027-01-02" in dates.label
    for bad in [("weekly", None, None), (None, "2027-01-03", "2027-01-01"),
                (None, "01.01.2027", None), ("today", "2027-01-01", None),
                (None, "2025-01-01", "2027-01-01")]:
        with pytest.raises(ReportError):
            ReportPeriod.parse(*bad, ZONE, now)


def test_a_period_reads_days_inside_it_and_hours_at_its_edges() -> None:
    keys = Keys("t:")
    now = 1_800_000_000.0
    month = ReportPeriod.parse("30d", None, None, ZONE, now)
    found = month.counter_keys(keys, now)
    days = [k for k in found if k.startswith("t:report:d")]
    assert len(days) == 29 and len(found) == 29 + 24  # 21:00 UTC edges: 3 + 21 hours
    old = ReportPeriod.parse(None, "2026-01-10", "2026-01-11", ZONE, now)  # past the hours
    assert old.counter_keys(keys, now) == [keys.report_day(d) for d in (20463, 20464)]


def test_percentiles_interpolate_within_buckets() -> None:
    buckets = [0] * (len(BOUNDS) + 1)
    buckets[4] = 10  # ten durations in (30, 60]
    result = durations(buckets, 450.0)
    assert (result.count, result.average, result.p50, result.p90) == (10, 45.0, 45.0, 57.0)
    buckets[-1] = 90  # beyond a day: the open bucket reports its lower bound
    assert durations(buckets, 0).p90 == float(BOUNDS[-1])
    assert durations([0] * (len(BOUNDS) + 1), 0).p50 is None


def test_the_bounds_are_the_scripts_bounds() -> None:
    lua = (LUA_DIR / "lib_report.lua").read_text(encoding="utf-8")
    block = re.search(r"REPORT_BOUNDS = \{([^}]*)\}", lua)
    assert block is not None
    assert tuple(int(n) for n in re.findall(r"\d+", block.group(1))) == BOUNDS
    assert Path(LUA_DIR / "close.lua").read_text(encoding="utf-8").count("--!include") == 1
