"""The per-conversation dialogue state the engine reads and returns (never mutates)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class DialogueState:
    """Where a conversation is in its flows.

    `flow` and `step` are set only while an `ask` waits for the customer's answer (the flow
    id and the index of the ask step); `retries` counts rejected answers to that ask. `misses`
    counts consecutive turns that were not understood. Slots hold strings and outlive flows.
    `given` holds the entity values the customer's messages gave while a flow waits and that no
    `ask` has used yet ("не могу войти, мой номер 8 916…" answers the phone question two steps
    later); it is emptied when no flow waits.
    """

    flow: str | None = None
    step: int | None = None
    slots: Mapping[str, str] = field(default_factory=dict, hash=False)
    retries: int = 0
    misses: int = 0
    given: Mapping[str, str] = field(default_factory=dict, hash=False)
    version: int = STATE_VERSION

    def with_slot(self, name: str, value: str) -> DialogueState:
        """A copy with one slot set: how the runtime fills `first_name` before a turn."""
        return replace(self, slots={**self.slots, name: value})

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "flow": self.flow,
            "step": self.step,
            "slots": dict(self.slots),
            "retries": self.retries,
            "misses": self.misses,
            "given": dict(self.given),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DialogueState:
        """The state saved by `to_dict`; `ValueError` for another version or a damaged dict."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"dialogue state version {data.get('version')!r} is not supported")
        flow, step = data.get("flow"), data.get("step")
        slots = data.get("slots", {})
        retries, misses = data.get("retries", 0), data.get("misses", 0)
        given = data.get("given", {})  # absent in states saved before it existed
        valid = (
            (flow is None or isinstance(flow, str))
            and (step is None or _is_count(step))
            and (flow is None) == (step is None)
            and isinstance(slots, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in slots.items())
            and isinstance(given, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in given.items())
            and _is_count(retries)
            and _is_count(misses)
        )
        if not valid:
            raise ValueError("dialogue state is damaged: unexpected field types")
        return cls(
            flow=flow,
            step=step,
            slots=dict(slots),
            retries=retries,
            misses=misses,
            given=dict(given),
        )


def _is_count(value: object) -> bool:
    # bool is an int subclass; a `true` where a count belongs means the dict was tampered with.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
