"""Message rules in the customer's turn: what fires goes into the turn's Decision, so the
worker commits it atomically with the turn (commit_turn.lua's `rules`: tags, priority, desk,
the journal entries and the day's counts); a template is one more reply of the turn. On a VK
wall or board comment (channel vk-wall) a template is a public comment instead, replying to the
triggering one (the wall sender's `reply` action, by `rule:<name>`): the bot itself never answers
comments, only a rule that says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bots.rules.matcher import Facts, fired
from bots.rules.model import PRIORITIES, RuleSet
from handoff.conversations import Conversation, Handoff
from handoff.events import InboundEvent, OutboundMessage

WALL = "vk-wall"  # bots/vk/wall_events.py CHANNEL


def rule_args(ruleset: RuleSet, conv: Conversation, event: InboundEvent, intent: str,
              now: float, handoff: Handoff | None, say: Callable[[str], None],
              outbox: list[OutboundMessage]) -> tuple[dict[str, Any] | None, Handoff | None]:
    """The commit's `rules` argument (None: nothing fired) and the turn's handoff with the
    rules' tags and priority; templates are said through `say`, a VK wall comment to hide
    goes to `outbox` (the wall sender deletes it, bots/vk/wall_sender.py)."""
    if not ruleset.message_rules:
        return None, handoff
    facts = Facts(
        conv=conv.id, at=datetime.fromtimestamp(now, UTC),
        text=event.text if event.kind in ("text", "command") else "", intent=intent,
        tags=conv.tags, language=event.profile.language_code,
        channel=event.conversation.split(":", 1)[0])
    rules = fired(ruleset, facts)
    if not rules:
        return None, handoff
    tags: list[str] = []
    priority, desk = "", ""
    for rule in rules:
        tags += [tag for tag in rule.do.tags if tag not in tags]
        priority = rule.do.priority or priority
        if rule.do.desk_chat is not None and not desk:
            desk = str(rule.do.desk_chat)
        if rule.do.template_text and event.channel == WALL and event.message_id:
            outbox.append(wall_action(conv.id, {"do": "reply", "comment": event.message_id,
                                                "text": rule.do.template_text}, rule.name, now))
        elif rule.do.template_text:
            say(rule.do.template_text)
        if rule.do.hide_comment and event.channel == WALL and event.message_id:
            outbox.append(hidden(conv.id, event.message_id, rule.name, now))
    if handoff is not None:
        handoff = replace(handoff, priority=priority or handoff.priority,
                          tags=tuple(dict.fromkeys((*handoff.tags, *tags))))
    band = len(PRIORITIES) - 1 - PRIORITIES.index(priority) if priority else 0
    args = {
        "fired": [{"name": rule.name, "did": "; ".join(rule.do.describe())} for rule in rules],
        "tags": ",".join(tags), "priority": priority, "band": band, "desk": desk,
        "return_to_bot": next((rule.name for rule in rules if rule.do.return_to_bot), ""),
    }
    return args, handoff


def hidden(conv: str, comment: int, rule: str, now: float) -> OutboundMessage:
    """The wall sender's delete action (as the desk's /hide sends it), by the rule."""
    return wall_action(conv, {"do": "delete", "comment": comment}, rule, now)


def wall_action(conv: str, action: dict[str, Any], rule: str, now: float) -> OutboundMessage:
    return OutboundMessage(conversation=conv, kind="wall", created_at=now,
                           text=json.dumps(action, ensure_ascii=False), operator=f"rule:{rule}")


def answered_publicly(outbox: list[OutboundMessage]) -> bool:
    """Whether a rule answers a wall comment in public in this turn."""
    return any(m.kind == "wall" and m.operator.startswith("rule:")
               and json.loads(m.text).get("do") == "reply" for m in outbox)
