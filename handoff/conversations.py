"""The conversation store: reads a conversation and commits a processed event atomically."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from handoff.clock import SYSTEM_CLOCK, Clock
from handoff.events import OutboundMessage, Profile
from handoff.keys import Keys
from handoff.reports import report_args
from handoff.scripts import Scripts

State = Literal["bot", "queued", "assigned"]
PRIORITIES = ("low", "normal", "high", "urgent")
_SCORE_BAND = 10**13  # priority bands above millisecond timestamps (~1.8e12)
#: What an inbox entry keeps of a not-understood message's transcript entry.
INBOX_FIELDS = ("text", "at", "miss", "intent", "confidence", "guesses")


def utc_day(now: float) -> str:
    """The UTC date the daily counters file a moment under: "2026-12-01"."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    state: State = "bot"
    version: int = 0
    dialogue: dict[str, Any] = field(default_factory=dict)
    profile: Profile | None = None
    last_event: str = ""
    unreachable: str = ""
    handoffs: int = 0
    owner: str = ""
    banned: bool = False
    priority: str = "normal"
    comment_pending: bool = False  # the customer rated and may now add a comment
    # Linked accounts (handoff/links.py): `linked` is the other network's conversation that
    # leads here, `route` where the customer wrote from last (replies go there), `via` the
    # conversation this was loaded for (the other network's when the customer wrote there).
    linked: str = ""
    route: str = ""
    via: str = ""
    tags: frozenset[str] = frozenset()  # the handoff's tags (automation rules match them)

    @property
    def reply_to(self) -> str:
        """Where messages to the customer go: the network they wrote from last."""
        return self.route or self.id

    @classmethod
    def from_hash(cls, conv: str, raw: dict[str, str]) -> Conversation:
        profile = json.loads(raw["profile"]) if raw.get("profile") else None
        return cls(
            id=conv,
            state=raw.get("state", "bot"),  # type: ignore[arg-type]
            version=int(raw.get("version", 0)),
            dialogue=json.loads(raw["dialogue"]) if raw.get("dialogue") else {},
            profile=Profile(**profile) if profile else None,
            last_event=raw.get("last_event", ""),
            unreachable=raw.get("unreachable", ""),
            handoffs=int(raw.get("handoffs", 0)),
            owner=raw.get("owner", ""),
            banned=raw.get("banned") == "1",
            priority=raw.get("handoff_priority", "normal"),
            comment_pending=raw.get("comment_pending") == "1",
            linked=raw.get("linked", ""), route=raw.get("route", ""), via=conv,
            tags=frozenset(t for t in raw.get("handoff_tags", "").split(",") if t),
        )


def channel_of(conv: str) -> str:
    channel, sep, peer = conv.partition(":")
    if not (channel and sep and peer):
        raise ValueError(f"conversation id {conv!r} is not channel:peer")
    return channel


async def addressed(redis: Redis, keys: Keys, conv: str, messages: Sequence[OutboundMessage]
                    ) -> tuple[str, list[OutboundMessage]]:
    """The customer outbox for `messages` and the messages addressed to the network a linked
    customer wrote from last (`route`, see handoff/links.py). Reads only when there is
    something to send, so a transition without notices costs no extra round trip."""
    if not messages:
        return keys.outbox(channel_of(conv), "customer"), []
    route = await redis.hget(keys.conversation(conv), "route")
    target = str(route) if route else conv
    return (keys.outbox(channel_of(target), "customer"),
            [routed(message, conv, target) for message in messages])


def routed(message: OutboundMessage, conv: str, target: str) -> OutboundMessage:
    """The message filed under the conversation, delivered to `target` (a linked account's
    other network) when that is not the conversation itself."""
    if message.conversation == conv and target == conv:
        return message
    return dataclasses.replace(message, conversation=conv, route="" if target == conv else target)


def desk_priority(priority: str, offset: int = 0) -> int:
    """Order of desk items: urgent conversations' items first; `offset` orders kinds within."""
    rank = PRIORITIES.index(priority) if priority in PRIORITIES else 1
    return (len(PRIORITIES) - 1 - rank) * 10 + offset


@dataclass(frozen=True, slots=True)
class Handoff:
    reason: str
    priority: str = "normal"
    tags: tuple[str, ...] = ()
    notice: OutboundMessage | None = None  # its text may hold "{position}"

    def score(self, now: float) -> float:
        """Lower first: urgent before high before normal before low, then oldest first."""
        rank = PRIORITIES.index(self.priority) if self.priority in PRIORITIES else 1
        return (len(PRIORITIES) - 1 - rank) * _SCORE_BAND + int(now * 1000)


@dataclass(frozen=True, slots=True)
class CommitResult:
    status: str  # "ok" | "duplicate" | "conflict"
    version: int
    state: str
    queue_position: int


@dataclass(frozen=True, slots=True)
class Limits:
    transcript_max: int = 200
    outbox_maxlen: int = 100_000
    journal_maxlen: int = 100_000
    inbox_maxlen: int = 10_000  # the trainers' inbox of messages the bot did not understand
    stats_days: int = 400  # how long the daily bot counters are kept


