"""Reading what happened: the journal of transitions, and the dead letters (inbound events that
failed again and again), which a person can list and send back for processing.

The journal (`Keys.journal`, capped at `journal_maxlen` entries) is written by every transition
script with its actor; it is read newest first, page by page, filtered by operator (the actor,
the owner or the operator transferred to), conversation, action and time (`at`, the service's
clock), until `limit` entries match or the whole journal has been read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from handoff.events import InboundEvent
from handoff.keys import Keys, shard_of
from handoff.scripts import Scripts

log = logging.getLogger(__name__)

STREAM_ID_RE = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
PAGE = 2000
LIMIT_MAX = 10_000
COLUMNS = ("id", "at", "conversation", "action", "actor", "owner", "from", "to", "reason",
           "details")
_MAIN = {"conv", "action", "actor", "owner", "from", "to", "reason", "at"}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: str
    at: float
    conversation: str
    action: str
    actor: str
    owner: str
    from_state: str
    to_state: str
    reason: str
    details: dict[str, str] = field(default_factory=dict)  # waited, score, to_operator, …

    @classmethod
    def from_fields(cls, entry_id: str, fields: Mapping[str, str]) -> JournalEntry:
        try:
            at = float(fields.get("at", "0"))
        except ValueError:
            at = 0.0
        return cls(entry_id, at, fields.get("conv", ""), fields.get("action", ""),
                   fields.get("actor", ""), fields.get("owner", ""), fields.get("from", ""),
                   fields.get("to", ""), fields.get("reason", ""),
                   {k: v for k, v in fields.items() if k not in _MAIN})

    def row(self) -> list[str]:
        return [self.id, f"{self.at:.3f}", self.conversation, self.action, self.actor,
                self.owner, self.from_state, self.to_state, self.reason,
                json.dumps(self.details, ensure_ascii=False, sort_keys=True)]


def parse_moment(text: str, zone: str) -> float:
    """Epoch seconds from `1765000000`, `2026-12-06T09:30:00+03:00`, `2026-12-06T09:30` or
    `2026-12-06` (the last two in the time zone `zone`); ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.timestamp()


def moments(since: str | None, until: str | None, zone: str) -> dict[str, float]:
    """`since`/`until` as epoch seconds, for a query's keyword arguments (ValueError if bad):
    the journal and the records take the same time range, from the CLI and the API."""
    return {name: parse_moment(value, zone)
            for name, value in (("since", since), ("until", until)) if value}


@dataclass(frozen=True, slots=True)
class JournalQuery:
    operator: str | None = None
    conversation: str | None = None
    action: str | None = None
    since: float | None = None  # epoch seconds, included
    until: float | None = None  # excluded
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= LIMIT_MAX:
            raise ValueError(f"limit must be 1..{LIMIT_MAX}")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")

    def matches(self, entry: JournalEntry) -> bool:
        if self.conversation and entry.conversation != self.conversation:
            return False
        if self.action and entry.action != self.action:
            return False
        if self.operator and self.operator not in (
                entry.actor, entry.owner, entry.details.get("to_operator")):
            return False
        if self.since is not None and entry.at < self.since:
            return False
        return self.until is None or entry.at < self.until


async def read_journal(redis: Redis, keys: Keys, query: JournalQuery) -> list[JournalEntry]:
    """Matching entries, newest first."""
    found: list[JournalEntry] = []
    upper = "+"
    while len(found) < query.limit:
        page: Any = await redis.xrevrange(keys.journal(), max=upper, min="-", count=PAGE)
        for raw_id, fields in page:
            entry = JournalEntry.from_fields(_text(raw_id), {
                _text(k): _text(v) for k, v in fields.items()})
            if query.since is not None and entry.at < query.since - 3600:
                return found  # well past the period: older entries are older still
            if query.matches(entry):
                found.append(entry)
                if len(found) == query.limit:
                    break
        if len(page) < PAGE:
            break
        upper = f"({_text(page[-1][0])}"
    return found


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    stream: str
    entry: str
    error: str
    conversation: str
    event: str  # the InboundEvent as JSON


class DeadLetters:
    """The inbound events that failed `max_failures` times (bots/worker.py puts them here)."""

    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts, shards: int,
                 maxlen: int = 100_000, journal_maxlen: int = 100_000) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._shards = shards
        self._maxlen = maxlen
        self._journal_maxlen = journal_maxlen

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        raw: Any = await self._redis.xrevrange(self._keys.dead_letters(), count=limit)
        return [_letter(_text(entry_id), fields) for entry_id, fields in raw]

    async def requeue(self, letter_id: str, actor: str, now: float) -> str | None:
        """Send a dead letter's event back to its shard to be processed again, and take it off
        the list, in one step (journaled with `actor`); the new entry id, or None when there is
        no such letter or its event cannot be read."""
        raw: Any = await self._redis.xrange(self._keys.dead_letters(), min=letter_id,
                                            max=letter_id)
        if not raw:
            return None
        letter = _letter(letter_id, raw[0][1])
        try:
            event = InboundEvent.from_json(letter.event)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dead letter %s: its event is unreadable (%s); left on the list",
                        letter_id, exc)
            return None
        shard = shard_of(event.conversation, self._shards)
        result = await self._scripts["requeue_dead_letter"](
            keys=[self._keys.dead_letters(), self._keys.inbound_stream(shard),
                  self._keys.journal()],
            args=[letter_id, letter.event, self._maxlen, event.conversation, actor, repr(now),
                  self._journal_maxlen])
        return _text(result) if result else None


def _letter(entry_id: str, fields: Mapping[Any, Any]) -> DeadLetter:
    text = {_text(k): _text(v) for k, v in fields.items()}
    conversation = ""
    with contextlib.suppress(ValueError, AttributeError):
        conversation = str(json.loads(text.get("event", "")).get("conversation", ""))
    return DeadLetter(entry_id, text.get("stream", ""), text.get("entry", ""),
                      text.get("error", ""), conversation, text.get("event", ""))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
