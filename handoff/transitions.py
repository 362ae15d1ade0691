"""The state machine's transitions, each one Lua script (see docs/handoff.md for the table).

Scripts check the state (and `expected_version` unless it is -1), write, journal and append the
caller's notices to the customer outbox in one step; a refusal changes nothing. Scripts that
touch the owner's keys get them from a read of `owner` first and answer `stale` if it changed in
between, so every key stays in KEYS[] and the script, not the read, decides.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from handoff.events import OutboundMessage
from handoff.scripted import STALE, Scripted, Transition

_STALE_RETRIES = 5
_TO_BOT = ("close", "return_to_bot", "cancel", "ban")
Attempt = Callable[[str], Awaitable[Transition]]


class Transitions(Scripted):
    async def claim(
        self, conv: str, op: str, *, notices: Sequence[OutboundMessage] = (),
        expected_version: int = -1, auto: bool = False,
    ) -> Transition:
        """queued -> assigned. Refused `taken` (owner set; also when it is already `op`'s),
        `capacity`, `offline` (with `auto`, also when merely paused), `unknown_operator`,
        `wrong_state`, `version`."""
        k = self.keys
        outbox, notices = await self._to_customer(conv, notices)
        keys = [
            k.conversation(conv), k.queue(), k.operator(op), k.operator_convs(op), k.waiting(),
            k.wait_samples(), k.journal(), outbox,
        ]
        args = self._args(conv, notices, op=op, auto=auto, expected_version=expected_version,
                          samples_max=self.config.wait_samples_max)
        return await self._run("claim", conv, keys, args)

    async def transfer(
        self, conv: str, by: str, to: str | None, *, reason: str = "", force: bool = False,
        notices: Sequence[OutboundMessage] = (), expected_version: int = -1,
    ) -> Transition:
        """assigned -> assigned to `to` (known, not offline, below capacity), or -> queued when
        `to` is None (priority and original queued_at kept). Only the owner, unless `force`."""
        k = self.keys
        outbox, routed_notices = await self._to_customer(conv, notices)

        async def attempt(owner: str) -> Transition:
            keys = [
                k.conversation(conv), k.queue(), k.waiting(), k.operator_convs(owner),
                k.journal(), outbox,
            ]
            if to is not None:
                keys += [k.operator(to), k.operator_convs(to)]
            args = self._args(conv, routed_notices, by=by, to=to or "", owner=owner,
                              force=force,
                              reason=reason, expected_version=expected_version)
            return await self._run("transfer", conv, keys, args)

        return await self._owned(conv, by, force, attempt)

    async def close(
        self, conv: str, by: str, reason: str = "", *, force: bool = False,
        notices: Sequence[OutboundMessage] = (), expected_version: int = -1,
    ) -> Transition:
        """assigned/queued -> bot with a history entry; pass the rating keyboard as a notice.
        Only the owner of an assigned conversation, unless `force` (supervisors)."""
        return await self._to_bot("close", conv, by, reason, force, notices, expected_version)

    async def return_to_bot(
        self, conv: str, by: str, reason: str = "", *, force: bool = False,
        notices: Sequence[OutboundMessage] = (), expected_version: int = -1,
    ) -> Transition:
        """assigned/queued -> bot like `close`, without counting as handled by the owner."""
        return await self._to_bot("return_to_bot", conv, by, reason, force, notices,
                                  expected_version)

    async def cancel(self, conv: str, *, notices: Sequence[OutboundMessage] = (),
                     expected_version: int = -1) -> Transition:
        """queued -> bot: the customer's /cancel while waiting."""
        return await self._to_bot("cancel", conv, "customer", "", False, notices,
                                  expected_version)

    async def ban(
        self, conv: str, by: str, reason: str = "", *, force: bool = False,
        notices: Sequence[OutboundMessage] = (), expected_version: int = -1,
    ) -> Transition:
        """any -> bot with `banned`: the worker records the customer's messages, nothing else."""
        return await self._to_bot("ban", conv, by, reason, force, notices, expected_version)

    async def unban(
        self, conv: str, by: str, reason: str = "", *, notices: Sequence[OutboundMessage] = (),
        expected_version: int = -1,
    ) -> Transition:
        outbox, notices = await self._to_customer(conv, notices)
        keys = [self.keys.conversation(conv), self.keys.journal(), outbox]
        args = self._args(conv, notices, by=by, reason=reason, expected_version=expected_version)
        return await self._run("unban", conv, keys, args)

    async def reply(self, conv: str, op: str, text: str, *, expected_version: int = -1
                    ) -> Transition:
        """The owner's message to the customer (outbox + transcript); `message_id` is its id."""
        if not text.strip():
            raise ValueError("an empty reply")
        k = self.keys
        outbox, (message,) = await self._to_customer(
            conv, [OutboundMessage(conversation=conv, text=text, operator=op)])
        args = self._args(conv, op=op, message=message.to_json(), message_id=message.id,
                          expected_version=expected_version,
                          transcript_max=self.config.transcript_max)
        entry = {"at": args["now"], "dir": "out", "text": text, "operator": op}
        args["entry"] = json.dumps(entry, ensure_ascii=False)
        keys = [k.conversation(conv), k.transcript(conv), k.waiting(), k.journal(), outbox]
        result = await self._run("reply", conv, keys, args)
        return replace(result, message_id=result.detail) if result.ok else result

    async def _to_bot(
        self, action: str, conv: str, by: str, reason: str, force: bool,
        notices: Sequence[OutboundMessage], expected_version: int,
    ) -> Transition:
        assert action in _TO_BOT
        k = self.keys
        outbox, notices = await self._to_customer(conv, notices)

        async def attempt(owner: str) -> Transition:
            # With no owner the two operator keys are placeholders the script never touches.
            keys = [
                k.conversation(conv), k.queue(), k.waiting(), k.operator_convs(owner),
                k.operator_stats(owner), k.history(conv), k.journal(), outbox,
            ]
            args = self._args(conv, notices, action=action, by=by, owner=owner, force=force,
                              reason=reason, expected_version=expected_version,
                              history_max=self.config.history_max)
            return await self._run("close", conv, keys, args)

        return await self._owned(conv, by, force, attempt)

    async def _owned(
        self, conv: str, by: str, force: bool, attempt: Attempt
    ) -> Transition:
        """Run `attempt(owner)` with the owner's keys. Without `force` the owner must be `by`, so
        no read is needed; otherwise read the owner and retry if it changed before the script."""
        owner = by if not force else await self._owner(conv)
        for _ in range(_STALE_RETRIES):
            result = await attempt(owner)
            if result.error != STALE:
                return result
            owner = result.owner
        raise RuntimeError(f"{conv}: the owner kept changing during the transition")

    async def _owner(self, conv: str) -> str:
        owner = await self.redis.hget(self.keys.conversation(conv), "owner")
        return str(owner or "")
