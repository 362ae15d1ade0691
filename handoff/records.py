"""Finished handoffs as records a supervisor can list, search and export.

A record is a closed (or returned, cancelled, banned) handoff: the customer, the operator who
owned it and who closed it, the reason and tags, the times (queued, taken, first reply, closed),
the rating and comment. close.lua writes it to the conversation's history and indexes it by
its close time (`Keys.closed_index`); a search walks the index newest first over the period,
reads each candidate's history entry, and filters by customer, operator, tag, rating and, last
because it reads transcripts, words of what was said during the handoff.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from handoff.conversations import ConversationStore
from handoff.keys import Keys

SCAN_MAX = 20_000  # index entries one search reads at most
LIMIT_MAX = 1000
COLUMNS = ("conversation", "customer", "outcome", "owner", "closed_by", "reason", "tags",
           "priority", "queued", "taken", "first_reply", "closed", "close_reason", "rating",
           "comment")


@dataclass(frozen=True, slots=True)
class Record:
    conversation: str
    customer: str  # the display name the platform gave, or the id
    outcome: str  # close, return_to_bot, cancel, ban
    owner: str
    closed_by: str
    reason: str
    tags: tuple[str, ...]
    priority: str
    queued: float | None
    taken: float | None
    first_reply: float | None
    closed: float
    close_reason: str
    rating: int | None
    comment: str

    def row(self) -> list[str]:
        values = asdict(self)
        values["tags"] = ",".join(self.tags)
        return ["" if values[c] is None else str(values[c]) for c in COLUMNS]


@dataclass(frozen=True, slots=True)
class RecordQuery:
    since: float | None = None
    until: float | None = None
    customer: str | None = None  # a conversation id, or words of the customer's name
    operator: str | None = None  # owner or closer
    tag: str | None = None
    rating: int | None = None
    text: str | None = None  # words said during the handoff, any case
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= LIMIT_MAX:
            raise ValueError(f"limit must be 1..{LIMIT_MAX}")
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise ValueError("rating is 1..5")

    def matches(self, record: Record) -> bool:
        if self.customer and self.customer != record.conversation and \
                self.customer.casefold() not in record.customer.casefold():
            return False
        if self.operator and self.operator not in (record.owner, record.closed_by):
            return False
        if self.tag and self.tag not in record.tags:
            return False
        return self.rating is None or record.rating == self.rating


class Records:
    def __init__(self, redis: Redis, keys: Keys, store: ConversationStore) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store

    async def search(self, query: RecordQuery) -> list[Record]:
        """Matching records, newest first."""
        members: Any = await self._redis.zrevrangebyscore(
            self._keys.closed_index(), "+inf" if query.until is None else f"({query.until}",
            "-inf" if query.since is None else query.since, start=0, num=SCAN_MAX)
        found: list[Record] = []
        for member in members:
            conv, _, closed = _text(member).rpartition("|")
            record = await self.record(conv, float(closed))
            if record is None or not query.matches(record):
                continue
            if query.text and not await self._said(record, query.text):
                continue
            found.append(record)
            if len(found) == query.limit:
                break
        return found

    async def record(self, conv: str, closed: float) -> Record | None:
        entries: Any = await self._redis.lrange(self._keys.history(conv), 0, -1)
        for raw in reversed(entries):
            entry = json.loads(raw)
            if abs(float(entry.get("closed") or 0) - closed) < 1e-3:
                # the customer's name only for the handoff found: a search reads many histories
                (profile,) = await self._store.profiles([conv])
                return _record(conv, profile.display_name if profile else conv, entry)
        return None  # trimmed from the history (history_max) or never there

    async def export(self, record: Record) -> dict[str, Any]:
        """The record with the transcript of its handoff (from the archive too)."""
        return {"record": asdict(record), "transcript": await self._during(record)}

    async def _during(self, record: Record) -> list[dict[str, Any]]:
        start = record.queued or record.taken or record.closed
        return [entry for entry in await self._store.full_transcript(record.conversation)
                if start - 1 <= float(entry.get("at") or 0) <= record.closed + 1]

    async def _said(self, record: Record, words: str) -> bool:
        wanted = words.casefold().split()
        for entry in await self._during(record):
            text = str(entry.get("text", "")).casefold()
            if all(word in text for word in wanted):
                return True
        return False


def _record(conv: str, customer: str, entry: dict[str, Any]) -> Record:
    def moment(name: str) -> float | None:
        value = entry.get(name)
        return float(value) if isinstance(value, int | float) else None

    rating = entry.get("rating")
    return Record(
        conversation=conv, customer=customer, outcome=str(entry.get("outcome", "")),
        owner=str(entry.get("owner", "")), closed_by=str(entry.get("closed_by", "")),
        reason=str(entry.get("reason", "")),
        tags=tuple(t for t in str(entry.get("tags", "")).split(",") if t),
        priority=str(entry.get("priority", "normal")), queued=moment("opened"),
        taken=moment("claimed"), first_reply=moment("first_response"),
        closed=float(entry.get("closed") or 0), close_reason=str(entry.get("close_reason", "")),
        rating=int(rating) if isinstance(rating, int | float) else None,
        comment=str(entry.get("comment", "")))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
