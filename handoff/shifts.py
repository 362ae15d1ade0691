"""Operators' shifts: each operator's working hours in their own time zone.

A shift is a line of handoff/hours.py's `parse_schedule` ("Asia/Vladivostok mon-fri
09:00-18:00; except 2027-01-01"), kept as text in the operator's hash. The desk's scheduler
calls `edges()` every tick: when a shift starts, an offline operator goes online; when it ends,
an online or paused one goes offline, and after the grace period their conversations return to
the queue, as after /offline. Since only the edges change the status, /online and /offline
still work between them (overtime, leaving early). Auto-assignment, reminders and mentions then
follow the status: they reach only operators on shift. Operators without a shift keep working
by /online and /offline alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from handoff.hours import BusinessHours, HoursError, parse_schedule
from handoff.operators import Operators
from handoff.scripted import Scripted


@dataclass(frozen=True, slots=True)
class ShiftEdge:
    op: str
    started: bool  # False: ended
    status: str  # the operator's status after the edge


class Shifts(Scripted):
    def parse(self, spec: str) -> BusinessHours:
        """A shift's hours; HoursError names what is wrong. No time zone: the team's."""
        return parse_schedule(spec, self.config.timezone)

    async def set(self, op: str, spec: str, by: str) -> BusinessHours | None:
        """Give `op` the shift `spec` ("" or "off": none). Refused (HoursError) unless it
        parses and opens at least once within a year."""
        text = "" if spec.strip().lower() in ("", "off", "none", "-") else " ".join(spec.split())
        hours = None
        if text:
            hours = self.parse(text)
            hours.next_open(datetime.fromtimestamp(self.clock.now(), UTC))  # never opens: refuse
        keys = [self.keys.operator(op), self.keys.operators(), self.keys.journal()]
        await self._run_plain("operator_shift", keys, self._args(
            "", op=op, shift=text, by=by, default_capacity=self.config.default_capacity))
        return hours

    async def seed(self, listed: Mapping[str, str], by: str = "settings") -> None:
        """The shifts the settings list (DESK_SHIFTS), applied at start when they differ from
        what is stored: the settings are the supervisors' own decision."""
        for op, spec in listed.items():
            stored = await self.redis.hget(self.keys.operator(op), "shift")
            if stored != " ".join(spec.split()):
                await self.set(op, spec, by)

    async def of(self, op: str) -> str:
        return str(await self.redis.hget(self.keys.operator(op), "shift") or "")

    async def edges(self, operators: Operators) -> list[ShiftEdge]:
        """Apply every shift start and end not applied yet; each edge is applied once, by
        whichever scheduler gets to it (the script checks the last edge seen)."""
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        found: list[ShiftEdge] = []
        for operator in await operators.operators():
            if not operator.shift:
                continue
            try:
                on = self.parse(operator.shift).is_open(now)
            except HoursError:  # stored by an older version with other rules: leave it be
                continue
            keys = [self.keys.operator(operator.id), self.keys.journal(), self.keys.revoked()]
            status = await self._run_plain("shift_edge", keys, self._args(
                "", op=operator.id, state="on" if on else "off"))
            if status:
                found.append(ShiftEdge(operator.id, on, str(status)))
        return found
