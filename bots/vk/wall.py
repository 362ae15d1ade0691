"""Wall comment threads (`vk-wall:<owner>_<post>`) on the bot's side and in the card.

The bot never answers a public comment by itself: a new comment on a thread the bot holds
goes straight to the operators' queue (reason "wall comment"), with no notice to anyone in
public; while operators hold it, later comments are relayed to its topic like any customer's.
Every transcript entry of a comment keeps its id and author, which the operators' public
answers reply to and /hide, /delete, /ban act on (bots/vk/wall_sender.py).

Which rights this installation has: `VK_ADMIN_TOKEN` (a community administrator's user
token) is needed for wall.deleteComment and groups.ban; the community token cannot call them
(VK error 27). The VK channel records it here at start-up (`configure`), from the settings
every process shares; the card and the desk commands say so when it is missing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bots.vk.wall_events import CHANNEL, is_topic, post_link
from handoff.conversations import Handoff
from handoff.events import InboundEvent

if TYPE_CHECKING:
    from bots.turns import Decision

REASON = "wall comment"
MISSING_ADMIN = ("⚠️ Нет прав администратора сообщества (VK_ADMIN_TOKEN): удалить комментарий "
                 "и заблокировать автора отсюда нельзя — только в самом ВКонтакте.")
MISSING_ADMIN_BAN = ("⚠️ Нет прав администратора сообщества (VK_ADMIN_TOKEN): ответить в "
                     "обсуждении и заблокировать автора отсюда нельзя — только в самом "
                     "ВКонтакте.")  # a board topic's card: board.createComment takes a user token


class _Rights:
    admin = False  # a user token of a community administrator is configured


RIGHTS = _Rights()


def configure(*, admin: bool) -> None:
    RIGHTS.admin = admin


def is_wall(conv: str) -> bool:
    return conv.startswith(f"{CHANNEL}:")


def wall_entry(event: InboundEvent, entry: dict[str, Any]) -> None:
    """A comment's transcript entry keeps its id and author (what answers and bans act on)."""
    if event.channel == CHANNEL and event.message_id:
        entry["comment"] = event.message_id
        entry["author"] = event.chat_id
        if event.reply_text:  # the post's text (bots/vk/ingress.py, with VK_ADMIN_TOKEN)
            entry["post"] = event.reply_text
        if event.reply_to:
            entry["reply_to"] = event.reply_to


def wall_turn(event: InboundEvent, decision: Decision, *, desk: bool) -> bool:
    """True when a comment on a thread the bot holds was handed to the operators: the bot
    never answers in public by itself."""
    if event.channel != CHANNEL or event.kind not in ("text", "media"):
        return False
    decision.handoff = Handoff(reason=REASON, priority="normal", tags=("стена",))
    decision.transcript.append({"at": time.time(), "dir": "system", "text": f"handoff: {REASON}"})
    if desk:
        from bots.turns import desk_bookkeeping  # bots.turns imports this module

        decision.desk.extend(desk_bookkeeping(event.conversation, "normal"))
    return True


def is_wall_handoff(handoff: Handoff | None) -> bool:
    return handoff is not None and handoff.reason == REASON


def card_lines(conv: str, transcript: list[dict[str, Any]]) -> list[str]:
    """What the card of a comment thread adds (nothing for others): the post, the author,
    the rights."""
    if not is_wall(conv):
        return []
    lines = [f"💬 Обсуждение: {post_link(conv)}" if is_topic(conv)
             else f"💬 Комментарии к посту: {post_link(conv)}"]
    post = next((e["post"] for e in reversed(transcript) if e.get("post")), "")
    if post:
        lines.append(f"📝 Пост: «{post}»")
    authors = [e.get("author") for e in transcript if e.get("dir") == "in" and e.get("author")]
    if authors:
        lines.append(f"✍️ Автор последнего комментария: https://vk.com/id{authors[-1]}")
    lines.append("Ответ в топике — публичный, от имени сообщества. /dm текст — в личку; "
                 "/hide или /delete — удалить комментарий; /ban [дни] [причина].")
    if not RIGHTS.admin:
        lines.append(MISSING_ADMIN_BAN if is_topic(conv) else MISSING_ADMIN)
    return lines
