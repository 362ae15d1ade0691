"""The trainers' inbox: messages the bot did not understand, as the turn commits filed them.

Entries live in one capped stream (`Keys.inbox`, appended by commit_turn.lua in the same
script as the turn); what a trainer made of an entry (`intent:<name>` or `dismissed`) is a hash
beside it. Reads are bounded: a time window and a count, never the whole stream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from handoff.keys import Keys

log = logging.getLogger(__name__)

READ_MAX = 10_000  # entries one read looks at, at most


@dataclass(frozen=True, slots=True)
class InboxEntry:
    id: str  # the stream entry id ("1764612345678-0"); its first part is the time in ms
    conv: str
    text: str
    at: float
    miss: str  # out_of_scope | no_flow | handoff
    guesses: tuple[tuple[str, float], ...] = ()
    done: str = ""  # "" while open; "intent:<name>" once labelled, or "dismissed"

    @property
    def top_guess(self) -> str:
        return self.guesses[0][0] if self.guesses else ""


def millis(seconds: float) -> int:
    return int(seconds * 1000)


def is_entry_id(value: str) -> bool:
    """"1764612345678-0" (or just the milliseconds): safe to pass to XRANGE."""
    head, _, tail = value.partition("-")
    return head.isdigit() and (not tail or tail.isdigit())


class Inbox:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def entries(
        self, *, since: float | None = None, until: float | None = None,
        limit: int = READ_MAX, include_done: bool = False,
    ) -> list[InboxEntry]:
        """The newest `limit` entries filed in [since, until) (seconds), oldest first."""
        top = f"({millis(until)}" if until is not None else "+"
        bottom = str(millis(since)) if since is not None else "-"
        raw: Any = await self._redis.xrevrange(self._keys.inbox(), top, bottom,
                                               count=min(limit, READ_MAX))
        found = await self._with_done([_entry(entry_id, fields) for entry_id, fields in raw])
        chosen = [entry for entry in found
                  if entry is not None and (include_done or not entry.done)]
        return chosen[::-1]

    async def get(self, ids: Sequence[str]) -> list[InboxEntry]:
        """The entries with these ids that exist (unknown or malformed ids are skipped)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(self._keys.inbox(), entry_id, entry_id, count=1)
            replies = await pipe.execute()
        found = [_entry(rows[0][0], rows[0][1]) for rows in replies if rows]
        return [entry for entry in await self._with_done(found) if entry is not None]

    async def open_of(self, conv: str, limit: int = 200) -> list[InboxEntry]:
        """A conversation's entries no trainer has handled yet (the recent `limit` looked at)."""
        recent = await self.entries(limit=limit)
        return [entry for entry in recent if entry.conv == conv]

    async def resolve(self, ids: Iterable[str], outcome: str) -> int:
        """Mark entries handled (`intent:<name>` or `dismissed`); how many were open before.

        Marks of entries the stream has trimmed away are dropped on the way, so the hash stays
        as bounded as the stream."""
        chosen = list(dict.fromkeys(ids))
        if not chosen:
            return 0
        before = await self._redis.hmget(self._keys.inbox_done(), chosen)
        await self._redis.hset(self._keys.inbox_done(), mapping=dict.fromkeys(chosen, outcome))
        await self._prune()
        return sum(1 for mark in before if not mark)

    async def _prune(self) -> None:
        first: Any = await self._redis.xrange(self._keys.inbox(), count=1)
        if not first:
            return
        oldest = _id_key(first[0][0])
        marked: Any = await self._redis.hkeys(self._keys.inbox_done())
        stale = [entry_id for entry_id in marked if _id_key(entry_id) < oldest]
        if stale:
            await self._redis.hdel(self._keys.inbox_done(), *stale)

    async def _with_done(self, entries: list[InboxEntry | None]) -> list[InboxEntry | None]:
        ids = [entry.id for entry in entries if entry is not None]
        if not ids:
            return entries
        marks = dict(zip(ids, await self._redis.hmget(self._keys.inbox_done(), ids), strict=True))
        return [entry if entry is None or not marks.get(entry.id)
                else _marked(entry, str(marks[entry.id])) for entry in entries]


def _marked(entry: InboxEntry, done: str) -> InboxEntry:
    return InboxEntry(entry.id, entry.conv, entry.text, entry.at, entry.miss, entry.guesses, done)


def _id_key(entry_id: str) -> tuple[int, int]:
    head, _, tail = entry_id.partition("-")
    return int(head), int(tail or 0)


def _entry(entry_id: str, fields: dict[str, str]) -> InboxEntry | None:
    """One stream entry; a malformed one is logged and skipped, never fatal to a listing."""
    try:
        data = json.loads(fields["e"])
        guesses = tuple((str(name), float(score)) for name, score in data.get("guesses", ()))
        return InboxEntry(entry_id, fields["conv"], str(data["text"]),
                          float(data.get("at") or _id_key(entry_id)[0] / 1000),
                          str(data.get("miss", "")), guesses)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("inbox entry %s unreadable (%r): skipped", entry_id, exc)
        return None
