"""Parsing what operators type in the desk: commands, internal notes, replies."""

from __future__ import annotations

from dataclasses import dataclass

COMMANDS = frozenset({
    "take", "close", "bot", "transfer", "ban", "unban", "tag", "note", "t", "templates",
    "queue", "stats", "online", "offline", "pause",
})
NOTE_PREFIXES = ("!", "//")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str  # the rest of the line, stripped

    @property
    def words(self) -> list[str]:
        return self.args.split()


def parse_command(text: str) -> Command | None:
    """`/transfer@shop_bot @anna` -> Command("transfer", "@anna"); None if not a known command."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if name not in COMMANDS:
        return None
    return Command(name, rest.strip())


def is_note(text: str) -> bool:
    """Internal notes never reach the customer."""
    return text.lstrip().startswith(NOTE_PREFIXES)
