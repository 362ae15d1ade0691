"""HandoffService: the one entry point of the desk, the API and the worker into the handoff.

The transitions come from `Transitions` (one Lua script each); operators, the queue, SLA timers
and ratings are small components this class hands calls to, so each stays readable alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from handoff.clock import SYSTEM_CLOCK, Clock
from handoff.config import HandoffConfig
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.operators import Operator, Operators
from handoff.queue import Queue, QueueItem, QueueStatus
from handoff.ratings import OperatorStats, Ratings
from handoff.scripted import CAPACITY, OFFLINE, UNKNOWN_OPERATOR, Transition
from handoff.scripts import Scripts
from handoff.shifts import ShiftEdge, Shifts
from handoff.sla import Sla, SlaEvent
from handoff.transitions import Transitions

__all__ = [
    "HandoffService", "Operator", "OperatorStats", "QueueItem", "QueueStatus", "ShiftEdge",
    "SlaEvent", "Transition",
]

AssignNotices = Callable[[str, str], Sequence[OutboundMessage]]  # (conv, operator) -> notices
RequeueNotices = Callable[[str], Sequence[OutboundMessage]]  # conv -> notices


class HandoffService(Transitions):
    """Transitions (claim, transfer, close, return_to_bot, cancel, ban, unban, reply) are
    inherited; the methods below hand over to the component that implements and documents
    them (operators.py, queue.py, sla.py, ratings.py), plus auto-assignment and requeueing,
    which combine operators and claims."""

    def __init__(
        self, redis: Redis, keys: Keys, scripts: Scripts, config: HandoffConfig,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(redis, keys, scripts, config, clock)
        deps = (redis, keys, scripts, config, clock)
        self._operators = Operators(*deps)
        self._queue = Queue(*deps)
        self._sla = Sla(*deps)
        self._ratings = Ratings(*deps)
        self.shifts = Shifts(*deps)

    # --- operators ----------------------------------------------------------------------
    async def set_status(
        self, op: str, status: str, *, name: str = "", username: str = "",
        capacity: int | None = None,
    ) -> Operator:
        return await self._operators.set_status(
            op, status, name=name, username=username, capacity=capacity
        )

    async def operator(self, op: str) -> Operator | None:
        return await self._operators.operator(op)

    async def operators(self) -> list[Operator]:
        return await self._operators.operators()

    async def load(self, op: str) -> int:
        return await self._operators.load(op)

    async def shift_edges(self) -> list[ShiftEdge]:
        """Operators whose shift started or ended since the last call (handoff/shifts.py)."""
        return await self.shifts.edges(self._operators)

    # --- queue, SLA, ratings -------------------------------------------------------------
    async def queue(self, limit: int = 50) -> list[QueueItem]:
        return await self._queue.items(limit)

    async def queue_length(self) -> int:
        return await self._queue.length()

    async def position(self, conv: str) -> QueueStatus:
        return await self._queue.position(conv)

    async def wait_estimate(self, position: int = 1) -> float | None:
        return await self._queue.wait_estimate(position)

    async def estimate_for(self, priority: str = "normal", position: int | None = None
                           ) -> float:
        return await self._queue.estimate_for(priority, position)

    async def sla_due(self) -> list[SlaEvent]:
        return await self._sla.due()

    async def rate(self, conv: str, score: int, comment: str | None = None) -> Transition:
        return await self._ratings.rate(conv, score, comment)

    async def comment(self, conv: str, text: str) -> Transition:
        return await self._ratings.comment(conv, text)

    async def operator_stats(self, op: str) -> OperatorStats:
        return await self._ratings.stats(op)

    # --- assignment ---------------------------------------------------------------------
    async def auto_assign(self, *, notices: AssignNotices | None = None, limit: int = 100
                          ) -> list[Transition]:
        """Give queued conversations, in queue order, to the least-loaded online operator with a
        free slot. Each assignment is one claim; when a claim loses a race (someone took the
        conversation by hand, the operator filled up or went away) the script refuses it and we
        move on. Returns the claims that happened."""
        candidates = {op.id: op for op in await self._operators.available()}
        loads = {op.id: op.load for op in candidates.values()}
        done: list[Transition] = []
        queued = await self.redis.zrange(self.keys.queue(), 0, limit - 1) if candidates else []
        for conv in map(str, queued):
            while candidates:
                op = min(candidates.values(),
                         key=lambda o: (loads[o.id], loads[o.id] / o.capacity, o.id))
                result = await self.claim(conv, op.id, auto=True,
                                          notices=notices(conv, op.id) if notices else ())
                if result.ok:
                    done.append(result)
                    loads[op.id] += 1
                    if loads[op.id] >= op.capacity:
                        del candidates[op.id]
                    break
                if result.error in (CAPACITY, OFFLINE, UNKNOWN_OPERATOR):
                    del candidates[op.id]
                    continue
                break  # taken or no longer queued: the next conversation
            if not candidates:
                break
        return done

    async def requeue_offline(self, grace: float | None = None, *,
                              notices: RequeueNotices | None = None) -> list[Transition]:
        """Put the conversations of operators offline for longer than `grace` (default
        `config.offline_grace_seconds`) back in the queue, priority and queued_at kept.
        The script re-checks status and grace, so an operator back online keeps theirs."""
        grace = self.config.offline_grace_seconds if grace is None else grace
        now = self.clock.now()
        done: list[Transition] = []
        for op in await self._operators.operators():
            if op.status != "offline" or op.load == 0 or now - op.status_since < grace:
                continue
            done += await self.requeue_operator(op.id, grace, notices=notices)
        return done

    async def requeue_operator(self, op: str, grace: float = 0.0, *,
                               notices: RequeueNotices | None = None) -> list[Transition]:
        """One offline operator's conversations back to the queue (grace 0: at once, as when
        their access is revoked); the script refuses if they came back online meanwhile."""
        done: list[Transition] = []
        for conv in sorted(map(str, await self.redis.smembers(self.keys.operator_convs(op)))):
            k = self.keys
            outbox, told = await self._to_customer(conv, notices(conv) if notices else ())
            keys = [
                k.conversation(conv), k.queue(), k.waiting(), k.operator(op),
                k.operator_convs(op), k.journal(), outbox,
            ]
            result = await self._run("requeue", conv, keys,
                                     self._args(conv, told, op=op, grace=grace))
            if result.ok:
                done.append(result)
        return done
