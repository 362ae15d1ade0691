"""Channel-neutral messages: what adapters put into the inbound stream and take from the outbox.

Stored as JSON with a version field (never pickle), so a newer process can refuse what it does
not understand instead of misreading it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FORMAT_VERSION = 1

# Customer kinds, then the desk's: what operators do in their group about one conversation.
InboundKind = Literal[
    "text", "command", "button", "media", "blocked",
    "desk_text", "desk_media", "desk_edit", "desk_button",
]
DESK_KINDS = frozenset({"desk_text", "desk_media", "desk_edit", "desk_button"})
# text: a message; copy: re-post a platform message (params from_chat, message_id);
# card: the desk card of a conversation (sent once, then edited); summary: the desk's queue
# summary (edited in place); edit: mirror an edited message (params message_id).
OutboundKind = Literal["text", "callback_answer", "copy", "card", "summary", "edit", "topic"]
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
    reply_text: str = ""  # desk events: that message's text or caption (/learn by reply)
    files: tuple[MediaFile, ...] = ()  # photos and documents (re-sent across platforms)

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
        return cls(**data)


@dataclass(frozen=True, slots=True)
class OutButton:
    title: str
    payload: str = ""  # flow payload; the channel signs it into callback data
    url: str = ""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    conversation: str
    kind: OutboundKind = "text"
    text: str = ""
    buttons: tuple[tuple[OutButton, ...], ...] = ()
    callback_id: str = ""
    alert: bool = False
    lane: Lane = "customer"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)  # intent, confidence, trace (for shell)
    params: dict[str, Any] = field(default_factory=dict)  # kind-specific (see OutboundKind)
    # Deliver to this conversation instead (a linked customer's other network, see
    # handoff/links.py); `conversation` stays the one the message belongs to.
    route: str = ""

    @property
    def channel(self) -> str:
        return (self.route or self.conversation).split(":", 1)[0]

    @property
    def peer(self) -> str:
        return (self.route or self.conversation).split(":", 1)[1]

    def to_json(self) -> str:
        return json.dumps({"v": FORMAT_VERSION, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> OutboundMessage:
        data = _versioned(raw)
        data["buttons"] = tuple(
            tuple(OutButton(**button) for button in row) for row in data.get("buttons", ())
        )
        return cls(**data)


def _versioned(raw: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise EventFormatError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.pop("v", None) != FORMAT_VERSION:
        raise EventFormatError("unknown event format version")
    return data
