"""Telegram as a FileSource (bots/delivery/files.py): files by their file_id, through getFile."""

from __future__ import annotations

from aiogram import Bot

from handoff.events import MediaFile


class TelegramFiles:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def fetch(self, file: MediaFile) -> bytes:
        if not file.file_id:
            raise ValueError(f"{file.kind} has no Telegram file_id")
        data = await self._bot.download(file.file_id)
        assert data is not None  # no destination given: aiogram returns the bytes
        return data.read()
