"""Log lines that an attacker can repeat at will, summarised: the first of a kind each minute is
logged as it comes, the rest are counted and reported in one line when the next minute starts.

A flood of wrong webhook secrets wrote 36,451 WARNING lines in 15 seconds (bench/abuse): disk,
CPU and, worse, a log nobody can read any more. One line a minute per kind says the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

PERIOD = 60.0


@dataclass(slots=True)
class _Kind:
    started: float
    repeats: int = 0


class Summarized:
    def __init__(self, log: logging.Logger, *, period: float = PERIOD,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._period = period
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        """Log `message` if it is the first of `kind` this period; count it otherwise. `kind`
        is a fixed string (the message without its arguments)."""
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.started < self._period:
            seen.repeats += 1
            return
        if seen is not None and seen.repeats:
            self._log.warning("%s: %d more in the last %.0f s", kind, seen.repeats,
                              now - seen.started)
        self._kinds[kind] = _Kind(now)
        self._log.warning(message, *args)
