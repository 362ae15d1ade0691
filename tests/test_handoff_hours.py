"""Business hours: open/closed, next opening over weekends, holidays, time zones and DST."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from handoff.hours import BusinessHours, HoursError, parse_holidays, parse_weekly

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def test_open_and_closed_on_weekdays_and_weekends() -> None:
    hours = BusinessHours.parse("mon-fri 09:00-21:00; sat,sun 10:00-18:00", "Europe/Moscow")
    assert hours.is_open(at(MSK, 2026, 9, 21, 9, 0))  # Monday, opening minute
    assert not hours.is_open(at(MSK, 2026, 9, 21, 8, 59))
    assert not hours.is_open(at(MSK, 2026, 9, 21, 21, 0))  # the end is not included
    assert hours.is_open(at(MSK, 2026, 9, 26, 17, 59))  # Saturday
    assert not hours.is_open(at(MSK, 2026, 9, 26, 9, 30))


def test_next_opening_over_a_weekend() -> None:
    hours = BusinessHours.parse("mon-fri 09:00-18:00", "Europe/Moscow")
    friday_evening = at(MSK, 2026, 9, 25, 22, 0)
    assert hours.next_open(friday_evening) == at(MSK, 2026, 9, 28, 9, 0)
    assert hours.next_open(at(MSK, 2026, 9, 28, 7, 0)) == at(MSK, 2026, 9, 28, 9, 0)
    open_now = at(MSK, 2026, 9, 28, 12, 0)
    assert hours.next_open(open_now) is open_now


def test_next_opening_skips_holidays() -> None:
    hours = BusinessHours.parse("mon-fri 09:00-18:00", "Europe/Moscow",
                                holidays="2026-12-31, 2027-01-01")
    assert not hours.is_open(at(MSK, 2026, 12, 31, 12, 0))
    # Wednesday evening -> Thursday and Friday are holidays -> the weekend -> Monday.
    assert hours.next_open(at(MSK, 2026, 12, 30, 19, 0)) == at(MSK, 2027, 1, 4, 9, 0)


def test_the_time_zone_decides() -> None:
    moment = datetime(2026, 9, 21, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow, 03:00 in New York
    assert BusinessHours.parse("mon-fri 09:00-18:00", "Europe/Moscow").is_open(moment)
    new_york = BusinessHours.parse("mon-fri 09:00-18:00", "America/New_York")
    assert not new_york.is_open(moment)
    opening = new_york.next_open(moment)
    assert opening.astimezone(UTC) == datetime(2026, 9, 21, 13, 0, tzinfo=UTC)  # 09:00 EDT


def test_opening_hours_follow_the_wall_clock_across_dst() -> None:
    hours = BusinessHours.parse("mon-fri 09:00-18:00", "Europe/Berlin")
    # Clocks go forward on Sunday 2026-03-29: Friday 19:00 CET (18:00 UTC) to Monday 09:00
    # CEST (07:00 UTC) is 61 hours, not 62.
    friday = at(BERLIN, 2026, 3, 27, 19, 0)
    monday = hours.next_open(friday)
    assert monday.astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    # (Subtracting two datetimes of the same zone ignores the offset change: use timestamps.)
    assert monday.timestamp() - friday.timestamp() == 61 * 3600
    assert hours.is_open(datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 3, 27, 7, 59, tzinfo=UTC))  # 08:59 CET


def test_an_opening_inside_the_dst_gap_happens_once_the_clock_exists() -> None:
    hours = BusinessHours.parse("sun 02:30-05:00", "Europe/Berlin")
    opening = hours.next_open(at(BERLIN, 2026, 3, 28, 23, 0))
    assert opening.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert hours.is_open(opening)


def test_ranges_up_to_midnight_and_from_midnight() -> None:
    hours = BusinessHours.parse("fri 18:00-24:00; sat 00:00-02:00", "Europe/Moscow")
    assert hours.is_open(at(MSK, 2026, 9, 25, 23, 59))
    assert hours.is_open(at(MSK, 2026, 9, 26, 1, 0))
    assert not hours.is_open(at(MSK, 2026, 9, 26, 2, 0))


def test_several_ranges_a_day_daily_and_wrapping_day_spans() -> None:
    assert parse_weekly("mon 09:00-13:00, 14:00-18:00") == {
        0: [(time(9), time(13)), (time(14), time(18))]}
    assert sorted(parse_weekly("daily 10:00-11:00")) == list(range(7))
    assert sorted(parse_weekly("fri-mon 10:00-11:00")) == [0, 4, 5, 6]
    assert sorted(parse_weekly("Saturday,SUN 10:00-11:00")) == [5, 6]
    hours = BusinessHours.parse("mon 09:00-13:00,14:00-18:00", "UTC")
    lunch = datetime(2026, 9, 21, 13, 30, tzinfo=UTC)
    assert not hours.is_open(lunch)
    assert hours.next_open(lunch) == datetime(2026, 9, 21, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "holidays", "zone", "names"),
    [
        ("mno-fri 09:00-18:00", "", "UTC", "'mno'"),
        ("mon-fri 9-18", "", "UTC", "'9'"),
        ("mon-fri 09:00-25:00", "", "UTC", "'25:00'"),
        ("mon 22:00-02:00", "", "UTC", "midnight"),
        ("mon 10:00-10:00", "", "UTC", "'10:00-10:00'"),
        ("mon-fri", "", "UTC", "'mon-fri'"),
        ("", "", "UTC", "no opening hours"),
        ("mon 09:00-18:00", "2026-13-01", "UTC", "'2026-13-01'"),
        ("mon 09:00-18:00", "", "Mars/Olympus", "'Mars/Olympus'"),
    ],
)
def test_bad_settings_name_the_bad_part(spec: str, holidays: str, zone: str, names: str) -> None:
    with pytest.raises(HoursError, match=names):
        BusinessHours.parse(spec, zone, holidays)


def test_holidays_and_naive_datetimes() -> None:
    assert parse_holidays("2026-12-31,2027-01-01") == {date(2026, 12, 31), date(2027, 1, 1)}
    assert parse_holidays("") == set()
    with pytest.raises(ValueError, match="aware"):
        BusinessHours.parse("mon 09:00-18:00").is_open(datetime(2026, 9, 21, 10, 0))
    with pytest.raises(HoursError, match="never open"):
        BusinessHours("UTC", {}).next_open(datetime(2026, 9, 21, tzinfo=UTC))
