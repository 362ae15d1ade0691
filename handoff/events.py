"""Channel-neutral messages: what adapters put into the inbound stream and take from the outbox.

Stored as JSON with a version field (never pickle), so a newer process can refuse what it does
not understand instead of misreading it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

FORMAT_VERSION = 1

# Customer kinds, then the desk's: what operators do in their group about one conversation.
InboundKind = Literal[
    "text", "command", "button", "media", "blocked", "edit",
    "desk_text", "desk_media", "desk_edit", "desk_button", "desk_member",
]
# desk_member: someone left or was removed from a desk group (`text`: left or kicked)
DESK_KINDS = frozenset({"desk_text", "desk_media", "desk_edit", "desk_button", "desk_member"})
# text: a message; copy: re-post a platform message (`copy`); card: the desk card of a
# conversation (sent once, then edited); summary: the desk's queue summary (edited in place);
# edit: mirror an edited message (`edit_of`); topic: the desk topic's name and state.
# move: the conversation goes to another desk group (`text`: its chat id).
# wall: an operator's action on a VK wall comment thread (bots/desk/wall.py), JSON in `text`.
OutboundKind = Literal["text", "callback_answer", "copy", "card", "summary", "edit", "topic",
                       "move", "wall"]
Lane = Literal["customer", "desk"]


class EventFormatError(ValueError):
    """A stored event is not something this version can read."""


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    first_name: str = ""
    last_name: str = ""
    username: str = ""
    language_code: str = ""
    city: str = ""  # VK users.get, when the customer shows it

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or self.user_id


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A photo or document in a message, as far as another platform needs it to re-send it."""

    kind: str  # "photo" | "document"
    url: str = ""  # where the platform serves the file (VK attachments)
    file_id: str = ""  # the platform's own handle (Telegram file_id, fetched with getFile)
    name: str = ""


