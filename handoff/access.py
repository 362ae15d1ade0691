"""Who may act at the desk: roles (operator, supervisor, trainer) and revocation.

Roles live in Redis (one set per role), seeded at start from the settings (DESK_OPERATORS,
DESK_SUPERVISORS, DESK_TRAINERS) and changed by supervisors (`/grant`, `/revoke` in the desk).
With no operators listed the desk is open, as before: any member of the desk group acts as an
operator. Revocation takes effect at once, listed or not: the person loses every role, is
marked revoked (so an open desk ignores them too), goes offline, and their conversations return
to the queue; the journal records who did it and why. A member who leaves or is removed from a
desk group is revoked the same way (bots/desk/turns.py, from Telegram's `chat_member`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal, get_args

from handoff.scripted import Scripted, Transition
from handoff.service import HandoffService, RequeueNotices

Role = Literal["operator", "supervisor", "trainer"]
ROLES: tuple[Role, ...] = get_args(Role)
TOLD_SECONDS = 24 * 3600  # a refused person is told again after a day, not on every message


class Access(Scripted):
    async def seed(self, listed: dict[Role, Iterable[str]]) -> None:
        """Add the roles the settings list (revoked people listed there are let back in: the
        settings are the supervisors' own decision)."""
        for role, people in listed.items():
            ids = list(people)
            if ids:
                await self.redis.sadd(self.keys.role(role), *ids)
                await self.redis.srem(self.keys.revoked(), *ids)

    async def roles_of(self, op: str) -> set[Role]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for role in ROLES:
                pipe.sismember(self.keys.role(role), op)
            found = await pipe.execute()
        return {role for role, member in zip(ROLES, found, strict=True) if member}

    async def may_act(self, op: str) -> bool:
        """Not revoked, and listed unless the desk is open (nobody listed as an operator)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sismember(self.keys.revoked(), op)
            pipe.scard(self.keys.role("operator"))
            pipe.sismember(self.keys.role("operator"), op)
            pipe.sismember(self.keys.role("supervisor"), op)
            revoked, listed, operator, supervisor = await pipe.execute()
        return not revoked and (not listed or bool(operator) or bool(supervisor))

    async def members(self, role: Role) -> set[str]:
        return {str(m) for m in await self.redis.smembers(self.keys.role(role))}

    async def revoked(self) -> set[str]:
        return {str(m) for m in await self.redis.smembers(self.keys.revoked())}

    async def is_(self, op: str, role: Role) -> bool:
        return bool(await self.redis.sismember(self.keys.role(role), op))

    async def first_refusal(self, op: str) -> bool:
        """True once a day per person: whether to tell them they have no access."""
        return bool(await self.redis.set(self.keys.access_told(op), "1", nx=True,
                                         ex=TOLD_SECONDS))

    async def grant(self, op: str, role: Role, by: str) -> bool:
        """True when the role is new to them."""
        keys = [self.keys.role(role), self.keys.revoked(), self.keys.journal()]
        args = self._args("", op=op, role=role, by=by)
        return bool(await self.scripts["grant"](keys=keys, args=[json.dumps(args)]))

    async def revoke_and_requeue(self, service: HandoffService, op: str, by: str, reason: str,
                                 notices: RequeueNotices | None = None) -> list[Transition]:
        """Revoke, then put the person's conversations back in the queue at once (the
        customers told by `notices`); the desk and the API both revoke through this."""
        await self.revoke(op, by, reason)
        return await service.requeue_operator(op, notices=notices)

    async def revoke(self, op: str, by: str, reason: str) -> None:
        keys = [self.keys.revoked(), self.keys.operator(op), self.keys.journal(),
                *(self.keys.role(role) for role in ROLES)]
        args = self._args("", op=op, by=by, reason=reason)
        await self.scripts["revoke"](keys=keys, args=[json.dumps(args)])
        await self.redis.delete(self.keys.access_told(op))
