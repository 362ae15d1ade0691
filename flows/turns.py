"""What goes into a turn of the engine and what comes out: channel-neutral values."""

from __future__ import annotations

from dataclasses import dataclass

from flows.model import Priority
from flows.state import DialogueState
from nlu.types import ParseResult


@dataclass(frozen=True, slots=True)
class Turn:
    """One customer event: a text with its parse, or a button payload (`/start` is `flow:start`)."""

    text: str | None = None
    parse: ParseResult | None = None
    payload: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """`payload` is `intent:NAME`, `flow:ID` or `value:TEXT`; a link button has `url` instead."""

    title: str
    payload: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    reason: str
    priority: Priority = "normal"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnResult:
    replies: tuple[Reply, ...]
    state: DialogueState
    handoff: HandoffRequest | None
    #: False when the turn went to `fallback` or `fallback_handoff` (the trainers' inbox).
    understood: bool
    intent: str | None
    confidence: float
    #: Human-readable steps taken, for `supportbot shell` and conversation-test reports.
    trace: tuple[str, ...]
