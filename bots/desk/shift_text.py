"""How the desk shows a shift: its hours, and whether it is on now, in the shift's own zone."""

from __future__ import annotations

from datetime import UTC, datetime

from bots import texts
from handoff.hours import BusinessHours, HoursError


def shift_line(spec: str, hours: BusinessHours | None, now: float) -> str:
    """"Asia/Vladivostok mon-fri 09:00-18:00 — сейчас смена, до 18:00 (Asia/Vladivostok)"."""
    if not spec or hours is None:
        return "смена не задана: работа по /online и /offline"
    moment = datetime.fromtimestamp(now, UTC)
    until = hours.open_until(moment)
    if until is not None:
        return f"{spec} — сейчас смена, до {until:%H:%M} ({hours.timezone})"
    try:
        opens = hours.next_open(moment)
    except HoursError:
        return f"{spec} — смена не начнётся в ближайший год"
    return f"{spec} — вне смены, начало {texts.opening(opens, moment, 'ru')} ({hours.timezone})"
