"""VK event (Bots Long Poll / Callback API JSON) -> channel-neutral InboundEvent.

Each event is checked on its own: a malformed one raises EventRejected and is skipped, the rest
of its batch goes on. Only private dialogues with users are customers; chats and the
community's own messages are ignored. Button presses come two ways: a callback button sends
`message_event` (answered with messages.sendMessageEventAnswer), a text button sends
`message_new` with the button's payload; both become a `button` event with the signed data.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from handoff.events import InboundEvent, MediaFile, Profile

log = logging.getLogger(__name__)

CHAT_PEERS = 2_000_000_000  # peer ids from here up are group chats
PAYLOAD_KEY = "b"  # our buttons' payload: {"b": "<signed callback data>"}


class EventRejected(ValueError):
    """The event is malformed; the message says why."""


def parse_event(raw: Any, group_id: int) -> InboundEvent | None:
    """The event, or None when it is valid but not ours to handle (chats, other types)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise EventRejected("no event type")
    kind, obj = raw["type"], raw.get("object")
    if not isinstance(obj, dict):
        raise EventRejected(f"{kind}: no object")
    if raw.get("group_id") not in (None, group_id):
        raise EventRejected(f"{kind}: for group {raw.get('group_id')}, not {group_id}")
    try:
        if kind == "message_new":
            return _message(obj, _event_id(raw, group_id, obj))
        if kind == "message_event":
            return _button_press(obj, _event_id(raw, group_id, obj))
        if kind == "message_edit":  # the object is the edited message itself
            return _edit(obj, _event_id(raw, group_id, obj))
        if kind.startswith(("wall_reply_", "board_post_")):  # the wall's and the board's comments
            from bots.vk.wall_events import wall_event

            return wall_event(kind, obj, _event_id(raw, group_id, obj))
        if kind == "message_deny":
            user = int(obj["user_id"])
            return InboundEvent(event_id=_event_id(raw, group_id, obj),
                                conversation=f"vk:{user}", kind="blocked",
                                profile=Profile(str(user)), chat_id=user,
                                received_at=time.time())
    except (KeyError, TypeError, ValueError) as exc:
        raise EventRejected(f"{kind}: malformed ({type(exc).__name__}: {exc})") from None
    log.debug("vk event %s ignored", kind)
    return None


def button_actions(raw: Any) -> list[str] | None:
    """What buttons the customer's app can show (client_info), None if the event does not say."""
    obj = raw.get("object") if isinstance(raw, dict) else None
    info = obj.get("client_info") if isinstance(obj, dict) else None
    actions = info.get("button_actions") if isinstance(info, dict) else None
    return [str(a) for a in actions] if isinstance(actions, list) else None


def _event_id(raw: dict[str, Any], group_id: int, obj: dict[str, Any]) -> str:
    """VK's event_id ("pass twice or more: ignore it"); old API versions lack it."""
    if raw.get("event_id"):
        return f"vk:{group_id}:{raw['event_id']}"
    message = obj["message"] if isinstance(obj.get("message"), dict) else obj
    return f"vk:{group_id}:{raw['type']}:{message.get('peer_id')}:{message.get('id')}"


def _edit(message: dict[str, Any], event_id: str) -> InboundEvent | None:
    """A customer's edit of a message (the community's own edits, `out` 1, are not ours)."""
    peer, sender = int(message["peer_id"]), int(message["from_id"])
    if peer >= CHAT_PEERS or sender <= 0 or message.get("out"):
        return None
    return InboundEvent(event_id=event_id, conversation=f"vk:{peer}", kind="edit",
                        profile=Profile(str(sender)), text=str(message.get("text") or ""),
                        message_id=int(message.get("id") or 0), chat_id=peer,
                        received_at=time.time())


def _message(obj: dict[str, Any], event_id: str) -> InboundEvent | None:
    message = obj["message"]
    peer, sender = int(message["peer_id"]), int(message["from_id"])
    if peer >= CHAT_PEERS or sender <= 0:
        log.debug("vk message in chat %d / from %d ignored", peer, sender)
        return None
    text = str(message.get("text") or "")
    common: dict[str, Any] = {
        "event_id": event_id, "conversation": f"vk:{peer}", "profile": Profile(str(sender)),
        "message_id": int(message.get("id") or message.get("conversation_message_id") or 0),
        "chat_id": peer, "received_at": time.time(),
    }
    payload = _payload(message.get("payload"))
    if payload.get("command") == "start":  # the "Start" button of a new dialogue
        return InboundEvent(kind="command", text="/start", **common)
    if isinstance(payload.get(PAYLOAD_KEY), str):  # a text button of ours
        return InboundEvent(kind="button", text=text, payload=payload[PAYLOAD_KEY], **common)
    files = tuple(_files(message.get("attachments") or []))
    attachments = message.get("attachments") or []
    if attachments:
        first = attachments[0].get("type", "other") if isinstance(attachments[0], dict) else ""
        return InboundEvent(kind="media", media=_MEDIA.get(first, first or "other"), text=text,
                            files=files, **common)
    if text.startswith("/"):
        return InboundEvent(kind="command", text=text, **common)
    return InboundEvent(kind="text", text=text, **common)


def _button_press(obj: dict[str, Any], event_id: str) -> InboundEvent:
    user, peer = int(obj["user_id"]), int(obj["peer_id"])
    payload = _payload(obj.get("payload"))
    return InboundEvent(
        event_id=event_id, conversation=f"vk:{peer}", kind="button", profile=Profile(str(user)),
        payload=str(payload.get(PAYLOAD_KEY, "")), callback_id=str(obj["event_id"]),
        message_id=int(obj.get("conversation_message_id") or 0), chat_id=peer,
        received_at=time.time(),
    )


_MEDIA = {"doc": "document", "audio_message": "voice", "wall": "post"}


def _payload(raw: Any) -> dict[str, Any]:
    """A payload arrives as a JSON string (message_new) or an object (message_event)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _files(attachments: list[Any]) -> list[MediaFile]:
    """Photos (their largest size) and documents: what the desk can show from a URL."""
    files = []
    for item in attachments:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "photo":
            sizes = item.get("photo", {}).get("sizes") or []
            best = max(sizes, key=lambda s: s.get("width", 0) * s.get("height", 0), default=None)
            if best and best.get("url"):
                files.append(MediaFile("photo", url=str(best["url"])))
        elif item.get("type") == "doc" and item.get("doc", {}).get("url"):
            doc = item["doc"]
            files.append(MediaFile("document", url=str(doc["url"]),
                                   name=str(doc.get("title") or "file")))
    return files