@dataclass(frozen=True, slots=True)
class InboundEvent:
    event_id: str  # platform-unique: dedup key
    conversation: str  # "tg:42", "vk:2000000001", "shell:local"
    kind: InboundKind
    profile: Profile
    text: str = ""
    payload: str = ""  # raw callback data: untrusted until verified by the worker
    callback_id: str = ""
    message_id: int = 0
    media: str = ""  # photo, document, voice, sticker, location, ...
    received_at: float = 0.0  # wall clock, seconds
    chat_id: int = 0  # the platform chat the message is in (for copying it elsewhere)
    actor: str = ""  # desk events: the operator ("tg:1001")
    album: str = ""  # media group id: parts of one album
    thread_id: int = 0  # desk events: the forum topic the message is in
    reply_to: int = 0  # desk events: the message replied to (reply-thread fallback)
    reply_text: str = ""  # desk events: that message's text or caption (/learn by reply);
    # a VK wall comment: its post's text
    files: tuple[MediaFile, ...] = ()  # photos and documents (re-sent across platforms)
    # The bot that received it when that is not the main bot: a press on a card a desk relay
    # posted reaches only that relay, and only that relay may answer it.
    via: int = 0

    @property
    def from_desk(self) -> bool:
        return self.kind in DESK_KINDS

    @property
    def channel(self) -> str:
        return self.conversation.split(":", 1)[0]

    def to_json(self) -> str:
        return json.dumps({"v": FORMAT_VERSION, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> InboundEvent:
        data = _versioned(raw)
        data["profile"] = Profile(**data["profile"])
        data["files"] = tuple(MediaFile(**item) for item in data.get("files", ()))
        return cls(**_known(cls, data))


@dataclass(frozen=True, slots=True)
class OutButton:
    title: str
    payload: str = ""  # flow payload; the channel signs it into callback data
    url: str = ""


@dataclass(frozen=True, slots=True)
class CopyOf:
    """A Telegram message to copy rather than re-type (operator -> customer, customer -> desk
    topic): it keeps its media, formatting and album."""

    from_chat: int
    message_id: int
    album: str = ""  # media group id: parts of one album go out as one


@dataclass(frozen=True, slots=True)
class BotTrace:
    """Why the bot said it: shown by the terminal shell, counted by the trainers' stats."""

    intent: str | None = None
    confidence: float = 0.0
    steps: tuple[str, ...] = ()
    received_at: float = 0.0
    handoff: bool = False


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    conversation: str
    kind: OutboundKind = "text"
    text: str = ""  # for a copy: what a channel that cannot copy Telegram messages sends
    buttons: tuple[tuple[OutButton, ...], ...] = ()
    callback_id: str = ""
    alert: bool = False
    lane: Lane = "customer"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = 0.0
    # Deliver to this conversation instead (a linked customer's other network, see
    # handoff/links.py); `conversation` stays the one the message belongs to.
    route: str = ""
    copy: CopyOf | None = None  # kind "copy"
    edit_of: int = 0  # kind "edit": the desk message whose customer copy to edit
    files: tuple[MediaFile, ...] = ()  # photos and documents re-sent by URL or file id
    operator: str = ""  # who wrote it, when an operator did
    bot: BotTrace | None = None  # when the bot said it
    # The desk lane: lower goes first; items with one `coalesce` key replace each other while
    # they wait; `mention` notifies these Telegram users; a `refusal` is a command's refusal.
    priority: int = 2
    coalesce: str = ""
    mention: tuple[int, ...] = ()
    refusal: bool = False
    # A customer's message relayed to the desk: when they wrote it. Consecutive ones waiting
    # for the group's budget are merged into one post, each line with its time.
    said_at: float = 0.0
    # A callback answer: the bot that received the press (InboundEvent.via), 0 the main bot.
    via: int = 0

    @property
    def channel(self) -> str:
        return (self.route or self.conversation).split(":", 1)[0]

    @property
    def peer(self) -> str:
        return (self.route or self.conversation).split(":", 1)[1]

    @property
    def album(self) -> str:
        return self.copy.album if self.copy else ""

    def to_json(self) -> str:
        return json.dumps({"v": FORMAT_VERSION, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> OutboundMessage:
        data = _untyped_bags(_versioned(raw))
        data["buttons"] = tuple(
            tuple(OutButton(**button) for button in row) for row in data.get("buttons", ())
        )
        if data.get("copy") is not None:
            data["copy"] = CopyOf(**data["copy"])
        if data.get("bot") is not None:
            data["bot"] = BotTrace(**{**data["bot"], "steps": tuple(data["bot"]["steps"])})
        data["files"] = tuple(MediaFile(**item) for item in data.get("files", ()))
        data["mention"] = tuple(data.get("mention", ()))
        return cls(**_known(cls, data))


def _known(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A field a newer version added is left out, not the entry: during a rolling upgrade an
    older process still handles what a newer one wrote."""
    known = {f.name for f in fields(cls)}
    return {name: value for name, value in data.items() if name in known}


def _untyped_bags(data: dict[str, Any]) -> dict[str, Any]:
    """Entries written before the fields were typed carried `params` and `meta` dicts: read
    them into the fields (an upgrade must not drop what is waiting in the outbox)."""
    params: dict[str, Any] = data.pop("params", None) or {}
    meta: dict[str, Any] = data.pop("meta", None) or {}
    if not params and not meta:
        return data
    if "from_chat" in params:
        data["copy"] = {"from_chat": params["from_chat"], "message_id": params["message_id"],
                        "album": params.get("album") or ""}
    elif "message_id" in params:
        data["edit_of"] = params["message_id"]
    data["files"] = params.get("files") or meta.get("files") or ()
    data["mention"] = params.get("mention", ())
    for name in ("priority", "coalesce", "refusal"):
        if name in params:
            data[name] = params[name]
    data["operator"] = meta.get("operator", "")
    if "intent" in meta:
        data["bot"] = {"intent": meta["intent"], "confidence": meta.get("confidence", 0.0),
                       "steps": meta.get("trace", ()), "received_at": meta.get("received_at", 0.0),
                       "handoff": meta.get("handoff", False)}
    return data


def _versioned(raw: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise EventFormatError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.pop("v", None) != FORMAT_VERSION:
        raise EventFormatError("unknown event format version")
    return data
