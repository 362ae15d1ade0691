"""VK wall comment events (`wall_reply_new`, `_edit`, `_restore`, `_delete`) -> InboundEvents,
and the discussion board's (`board_post_new`, `_edit`, `_restore`, `_delete`) the same way.

Each comment thread is a conversation of its own: `vk-wall:<owner>_<post>` (the owner is the
community, negative). A new comment is a `text` event (`media` with attachments): `message_id`
is the comment's id, `chat_id` its author, `reply_to` the comment it answers. An edit is an
`edit` of that comment; a restored comment comes back as a new one, marked; a deletion is an
`edit` to "[комментарий удалён]", so the topic and the transcript say so. The community's own
comments (our public answers coming back as events) and other communities' are not customers'.

A board topic's comments are a thread of the same channel, marked: `vk-wall:topic<owner>_<topic>`
(as VK's own link, https://vk.com/topic-77_5), so the desk, the sender and the rules have one
code path; the sender answers a topic with board.createComment instead of wall.createComment.
"""

from __future__ import annotations

import time
from typing import Any

from bots.vk.updates import EventRejected, _files
from handoff.events import InboundEvent, Profile

CHANNEL = "vk-wall"
KINDS = frozenset({"wall_reply_new", "wall_reply_edit", "wall_reply_restore",
                   "wall_reply_delete", "board_post_new", "board_post_edit",
                   "board_post_restore", "board_post_delete"})
TOPIC = "topic"  # the marker of a board topic's thread
DELETED = "[комментарий удалён]"
RESTORED = "[комментарий восстановлен]"


def thread_of(owner_id: int, post_id: int, *, topic: bool = False) -> str:
    return f"{CHANNEL}:{TOPIC if topic else ''}{owner_id}_{post_id}"


def is_topic(conv: str) -> bool:
    """A board topic's thread (`vk-wall:topic-77_5`), not a post's."""
    return conv.startswith(f"{CHANNEL}:{TOPIC}")


def post_of(conv: str) -> tuple[int, int]:
    """`vk-wall:-77_12` -> (-77, 12); a topic's `vk-wall:topic-77_5` -> (-77, 5)."""
    owner, _, post = conv.removeprefix(f"{CHANNEL}:").removeprefix(TOPIC).partition("_")
    return int(owner), int(post)


def post_link(conv: str) -> str:
    owner, post = post_of(conv)
    return f"https://vk.com/{TOPIC if is_topic(conv) else 'wall'}{owner}_{post}"


def wall_event(kind: str, obj: dict[str, Any], event_id: str) -> InboundEvent | None:
    if kind not in KINDS:
        raise EventRejected(f"{kind}: not a wall comment event")
    if kind.startswith("board_post_"):  # topic_owner_id: the community, negative
        conv = thread_of(-abs(int(obj["topic_owner_id"])), int(obj["topic_id"]), topic=True)
    else:
        conv = thread_of(int(obj.get("post_owner_id") or obj["owner_id"]), int(obj["post_id"]))
    comment = int(obj["id"])
    kind = kind.replace("board_post_", "wall_reply_")  # one code path from here on
    if kind == "wall_reply_delete":
        deleter = int(obj.get("deleter_id") or obj.get("user_id") or 0)
        return InboundEvent(event_id=event_id, conversation=conv, kind="edit",
                            profile=Profile(str(deleter)), text=DELETED, message_id=comment,
                            chat_id=deleter, received_at=time.time())
    author = int(obj["from_id"])
    if author <= 0:  # the community itself (our own answers) or another community
        return None
    text = str(obj.get("text") or "")
    common: dict[str, Any] = {
        "event_id": event_id, "conversation": conv, "profile": Profile(str(author)),
        "message_id": comment, "chat_id": author, "received_at": time.time(),
        "reply_to": int(obj.get("reply_to_comment") or 0),
    }
    if kind == "wall_reply_edit":
        return InboundEvent(kind="edit", text=text, **common)
    if kind == "wall_reply_restore":
        text = f"{RESTORED} {text}".strip()
    attachments = obj.get("attachments") or []
    if attachments:
        first = attachments[0].get("type", "other") if isinstance(attachments[0], dict) else ""
        return InboundEvent(kind="media", media=first or "other", text=text,
                            files=tuple(_files(attachments)), **common)
    return InboundEvent(kind="text", text=text, **common)
