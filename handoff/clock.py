"""Time as a dependency: the service asks a `Clock`, tests pass a `FakeClock` and move it.

Every timestamp the handoff scripts write comes from here (never from `TIME` inside Lua), so a
test can put a conversation ten minutes into the future without sleeping.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that only moves when told to; starts at the real time unless given a start."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        return self._now

    def set(self, at: float | datetime) -> None:
        self._now = at.timestamp() if isinstance(at, datetime) else at


def as_datetime(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (business hours convert it to their zone)."""
    return datetime.fromtimestamp(seconds, timezone.utc)
