"""Which desk group a conversation belongs to, when there are several (`OPERATOR_CHAT_IDS`).

One Telegram group takes about 20 bot posts a minute, whatever else is done: several desk
groups are the way past that limit that does not depend on how Telegram counts relay bots
(PLATFORMS.md, addendum A1). A conversation is routed once, by the first rule that matches
(`DESK_ROUTES`), else by a stable hash of its id, and stays in that desk until an operator
moves it (`/transfer desk <name>`).

    OPERATOR_CHAT_IDS="sales=-1001111111111, care=-1002222222222"
    DESK_ROUTES="channel:vk -> care; language:en -> care; tag:refund -> sales;
                 intent:order_status -> sales"

Rule keys: `channel` (tg, vk), `language` (the customer's, as their app reports it: "en",
"ru"), `tag` (one of the handoff's tags), `reason` (the handoff's reason) and `intent` (the
last intent the bot recognised in the conversation).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RULE_KEYS = ("channel", "language", "tag", "reason", "intent")


class RoutingError(ValueError):
    """A desk or a rule in the settings is malformed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class DeskGroup:
    name: str
    chat_id: int  # as configured (a migration to a supergroup is followed by DeskChat)


@dataclass(frozen=True, slots=True)
class Rule:
    key: str
    value: str
    desk: str


def parse_desks(text: str) -> list[DeskGroup]:
    """`sales=-100111, care=-100222` or `-100111,-100222` (named desk1, desk2, ...)."""
    desks: list[DeskGroup] = []
    for number, part in enumerate((p.strip() for p in text.split(",") if p.strip()), 1):
        name, _, chat = part.rpartition("=")
        name = name.strip() or f"desk{number}"
        chat = chat.strip()
        if not chat.lstrip("-").isdigit():
            raise RoutingError(f"desk {number} ({part!r}): the chat id must be a number such "
                               f"as -1001234567890")
        if any(d.name == name or d.chat_id == int(chat) for d in desks):
            raise RoutingError(f"desk {number} ({part!r}): its name or chat id is repeated")
        desks.append(DeskGroup(name, int(chat)))
    return desks


def parse_routes(text: str, desks: Sequence[DeskGroup]) -> list[Rule]:
    """`key:value -> desk; ...`, in order; the first rule that matches wins."""
    names = [d.name for d in desks]
    rules = []
    for number, part in enumerate((p.strip() for p in text.split(";") if p.strip()), 1):
        condition, arrow, desk = part.partition("->")
        key, colon, value = condition.strip().partition(":")
        where = f"rule {number} ({part!r})"
        if not arrow or not colon or not value.strip():
            raise RoutingError(f"{where}: write it as key:value -> desk")
        if key.strip() not in RULE_KEYS:
            raise RoutingError(f"{where}: unknown key {key.strip()!r} (one of "
                               f"{', '.join(RULE_KEYS)})")
        if desk.strip() not in names:
            raise RoutingError(f"{where}: no desk named {desk.strip()!r} (desks: "
                               f"{', '.join(names)})")
        rules.append(Rule(key.strip(), value.strip().lower(), desk.strip()))
    return rules


class DeskRouting:
    def __init__(self, desks: Sequence[DeskGroup], rules: Sequence[Rule] = ()) -> None:
        if not desks:
            raise RoutingError("no desk group configured")
        self.desks = list(desks)
        self.rules = list(rules)

    @property
    def home(self) -> DeskGroup:
        """The first desk: where desk-wide notes go (and the only one, usually)."""
        return self.desks[0]

    def find(self, name_or_id: str) -> DeskGroup | None:
        """A desk by its name or chat id, as an operator types it."""
        wanted = name_or_id.strip().lower()
        return next((d for d in self.desks
                     if d.name.lower() == wanted or str(d.chat_id) == wanted), None)

    def by_chat(self, chat_id: int) -> DeskGroup | None:
        return next((d for d in self.desks if d.chat_id == chat_id), None)

    def choose(self, conv: str, fields: dict[str, str],
               transcript: Sequence[dict[str, Any]] = ()) -> DeskGroup:
        """The desk for a conversation not routed yet: the first matching rule, else a stable
        hash of its id (the same answer in every process, after every restart)."""
        if len(self.desks) == 1:
            return self.desks[0]
        facts = _facts(conv, fields, transcript)
        for rule in self.rules:
            if rule.value in facts.get(rule.key, ()):
                found = self.find(rule.desk)
                if found is not None:
                    return found
        return self.desks[zlib.crc32(conv.encode()) % len(self.desks)]


def _facts(conv: str, fields: dict[str, str],
           transcript: Sequence[dict[str, Any]]) -> dict[str, set[str]]:
    profile: dict[str, Any] = {}
    if fields.get("profile"):
        try:
            profile = json.loads(fields["profile"])
        except ValueError:
            profile = {}
    language = str(profile.get("language_code") or "").lower()
    intents = [str(e["intent"]) for e in transcript if e.get("intent")]
    return {
        "channel": {conv.split(":", 1)[0]},
        "language": {language, language.split("-", 1)[0]} - {""},
        "tag": {t.lower() for t in fields.get("handoff_tags", "").split(",") if t},
        "reason": {fields.get("handoff_reason", "").lower()} - {""},
        "intent": {intents[-1].lower()} if intents else set(),
    }
