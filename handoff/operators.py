"""Operators: who is online, paused or offline, with how many parallel conversations.

Status and capacity live in `Keys.operator(op)`, the assigned conversations in
`Keys.operator_convs(op)`; the claim script counts that set, so the load read here is for
display and for choosing whom to auto-assign, never for deciding whether a claim fits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from handoff.config import MAX_CAPACITY
from handoff.scripted import Scripted

Status = Literal["online", "paused", "offline"]
STATUSES: tuple[str, ...] = get_args(Status)


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    status: Status = "offline"
    capacity: int = 5
    load: int = 0  # conversations assigned right now
    name: str = ""
    username: str = ""
    status_since: float = 0.0
    shift: str = ""  # working hours (handoff/shifts.py), "" when none

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)

    @classmethod
    def from_hash(cls, op: str, raw: dict[str, str], load: int) -> Operator:
        status = raw.get("status", "offline")
        return cls(
            id=op, status=cast(Status, status if status in STATUSES else "offline"),
            capacity=int(raw.get("capacity", 0)), load=load, name=raw.get("name", ""),
            username=raw.get("username", ""),
            status_since=float(raw.get("status_since", 0.0)), shift=raw.get("shift", ""),
        )


class Operators(Scripted):
    async def set_status(
        self, op: str, status: str, *, name: str = "", username: str = "",
        capacity: int | None = None,
    ) -> Operator:
        """Online (claims and auto-assignments), paused (claims by hand only) or offline (no
        claims; after `offline_grace_seconds` their conversations go back to the queue).
        Empty name/username and capacity None keep what is stored (capacity: the default)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must be 1..{MAX_CAPACITY}, not {capacity}")
        if not op:
            raise ValueError("an operator id is required")
        args = self._args(op, op=op, status=status, name=name, username=username,
                          capacity=capacity or 0, default_capacity=self.config.default_capacity)
        await self._run_plain("operator_status", [self.keys.operator(op), self.keys.operators()],
                              args)
        found = await self.operator(op)
        assert found is not None  # just written
        return found

    async def operator(self, op: str) -> Operator | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.operator(op))
            pipe.scard(self.keys.operator_convs(op))
            raw, load = await pipe.execute()
        return Operator.from_hash(op, raw, int(load)) if raw else None

    async def operators(self, known: Iterable[Any] | None = None) -> list[Operator]:
        """Every operator who ever set a status, sorted by id (`known`: their ids, just read)."""
        if known is None:
            known = await self.redis.smembers(self.keys.operators())
        ids = sorted(str(op) for op in known)
        async with self.redis.pipeline(transaction=False) as pipe:
            for op in ids:
                pipe.hgetall(self.keys.operator(op))
                pipe.scard(self.keys.operator_convs(op))
            replies = await pipe.execute()
        return [
            Operator.from_hash(op, raw, int(load))
            for op, raw, load in zip(ids, replies[::2], replies[1::2], strict=True) if raw
        ]

    async def load(self, op: str) -> int:
        return int(await self.redis.scard(self.keys.operator_convs(op)))

    async def available(self, known: Iterable[Any] | None = None) -> list[Operator]:
        """Online operators with a free slot, least loaded first (then by free share, then id)."""
        ready = [op for op in await self.operators(known)
                 if op.status == "online" and op.free > 0]
        return sorted(ready, key=lambda op: (op.load, op.load / op.capacity, op.id))