class ConversationStore:
    def __init__(
        self, redis: Redis, keys: Keys, scripts: Scripts, limits: Limits,
        desk_channel: str = "tg", clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock  # state timestamps (queued_at, waiting since) follow the service's
        self._desk_channel = desk_channel  # the platform the operators' desk lives on
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._limits = limits

    async def load(self, conv: str) -> Conversation:
        """The conversation; for a linked account's other network, the one it leads to."""
        raw: dict[str, str] = await self._redis.hgetall(self._keys.conversation(conv))  # type: ignore[assignment]
        home = raw.get("linked_to")
        if not home:
            return Conversation.from_hash(conv, raw)
        raw = await self._redis.hgetall(self._keys.conversation(home))  # type: ignore[assignment]
        return dataclasses.replace(Conversation.from_hash(home, raw), via=conv)

    async def snapshot(
        self, conv: str, last: int = 20
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """The raw hash and the last transcript entries in one round trip (for desk cards)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.conversation(conv))
            pipe.lrange(self._keys.transcript(conv), -last, -1)
            fields, entries = await pipe.execute()
        return fields, [json.loads(entry) for entry in entries]

    async def transcript(self, conv: str, last: int = 50) -> list[dict[str, Any]]:
        entries = await self._redis.lrange(self._keys.transcript(conv), -last, -1)
        return [json.loads(entry) for entry in entries]

    async def full_transcript(self, conv: str) -> list[dict[str, Any]]:
        """Everything the conversation said, oldest first: the archive, then the transcript
        (read in one round trip, so an entry moving between them is not seen twice)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrange(self._keys.transcript_archive(conv), 0, -1)
            pipe.lrange(self._keys.transcript(conv), 0, -1)
            archived, recent = await pipe.execute()
        return [json.loads(entry) for entry in (*archived, *recent)]

    async def commit(
        self, conv: Conversation, *, shard_stream: str, group: str, entry: str,
        dialogue: dict[str, Any] | None = None, profile: Profile | None = None,
        transcript: Sequence[dict[str, Any]] = (), outbox: Sequence[OutboundMessage] = (),
        desk: Sequence[OutboundMessage] = (), handoff: Handoff | None = None,
        clear_unreachable: bool = False, unreachable: str = "", any_state: bool = False,
        owner: str = "", customer_waiting: bool = False, operator_reply: bool = False,
        flag: str = "", unflag: str = "", rules: dict[str, Any] | None = None,
    ) -> CommitResult:
        """Commit one processed event (see commit_turn.lua).

        `any_state` skips the state and version check (desk bookkeeping that follows a
        transition made by its own script); `owner` requires that operator to own it.
        """
        now = self._clock.now()
        # A commit carrying the customer's profile is the customer speaking: replies go back
        # where they wrote from, and that network becomes the route of a linked account.
        target = (conv.via or conv.id) if profile is not None else conv.reply_to
        outbox = [routed(message, conv.id, target) for message in outbox]
        channel = target.split(":", 1)[0]
        args: dict[str, Any] = {
            "conv": conv.id, "group": group, "entry": entry,
            "version": -1 if any_state else conv.version,
            "state": "*" if any_state else conv.state, "now": now,
            "transcript": [json.dumps(item, ensure_ascii=False) for item in transcript],
            "transcript_max": self._limits.transcript_max,
            "outbox": [message.to_json() for message in outbox],
            "desk": [message.to_json() for message in desk],
            "customer_waiting": customer_waiting, "operator_reply": operator_reply,
            "outbox_maxlen": self._limits.outbox_maxlen,
            "journal_maxlen": self._limits.journal_maxlen,
            "clear_unreachable": clear_unreachable, "report": report_args(self._keys),
            **self._trainer_args(transcript),
        }
        if unreachable:
            args["unreachable"] = unreachable
        if owner:
            args["owner"] = owner
        if flag:
            args["flag"] = flag
        if unflag:
            args["unflag"] = unflag
        if rules is not None:
            args["rules"] = rules  # automation rules that fired (bots/rules/turn.py)
        if dialogue is not None:
            args["dialogue"] = json.dumps(dialogue, ensure_ascii=False)
        if profile is not None and conv.via in ("", conv.id):
            args["profile"] = json.dumps(asdict(profile), ensure_ascii=False)
        if profile is not None and conv.linked:
            args["route"] = target
        if handoff is not None:
            args["handoff"] = {
                "reason": handoff.reason, "priority": handoff.priority,
                "tags": ",".join(handoff.tags), "score": handoff.score(now),
                "notice": handoff.notice.to_json() if handoff.notice else "",
            }
        day = utc_day(now)
        keys = [
            self._keys.conversation(conv.id), self._keys.transcript(conv.id), shard_stream,
            self._keys.outbox(channel, "customer"), self._keys.journal(), self._keys.queue(),
            self._keys.outbox(self._desk_channel, "desk"), self._keys.waiting(),
            self._keys.inbox(), self._keys.stats_day(day), self._keys.stats_day_convs(day),
            self._keys.stats_day_handoffs(day), self._keys.rules_day(day),
        ]
        status, version, state, position = await self._scripts["commit_turn"](
            keys=keys, args=[json.dumps(args, ensure_ascii=False)]
        )
        return CommitResult(status, int(version), str(state), int(position))

    def _trainer_args(self, transcript: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """What the trainers learn from a bot turn, read off its inbound transcript entry: the
        turn and its intent for the daily counters, and a message the bot did not understand
        (marked `miss` by the turn) for the inbox."""
        args: dict[str, Any] = {
            "inbox": [], "inbox_maxlen": self._limits.inbox_maxlen,
            "stats_ttl": self._limits.stats_days * 86400,
        }
        for item in transcript:
            if item.get("dir") != "in" or "intent" not in item:
                continue  # only a bot turn's inbound entry carries the NLU's verdict
            miss = item.get("miss")
            args["stats"] = {"intent": item.get("intent") or "", "fallback": bool(miss)}
            if miss:
                args["inbox"].append(json.dumps(
                    {key: item[key] for key in INBOX_FIELDS if key in item}, ensure_ascii=False))
        return args

    async def mark_unreachable(self, conv: str, reason: str) -> None:
        await self._scripts["mark_unreachable"](
            keys=[self._keys.conversation(conv), self._keys.journal()],
            args=[conv, reason, time.time(), self._limits.journal_maxlen],
        )

    async def report_delivery_failure(self, conv: str, message_id: str, reason: str) -> None:
        """A message that could not be delivered is journaled, never silently lost."""
        await self._redis.xadd(
            self._keys.journal(),
            {"conv": conv, "action": "delivery_failed", "actor": "outbox", "message": message_id,
             "reason": reason[:500], "at": str(time.time())},
            maxlen=self._limits.journal_maxlen, approximate=True,
        )

    async def report_to_desk(self, conv: str, text: str) -> None:
        """A note for the operators in the conversation's topic (e.g. a failed delivery)."""
        note = OutboundMessage(conversation=conv, text=text, lane="desk", created_at=time.time())
        await self._redis.xadd(
            self._keys.outbox(self._desk_channel, "desk"), {"m": note.to_json()},
            maxlen=self._limits.outbox_maxlen, approximate=True,
        )

    async def remember_mirror(self, conv: str, desk_message: int, customer_message: int) -> None:
        key = self._keys.mirror(conv)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, str(desk_message), str(customer_message))
            pipe.expire(key, 7 * 24 * 3600)
            await pipe.execute()

    async def mirrored(self, conv: str, desk_message: int) -> int | None:
        found = await self._redis.hget(self._keys.mirror(conv), str(desk_message))
        return int(found) if found else None

    async def add_tags(self, conv: str, actor: str, tags: Sequence[str]) -> str:
        """Tags for the trainers' statistics and the card; returns them all."""
        clean = [tag.replace(",", "")[:32] for tag in tags if tag.replace(",", "")]
        if not clean:
            return ""
        joined = await self._scripts["add_tags"](
            keys=[self._keys.conversation(conv), self._keys.journal()],
            args=[conv, ",".join(clean), actor, time.time(), self._limits.journal_maxlen],
        )
        return str(joined)

    async def post_desk(self, items: Sequence[OutboundMessage]) -> None:
        """Desk bookkeeping not tied to an inbound event (SLA notes, re-queued cards)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(self._keys.outbox(self._desk_channel, "desk"), {"m": item.to_json()},
                          maxlen=self._limits.outbox_maxlen, approximate=True)
            await pipe.execute()

    async def told_positions(self, convs: Sequence[str]) -> list[int]:
        """The queue position each conversation's customer was last told (0: none yet)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hget(self._keys.conversation(conv), "told_position")
            told = await pipe.execute()
        return [int(value) if value else 0 for value in told]

    async def set_told_positions(self, positions: dict[str, int]) -> None:
        if not positions:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv, position in positions.items():
                pipe.hset(self._keys.conversation(conv), "told_position", position)
            await pipe.execute()

    async def tell_position(self, conv: str, position: int, text: str) -> bool:
        outbox, (message,) = await addressed(
            self._redis, self._keys, conv,
            [OutboundMessage(conversation=conv, text=text, created_at=time.time())])
        told = await self._scripts["tell_position"](
            keys=[self._keys.conversation(conv), outbox],
            args=[position, message.to_json(), self._limits.outbox_maxlen],
        )
        return bool(told)

    async def profiles(self, convs: Sequence[str]) -> list[Profile | None]:
        """Several conversations' customers in one round trip (for lists such as the queue)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hget(self._keys.conversation(conv), "profile")
            raw = await pipe.execute()
        return [Profile(**json.loads(item)) if item else None for item in raw]
