"""Desk commands for VK wall comment threads (`vk-wall:` topics, bots/vk/wall.py).

    /dm [#id] [текст]          the author gets a private message (a prepared one without
                               text), and a short public reply says so («В личку» on the card)
    /hide, /delete [id]        the comment is deleted (the thread's last one, or the given id)
    /ban [#id] [дни] [причина] the author is banned from the community («Бан автора»)

The author is the one of the thread's last comment, or of comment `#id` (a post's thread has
many authors: name the comment to act on someone else).

An operator's plain text in the topic is the public answer (bots/desk/turns.py relays it).
Each becomes a `wall` outbox item for bots/vk/wall_sender.py, committed only while the
operator owns the conversation; the sender journals it with the operator and tells the topic
how it went. Deleting and banning need VK_ADMIN_TOKEN: without it they are refused here
(a board topic's comment is deleted with the community token: /ban needs it there, and so
does the public answer, board.createComment, which the sender refuses without it).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from bots.desk.commands import Command
from bots.vk.wall import MISSING_ADMIN, RIGHTS, is_wall
from bots.vk.wall_events import is_topic
from handoff.conversations import Conversation
from handoff.events import InboundEvent, OutboundMessage

if TYPE_CHECKING:
    from bots.desk.turns import DeskDecision

DM_TEXT = ("Здравствуйте! Это поддержка сообщества. Вы оставили комментарий у нас на стене — "
           "давайте разберёмся здесь, в личных сообщениях. Расскажите, пожалуйста, подробнее.")
BAN_DAYS = 7  # a ban without a term (the card's button)
MAX_BAN_DAYS = 365  # groups.ban: end_date at most a year ahead
# groups.ban `reason`: 0 other, 1 spam, 2 verbal abuse, 3 strong language, 4 irrelevant messages
BAN_REASONS = (("спам", 1), ("реклам", 1), ("оскорб", 2), ("травл", 2), ("мат", 3),
               ("брань", 3), ("оффтоп", 4), ("офтоп", 4), ("не по теме", 4))


def wall_command(conv: Conversation, event: InboundEvent, command: Command,
                 decision: DeskDecision, owner_name: str) -> None:
    if not is_wall(conv.id):
        _say(conv, decision, f"/{command.name} работает в топиках комментариев ВКонтакте.",
             refusal=True)
        return
    if conv.state != "assigned":
        _say(conv, decision, "Сначала возьмите разговор («Взять» или /take).", refusal=True)
        return
    if conv.owner != event.actor:
        _say(conv, decision, f"Разговор ведёт {owner_name or 'другой оператор'}.", refusal=True)
        return
    admin_only = ("ban",) if is_topic(conv.id) else ("hide", "delete", "ban")
    if command.name in admin_only and not RIGHTS.admin:
        _say(conv, decision, MISSING_ADMIN, refusal=True)
        return
    words = command.words
    named = int(words[0][1:]) if words and words[0][:1] == "#" and words[0][1:].isdigit() else 0
    if named:
        words = words[1:]
    if command.name == "dm":
        text = " ".join(words) if named else command.args
        text = text or DM_TEXT
        action: dict[str, object] = {"do": "dm", "text": text, "comment": named}
        decision.transcript.append(_entry(event, "out", text, "dm"))
    elif command.name in ("hide", "delete"):
        target = command.words[0] if command.words and command.words[0].isdigit() else ""
        action = {"do": "delete", "comment": int(target) if target else 0}
        decision.transcript.append(_entry(event, "system", f"удаление комментария {target}"
                                          .strip(), "delete"))
    else:
        action = {"do": "ban", "comment": named, **ban_terms(words)}
        decision.transcript.append(_entry(event, "system", f"бан автора: {command.args}"
                                          .strip(": "), "ban"))
    decision.relay_as = event.actor  # committed only while this operator owns the thread
    decision.outbox.append(OutboundMessage(
        conversation=conv.id, kind="wall", text=json.dumps(action, ensure_ascii=False),
        created_at=time.time(), operator=event.actor))


def ban_terms(words: list[str]) -> dict[str, object]:
    """`7 спам в комментариях` -> 7 days, reason 1 (spam), the words as the ban's comment;
    no number: BAN_DAYS; `0` or `навсегда`: for ever."""
    days = BAN_DAYS
    if words and words[0].isdigit():
        days, words = min(int(words[0]), MAX_BAN_DAYS), words[1:]
    elif words and words[0].lower() in ("навсегда", "forever"):
        days, words = 0, words[1:]
    note = " ".join(words)
    reason = next((code for stem, code in BAN_REASONS if stem in note.lower()), 0)
    return {"days": days, "reason": reason, "note": note}


def _entry(event: InboundEvent, direction: str, text: str, action: str) -> dict[str, object]:
    return {"at": event.received_at or time.time(), "dir": direction, "text": text,
            "operator": event.actor, "wall": action}


def _say(conv: Conversation, decision: DeskDecision, text: str, *, refusal: bool) -> None:
    decision.desk.append(OutboundMessage(conversation=conv.id, text=text, lane="desk",
                                         created_at=time.time(), refusal=refusal))
