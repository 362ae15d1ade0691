"""What the handoff components share: their dependencies, and how a script's reply is read.

Every transition script answers `{error, state, version, owner, detail}` with `error` empty on
success; a refusal carries the conversation as it is, so the caller can say "taken by X".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from handoff.clock import SYSTEM_CLOCK, Clock
from handoff.config import HandoffConfig
from handoff.conversations import addressed
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.reports import report_args
from handoff.scripts import Scripts

# Why a transition was refused (`Transition.error`).
TAKEN = "taken"  # someone else owns it already (`owner` says who)
CAPACITY = "capacity"  # the operator holds as many conversations as allowed
OFFLINE = "offline"  # the operator is offline (or, for auto-assignment, not online)
WRONG_STATE = "wrong_state"  # not allowed from the conversation's state
VERSION = "version"  # `expected_version` is not the current version
NOT_OWNER = "not_owner"  # assigned to someone else and the caller did not force
UNKNOWN_OPERATOR = "unknown_operator"  # never set a status, so has no capacity
SAME_OPERATOR = "same_operator"  # transfer to the current owner
NOT_DUE = "not_due"  # an SLA timer that has not run out, or already fired
STALE = "stale"  # internal: the owner changed between reading it and the script; retried


@dataclass(frozen=True, slots=True)
class Transition:
    ok: bool
    state: str
    version: int
    owner: str = ""
    error: str = ""
    detail: str = ""
    conv: str = ""
    message_id: str = ""  # reply: the id of the OutboundMessage sent

    @classmethod
    def from_reply(cls, conv: str, reply: Sequence[Any]) -> Transition:
        error, state, version, owner, detail = (_text(item) for item in reply)
        return cls(not error, state, int(version), owner, error, detail, conv)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Scripted:
    def __init__(
        self, redis: Redis, keys: Keys, scripts: Scripts, config: HandoffConfig,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = scripts
        self.config = config
        self.clock = clock

    def _args(self, conv: str, notices: Sequence[OutboundMessage] = (), **extra: Any
              ) -> dict[str, Any]:
        """The arguments every script reads: the time (as a number and as the stored text),
        retention limits, and the notices as JSON."""
        now = self.clock.now()
        return {
            "conv": conv, "now": now, "at": repr(round(now, 6)),
            "notices": [message.to_json() for message in notices],
            "journal_maxlen": self.config.journal_maxlen,
            "outbox_maxlen": self.config.outbox_maxlen, "report": report_args(self.keys),
            **extra,
        }

    async def _to_customer(self, conv: str, messages: Sequence[OutboundMessage]
                           ) -> tuple[str, list[OutboundMessage]]:
        return await addressed(self.redis, self.keys, conv, messages)

    async def _run(self, script: str, conv: str, keys: Sequence[str], args: dict[str, Any]
                   ) -> Transition:
        reply = await self.scripts[script](
            keys=list(keys), args=[json.dumps(args, ensure_ascii=False)]
        )
        return Transition.from_reply(conv, reply)

    async def _run_plain(self, script: str, keys: Sequence[str], args: dict[str, Any]) -> Any:
        """A script whose reply is not a transition."""
        return await self.scripts[script](
            keys=list(keys), args=[json.dumps(args, ensure_ascii=False)]
        )
