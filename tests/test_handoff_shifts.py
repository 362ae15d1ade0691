"""Shifts, hours per desk and the SLA ladder, at the service level on the fake clock.

The same behaviour end to end (the desk's notes and mentions) is in tests/test_desk_shifts.py."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from handoff.access import Access
from handoff.clock import FakeClock
from handoff.hours import BusinessHours, HoursError, parse_named, parse_schedule
from handoff.keys import Keys
from tests.test_handoff_support import enqueue, journal, make_service

ANN, BOB = "tg:1001", "tg:1002"
VLADIVOSTOK = "Asia/Vladivostok mon-fri 09:00-18:00"
MOSCOW = "Europe/Moscow mon-fri 09:00-18:00"


def moscow(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds of 2026-12-<day> <hour>:<minute> in Moscow (7 December is a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()


# --- the ladder ---------------------------------------------------------------------------
async def test_a_reply_reminder_climbs_the_ladder_one_level_at_a_time(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    service = make_service(redis, keys, clock, reply_minutes=10, ladder_minutes=10)
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    assert (await service.claim("tg:1", ANN)).ok
    levels = []
    for _minute in range(45):
        clock.advance(60)
        levels += [(e.kind, e.level, e.owner) for e in await service.sla_due()]
    assert levels == [("remind", 1, ANN), ("remind", 2, ANN), ("remind", 3, ANN)]
    entries = await journal(redis, keys, "remind")
    assert [e["level"] for e in entries] == ["1", "2", "3"]
    # A reply starts the ladder over: the next wait reminds the owner first again.
    assert (await service.reply("tg:1", ANN, "Смотрю")).ok
    await redis.zadd(keys.waiting(), {"tg:1": clock.now()}, nx=True)
    await redis.hset(keys.conversation("tg:1"), "customer_waiting_since",  # type: ignore[misc]
                     repr(clock.now()))
    clock.advance(10 * 60)
    assert [(e.kind, e.level) for e in await service.sla_due()] == [("remind", 1)]


async def test_a_scheduler_back_after_an_outage_fires_the_highest_level_due_only(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    service = make_service(redis, keys, clock, unclaimed_minutes=5, ladder_minutes=10)
    await enqueue(redis, keys, "tg:1", clock)
    clock.advance(40 * 60)
    (event,) = await service.sla_due()
    assert (event.kind, event.level, event.priority) == ("escalate", 3, "high")
    clock.advance(3600)
    assert await service.sla_due() == []  # the top of the ladder, once


async def test_only_the_first_escalation_raises_the_priority(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    service = make_service(redis, keys, clock, unclaimed_minutes=5, ladder_minutes=10)
    await enqueue(redis, keys, "tg:1", clock)
    seen = []
    for minutes in (5, 10, 10):
        clock.advance(minutes * 60)
        seen += [(e.level, e.priority) for e in await service.sla_due()]
    assert seen == [(1, "high"), (2, "high"), (3, "high")]
    assert await redis.hget(keys.conversation("tg:1"), "escalated") == "3"  # type: ignore[misc]


async def test_ladder_zero_keeps_the_first_level_only(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    service = make_service(redis, keys, clock, unclaimed_minutes=5, ladder_minutes=0)
    await enqueue(redis, keys, "tg:1", clock)
    clock.advance(5 * 60)
    assert [e.level for e in await service.sla_due()] == [1]
    clock.advance(3600)
    assert await service.sla_due() == []


# --- hours per desk -------------------------------------------------------------------------
async def test_each_desk_counts_its_own_business_hours(
    redis: aioredis.Redis, keys: Keys
) -> None:
    clock = FakeClock(moscow(7, 2, 0))  # Monday 02:00 in Moscow, 09:00 in Vladivostok
    team = BusinessHours.parse("mon-fri 09:00-18:00", "Europe/Moscow")
    far_east = parse_schedule(VLADIVOSTOK)
    service = make_service(redis, keys, clock, unclaimed_minutes=5, hours=team,
                           desk_hours={"-100222": far_east})
    await enqueue(redis, keys, "tg:moscow", clock)
    await enqueue(redis, keys, "tg:east", clock)
    await redis.hset(keys.conversation("tg:east"), "desk", "-100222")  # type: ignore[misc]
    clock.advance(5 * 60)
    assert [e.conv for e in await service.sla_due()] == ["tg:east"]  # Moscow sleeps
    status = await service.position("tg:moscow")
    assert not status.open_now and status.opens_at is not None
    assert status.opens_at.timestamp() == moscow(7, 9, 0)
    assert (await service.position("tg:east")).open_now


# --- shifts ---------------------------------------------------------------------------------
@pytest.fixture
def night_clock() -> FakeClock:
    return FakeClock(moscow(7, 2, 0))  # Monday 02:00 Moscow = 09:00 Vladivostok


async def test_shift_edges_bring_operators_online_and_offline_once(
    redis: aioredis.Redis, keys: Keys, night_clock: FakeClock
) -> None:
    clock = night_clock
    service = make_service(redis, keys, clock, timezone="Europe/Moscow")
    await service.shifts.set(ANN, VLADIVOSTOK, "tg:9")
    await service.shifts.set(BOB, "mon-fri 09:00-18:00", "tg:9")  # the team's zone: Moscow
    await service.set_status(BOB, "online")  # forgot to go offline last night
    edges = await service.shift_edges()
    assert sorted((e.op, e.started, e.status) for e in edges) == [
        (ANN, True, "online"), (BOB, False, "offline")]
    assert await service.shift_edges() == []  # each edge once
    assert [op.id for op in await service._operators.available()] == [ANN]

    await service.set_status(ANN, "offline")  # leaving early: the shift does not override it
    clock.advance(3600)
    assert await service.shift_edges() == []
    assert (await service.operator(ANN)).status == "offline"  # type: ignore[union-attr]

    clock.advance(moscow(7, 9, 0) - clock.now())  # Moscow opens, Vladivostok still works
    assert [(e.op, e.started) for e in await service.shift_edges()] == [(BOB, True)]
    await service.set_status(ANN, "online")
    clock.advance(moscow(7, 11, 0) - clock.now())  # 18:00 in Vladivostok
    assert [(e.op, e.started, e.status) for e in await service.shift_edges()] == [
        (ANN, False, "offline")]
    entries = await journal(redis, keys)
    assert [(e["action"], e["owner"]) for e in entries if e["action"].startswith("shift")] == [
        ("shift", ANN), ("shift", BOB), ("shift_start", ANN), ("shift_end", BOB),
        ("shift_start", BOB), ("shift_end", ANN)]


async def test_a_revoked_operators_shift_does_not_bring_them_back(
    redis: aioredis.Redis, keys: Keys, night_clock: FakeClock
) -> None:
    service = make_service(redis, keys, night_clock)
    access = Access(redis, keys, service.scripts, service.config, night_clock)
    await service.shifts.set(ANN, VLADIVOSTOK, "tg:9")
    await access.revoke(ANN, "tg:9", "left the team")
    assert [(e.op, e.status) for e in await service.shift_edges()] == [(ANN, "offline")]
    assert (await service.operator(ANN)).status == "offline"  # type: ignore[union-attr]


async def test_a_shift_can_be_cleared_and_a_bad_one_changes_nothing(
    redis: aioredis.Redis, keys: Keys, night_clock: FakeClock
) -> None:
    service = make_service(redis, keys, night_clock)
    await service.shifts.set(ANN, VLADIVOSTOK, "tg:9")
    with pytest.raises(HoursError, match="unknown time zone"):
        await service.shifts.set(ANN, "Mars/Olympus mon-fri 09:00-18:00", "tg:9")
    with pytest.raises(HoursError, match="no opening hours"):
        await service.shifts.set(ANN, "Asia/Vladivostok; except 2027-01-01", "tg:9")
    with pytest.raises(HoursError, match="cross midnight"):
        await service.shifts.set(ANN, "mon-fri 22:00-06:00", "tg:9")
    assert await service.shifts.of(ANN) == VLADIVOSTOK
    await service.shifts.set(ANN, "off", "tg:9")
    assert await service.shifts.of(ANN) == ""
    assert await service.shift_edges() == []


async def test_seeding_from_the_settings_applies_only_what_changed(
    redis: aioredis.Redis, keys: Keys, night_clock: FakeClock
) -> None:
    service = make_service(redis, keys, night_clock)
    await service.shifts.seed({ANN: VLADIVOSTOK, BOB: MOSCOW})
    await service.shifts.seed({ANN: VLADIVOSTOK, BOB: MOSCOW})
    assert len([e for e in await journal(redis, keys, "shift")]) == 2


# --- the formats ----------------------------------------------------------------------------
def test_a_schedule_line_names_its_zone_hours_and_days_off() -> None:
    hours = parse_schedule("Asia/Vladivostok mon-fri 09:00-18:00; sat 10:00-14:00; "
                           "except 2026-12-31", "Europe/Moscow")
    assert hours.timezone == "Asia/Vladivostok"
    vladivostok = ZoneInfo("Asia/Vladivostok")
    assert hours.is_open(datetime(2026, 12, 12, 11, 0, tzinfo=vladivostok))  # Saturday
    assert not hours.is_open(datetime(2026, 12, 31, 11, 0, tzinfo=vladivostok))  # day off
    assert parse_schedule("daily 08:00-20:00", "Europe/Moscow").timezone == "Europe/Moscow"
    until = hours.open_until(datetime(2026, 12, 7, 11, 0, tzinfo=vladivostok))
    assert until == datetime(2026, 12, 7, 18, 0, tzinfo=vladivostok)


def test_named_schedules_are_split_on_bars_and_errors_name_the_entry() -> None:
    assert parse_named("care = daily 08:00-20:00 | sales=mon 09:00-10:00", "desk") == [
        ("care", "daily 08:00-20:00"), ("sales", "mon 09:00-10:00")]
    with pytest.raises(HoursError, match=r"desk 2 \('sales'\): write it as name = hours"):
        parse_named("care = daily 08:00-20:00 | sales", "desk")
    with pytest.raises(HoursError, match="given twice"):
        parse_named("a = daily 08:00-20:00 | a = daily 08:00-20:00", "desk")
