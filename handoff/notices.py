"""Proactive notices: a supervisor's message to a segment of customers (docs/notices.md).

The one owner of the notices' Redis state. A notice is created with its recipients resolved
once (a snapshot: the preview's count is what gets sent); handoff/notice_run.py sends it, one
recipient at a time through lua/notice_send.lua, which decides each recipient exactly once.

Segments read the index of customers by their last message (Keys.customers, kept by
commit_turn.lua) and each conversation's hash: its channel is its id's prefix, its tags are
`handoff_tags`. The filters given are combined (all must hold); ids, when given, replace the
index as the starting set.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from handoff.audit import parse_moment
from handoff.keys import Keys

OUTCOMES = ("sent", "opted_out", "unreachable", "banned", "missing")
MAX_TEXT = 3800  # under Telegram's 4,096 characters with the opt-out line (VK allows 9,000)
STATUSES = ("ready", "sending", "done", "cancelled")
CHANNELS = ("tg", "vk", "web")
_CHUNK = 500

FOOTER = {
    "ru": "Чтобы не получать такие сообщения, отправьте /stop.",
    "en": "To stop getting messages like this one, send /stop.",
}


class NoticeError(ValueError):
    """A notice that cannot be made or run (the message says why, for a person)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Who gets a notice: every filter given must hold (none given: every customer)."""

    ids: tuple[str, ...] = ()  # conversation ids ("tg:42", "vk:7001")
    channel: str = ""  # "tg", "vk", "web"
    since: float = 0.0  # the customer wrote at or after this moment (epoch seconds)
    tag: str = ""  # a tag of the conversation's handoff (`handoff_tags`)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Segment:
        data = json.loads(raw)
        return cls(ids=tuple(data.get("ids", ())), channel=data.get("channel", ""),
                   since=float(data.get("since", 0.0)), tag=data.get("tag", ""))

    def describe(self) -> str:
        parts = []
        if self.ids:
            parts.append(f"{len(self.ids)} listed conversation(s)")
        if self.channel:
            parts.append(f"channel {self.channel}")
        if self.since:
            parts.append("wrote since " + time.strftime("%Y-%m-%d %H:%M UTC",
                                                          time.gmtime(self.since)))
        if self.tag:
            parts.append(f"tag {self.tag}")
        return ", ".join(parts) or "every customer"


@dataclass(frozen=True, slots=True)
class Preview:
    """What a notice to a segment would do, read now."""

    recipients: list[str]  # every conversation that would get it, in a stable order
    opted_out: int  # of those, skipped now (the customer sent /stop)
    unreachable: int  # of those, skipped now (blocked the bot, forbade messages, banned)
    unknown: list[str]  # listed ids with no conversation
    text: str  # the message as the customer will see it

    @property
    def count(self) -> int:
        return len(self.recipients)


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    text: str  # as sent, with the opt-out line
    segment: Segment
    created_by: str
    created_at: float
    status: str
    total: int
    counts: dict[str, int] = field(default_factory=dict)  # outcome -> recipients so far

    @property
    def decided(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in OUTCOMES)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "segment": asdict(self.segment),
                "created_by": self.created_by, "created_at": self.created_at,
                "status": self.status, "total": self.total, "decided": self.decided,
                **{outcome: self.counts.get(outcome, 0) for outcome in OUTCOMES}}


def parse_since(value: str, zone: str, now: float | None = None) -> float:
    """`7d`, `24h`, `90m` back from now, or a moment (epoch seconds, a date, an ISO time in
    the team's zone); ValueError if it is none of these."""
    units = {"d": 86400, "h": 3600, "m": 60}
    value = value.strip()
    if len(value) > 1 and value[-1] in units and value[:-1].isdigit():
        return (time.time() if now is None else now) - int(value[:-1]) * units[value[-1]]
    return parse_moment(value, zone)


def segment_of(ids: Iterable[str] = (), channel: str = "", since: str = "", tag: str = "",
               zone: str = "UTC") -> Segment:
    """A segment from what a person typed (ValueError with the reason if it is wrong)."""
    listed = tuple(dict.fromkeys(
        part.strip() for item in ids for part in item.split(",") if part.strip()))
    for conv in listed:
        if ":" not in conv:
            raise ValueError(f"{conv!r} is not a conversation id such as tg:42 or vk:7001")
    if channel and channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    return Segment(ids=listed, channel=channel, since=parse_since(since, zone) if since else 0.0,
                   tag=tag.strip())


def with_footer(text: str, language: str) -> str:
    """The notice as customers see it: the supervisor's text and how to opt out."""
    body = text.strip()
    if not body:
        raise NoticeError("the notice's text is empty")
    if len(body) > MAX_TEXT:
        raise NoticeError(f"the notice's text is {len(body)} characters; at most {MAX_TEXT}")
    return f"{body}\n\n{FOOTER.get(language, FOOTER['ru'])}"


def interleaved(convs: Sequence[str]) -> list[str]:
    """One channel's conversations after another's in turn: every platform's sender has work
    from the start, so the notice takes as long as the slowest platform's share, not the sum."""
    by_channel: dict[str, list[str]] = {}
    for conv in convs:
        by_channel.setdefault(conv.split(":", 1)[0], []).append(conv)
    queues = list(by_channel.values())
    return [queue[i] for i in range(max(map(len, queues), default=0))
            for queue in queues if i < len(queue)]


class Notices:
    def __init__(self, redis: Redis, keys: Keys, *, language: str = "ru") -> None:
        self._redis = redis
        self._keys = keys
        self.language = language

    async def preview(self, segment: Segment, text: str) -> Preview:
        shown = with_footer(text, self.language)
        convs = await self._candidates(segment)
        fields = await self._fields(convs, ("version", "handoff_tags", "notices_off",
                                            "unreachable", "banned"))
        recipients, unknown = [], []
        opted_out = unreachable = 0
        for conv, (version, tags, off, unreach, banned) in zip(convs, fields, strict=True):
            if version is None:
                unknown.append(conv)
                continue
            if segment.channel and not conv.startswith(f"{segment.channel}:"):
                continue
            if segment.tag and segment.tag not in (tags or "").split(","):
                continue
            recipients.append(conv)
            opted_out += off == "1"
            unreachable += bool(unreach) or banned == "1"
        return Preview(recipients, opted_out, unreachable,
                       unknown if segment.ids else [], shown)

    async def create(self, segment: Segment, text: str, created_by: str,
                     preview: Preview | None = None) -> Notice:
        """A notice to the segment as it is now (its recipients do not change later);
        `preview`: that segment's, when the caller has just shown it."""
        preview = preview or await self.preview(segment, text)
        if not preview.recipients:
            raise NoticeError("nobody is in this segment")
        notice_id = time.strftime("%Y%m%d", time.gmtime()) + "-" + secrets.token_hex(3)
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            for first in range(0, preview.count, _CHUNK):
                pipe.sadd(self._keys.notice_recipients(notice_id),
                          *preview.recipients[first:first + _CHUNK])
            pipe.hset(self._keys.notice(notice_id), mapping={
                "text": preview.text, "segment": segment.to_json(), "created_by": created_by,
                "created_at": now, "status": "ready", "total": preview.count})
            pipe.zadd(self._keys.notices(), {notice_id: now})
            await pipe.execute()
        return Notice(notice_id, preview.text, segment, created_by, now, "ready", preview.count)

    async def get(self, notice_id: str) -> Notice | None:
        raw = {str(k): str(v) for k, v in
               (await self._redis.hgetall(self._keys.notice(notice_id))).items()}
        if not raw:
            return None
        return Notice(
            id=notice_id, text=raw["text"], segment=Segment.from_json(raw["segment"]),
            created_by=raw.get("created_by", ""), created_at=float(raw.get("created_at", 0)),
            status=raw.get("status", "ready"), total=int(raw.get("total", 0)),
            counts={outcome: int(raw.get(outcome, 0)) for outcome in OUTCOMES})

    async def latest(self, limit: int = 20) -> list[Notice]:
        ids = await self._redis.zrevrange(self._keys.notices(), 0, limit - 1)
        found = [await self.get(str(notice_id)) for notice_id in ids]
        return [notice for notice in found if notice is not None]

    async def set_status(self, notice_id: str, status: str) -> None:
        if status not in STATUSES:
            raise NoticeError(f"unknown status {status!r}")
        await self._redis.hset(self._keys.notice(notice_id), "status", status)

    async def undecided(self, notice_id: str, batch: int = 100) -> list[list[str]]:
        """The recipients without an outcome yet, in batches (what a resumed run sends)."""
        members = sorted(str(m) for m in await self._redis.smembers(
            self._keys.notice_recipients(notice_id)))
        left: list[str] = []
        for first in range(0, len(members), _CHUNK):
            chunk = members[first:first + _CHUNK]
            done = await self._redis.hmget(self._keys.notice_done(notice_id), chunk)
            left.extend(conv for conv, outcome in zip(chunk, done, strict=True)
                        if outcome is None)
        left = interleaved(left)
        return [left[first:first + batch] for first in range(0, len(left), batch)]

    async def outcomes(self, notice_id: str) -> dict[str, str]:
        """Conversation -> outcome, of the recipients decided so far."""
        raw = await self._redis.hgetall(self._keys.notice_done(notice_id))
        return {str(conv): str(outcome) for conv, outcome in raw.items()}

    async def undelivered(self, notice_id: str) -> list[str]:
        """Recipients it was sent to whose platform refused it (the sender marked them
        unreachable: blocked the bot, forbade the community's messages, deleted)."""
        sent = [conv for conv, outcome in (await self.outcomes(notice_id)).items()
                if outcome == "sent"]
        rows = await self._fields(sent, ("unreachable",))
        return [conv for conv, (reason,) in zip(sent, rows, strict=True) if reason]

    async def reindex(self) -> int:
        """Adds the customers who last wrote before the index existed (it is kept from the
        version that added notices on): one pass over the conversations' keys, for an upgrade,
        never on a request's path. Their time is the conversation's last change. Returns how
        many were added."""
        head, tail = self._keys.conversation("\0").split("\0")
        added = 0
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=f"{head}*{tail}", count=1000):
            conv = str(key)[len(head):-len(tail)]
            if conv.split(":", 1)[0] in CHANNELS:
                batch.append(conv)
            if len(batch) >= _CHUNK:
                added += await self._index(batch)
                batch = []
        return added + (await self._index(batch) if batch else 0)

    async def _index(self, convs: list[str]) -> int:
        rows = await self._fields(convs, ("profile", "updated_at", "created_at"))
        found = {conv: float(updated or created or 0)
                 for conv, (profile, updated, created) in zip(convs, rows, strict=True)
                 if profile}
        return int(await self._redis.zadd(self._keys.customers(), found, nx=True) or 0) \
            if found else 0

    async def _candidates(self, segment: Segment) -> list[str]:
        if segment.ids:
            ids = list(dict.fromkeys(segment.ids))
            if not segment.since:
                return ids
            scores = await self._redis.zmscore(self._keys.customers(), ids)
            return [conv for conv, score in zip(ids, scores, strict=True)
                    if score is not None and score >= segment.since]
        low = segment.since if segment.since else "-inf"
        return [str(conv) for conv in
                await self._redis.zrangebyscore(self._keys.customers(), low, "+inf")]

    async def _fields(self, convs: Sequence[str], names: Iterable[str]
                      ) -> list[list[str | None]]:
        wanted = list(names)
        rows: list[list[str | None]] = []
        for first in range(0, len(convs), _CHUNK):
            async with self._redis.pipeline(transaction=False) as pipe:
                for conv in convs[first:first + _CHUNK]:
                    pipe.hmget(self._keys.conversation(conv), wanted)
                rows.extend(await pipe.execute())
        return rows
