"""Where a channel gets the bytes of a file another platform holds: an operator's photo in the
Telegram desk, sent on to a VK or web customer. Channels depend on this, not on aiogram."""

from __future__ import annotations

from typing import Protocol

from handoff.events import MediaFile


class FileSource(Protocol):
    async def fetch(self, file: MediaFile) -> bytes:
        """The file's bytes; ValueError when this source cannot reach it."""
        ...
