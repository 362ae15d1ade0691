"""What the desk shows of a conversation, read from its hash (the desk sender writes `card`,
`card_handoff`; the handoff scripts write `handoffs`)."""

from __future__ import annotations


def card_of_this_handoff(fields: dict[str, str]) -> bool:
    """The stored card was posted for the conversation's latest handoff (cards from before
    `card_handoff` existed count as such)."""
    handoff = fields.get("handoffs", "0")
    return bool(fields.get("card")) and fields.get("card_handoff", handoff) == handoff
