"""Tunables of the handoff service, in one typed object that refuses nonsense at construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from handoff.hours import BusinessHours

MAX_CAPACITY = 50


@dataclass(frozen=True, slots=True)
class HandoffConfig:
    default_capacity: int = 5  # parallel conversations of an operator who never set one
    offline_grace_seconds: float = 120.0  # an offline operator's chats return to the queue after
    unclaimed_minutes: float = 5.0  # queued this long without a claim: escalate (once)
    reply_minutes: float = 10.0  # customer waits this long for an operator reply: remind (once)
    default_wait_seconds: float = 180.0  # wait estimate before any claim has been measured
    wait_samples_max: int = 50  # recent waits the estimate is drawn from
    transcript_max: int = 200
    history_max: int = 100  # closed handoffs kept per conversation
    journal_maxlen: int = 100_000
    outbox_maxlen: int = 100_000
    hours: BusinessHours | None = None  # None: the team is always there
    timezone: str = "UTC"  # the team's: reports' days, and shifts written without a zone
    # A desk group's own hours (key: its chat id as text), for desks in other time zones;
    # desks not listed keep `hours`.
    desk_hours: Mapping[str, BusinessHours] = field(default_factory=dict)
    # The SLA ladder: after the first reminder (owner) or escalation, the next level
    # (supervisors), then once more (everyone), each this much business time later.
    ladder_minutes: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.default_capacity <= MAX_CAPACITY:
            raise ValueError(f"default_capacity must be 1..{MAX_CAPACITY}")
        for name in ("offline_grace_seconds", "unclaimed_minutes", "reply_minutes",
                     "default_wait_seconds", "ladder_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("wait_samples_max", "transcript_max", "history_max", "journal_maxlen",
                     "outbox_maxlen"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def hours_for(self, desk: str | None) -> BusinessHours | None:
        """The business hours of the desk group a conversation is routed to (None: not
        routed yet, or one desk): its own when set, else the team's."""
        return self.desk_hours.get(desk or "", self.hours)

    @property
    def ladder_seconds(self) -> float:
        return self.ladder_minutes * 60

    @property
    def unclaimed_seconds(self) -> float:
        return self.unclaimed_minutes * 60

    @property
    def reply_seconds(self) -> float:
        return self.reply_minutes * 60
