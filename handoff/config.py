"""Tunables of the handoff service, in one typed object that refuses nonsense at construction."""

from __future__ import annotations

from dataclasses import dataclass

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

    def __post_init__(self) -> None:
        if not 1 <= self.default_capacity <= MAX_CAPACITY:
            raise ValueError(f"default_capacity must be 1..{MAX_CAPACITY}")
        for name in ("offline_grace_seconds", "unclaimed_minutes", "reply_minutes",
                     "default_wait_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("wait_samples_max", "transcript_max", "history_max", "journal_maxlen",
                     "outbox_maxlen"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @property
    def unclaimed_seconds(self) -> float:
        return self.unclaimed_minutes * 60

    @property
    def reply_seconds(self) -> float:
        return self.reply_minutes * 60
