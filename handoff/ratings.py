"""Customer ratings of closed handoffs, and the per-operator figures supervisors look at.

A rating belongs to the conversation's last history entry (the close that showed the rating
keyboard) and to the operator who owned it then, even if the customer answers much later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from handoff.scripted import STALE, Scripted, Transition

COMMENT_MAX = 2000
_STALE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class OperatorStats:
    op: str
    handled: int  # conversations the operator closed as owner
    ratings: int
    average_rating: float | None
    distribution: dict[int, int]  # score -> how many
    first_responses: int
    average_first_response_seconds: float | None  # claim -> first reply, over closed handoffs


class Ratings(Scripted):
    async def rate(self, conv: str, score: int, comment: str | None = None) -> Transition:
        """Rate the last closed handoff 1..5 (again: replaces the earlier score). Refused
        `wrong_state` when there is nothing to rate (no close by an operator)."""
        if not 1 <= score <= 5:
            raise ValueError(f"a rating is 1..5, not {score}")
        return await self._store(conv, score, comment)

    async def comment(self, conv: str, text: str) -> Transition:
        """Add (or replace) the comment on the last closed handoff."""
        if not text.strip():
            raise ValueError("an empty comment")
        return await self._store(conv, 0, text)

    async def stats(self, op: str) -> OperatorStats:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.ratings(op))
            pipe.hgetall(self.keys.operator_stats(op))
            ratings, stats = await pipe.execute()
        count, total = int(ratings.get("count", 0)), int(ratings.get("sum", 0))
        responses = int(stats.get("first_responses", 0))
        seconds = float(stats.get("first_response_seconds", 0))
        return OperatorStats(
            op=op, handled=int(stats.get("handled", 0)), ratings=count,
            average_rating=round(total / count, 2) if count else None,
            distribution={score: int(ratings.get(str(score), 0)) for score in range(1, 6)},
            first_responses=responses,
            average_first_response_seconds=round(seconds / responses, 1) if responses else None,
        )

    async def _store(self, conv: str, score: int, comment: str | None) -> Transition:
        if comment is not None:
            comment = comment.strip()[:COMMENT_MAX]
        owner = await self._last_owner(conv)
        for _ in range(_STALE_RETRIES):
            keys = [self.keys.conversation(conv), self.keys.history(conv),
                    self.keys.ratings(owner), self.keys.journal()]
            args = self._args(conv, owner=owner, score=score)
            if comment is not None:
                args["comment"] = comment
            result = await self._run("rate", conv, keys, args)
            if result.error != STALE:
                return result
            owner = result.owner  # a new close landed in between: rate that one
        raise RuntimeError(f"{conv}: the history kept changing during the rating")

    async def _last_owner(self, conv: str) -> str:
        raw = await self.redis.lindex(self.keys.history(conv), -1)
        if not raw:
            return ""
        owner = json.loads(raw).get("owner")
        return owner if isinstance(owner, str) else ""
