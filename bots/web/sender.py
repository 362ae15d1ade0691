"""The web channel's sender: the outbox of `web:` conversations into each visitor's chat
stream (bots/web/chat.py), where the widget's socket picks it up.

No platform stands between us and the visitor, so there is no rate limit to keep and nothing
to retry but Redis itself: a delivery is one script that adds the message to the stream unless
it was added before (a sender that died between that and acknowledging the outbox re-sends, and
the visitor still sees it once). Buttons are signed here, like Telegram's callback data, so the
widget only ever holds opaque, verifiable data. An operator's photo from the Telegram desk is
fetched through a FileSource and kept as a web file.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable

from bots.callbacks import CallbackSigner
from bots.delivery.files import FileSource
from bots.delivery.lanes import Lane, LaneSender
from bots.web.chat import ChatEntry, WebChat
from bots.web.files import FileError, WebFiles
from handoff.events import MediaFile, OutboundMessage
from handoff.lease import Lease
from handoff.outbox import OutboxItem, OutboxReader

log = logging.getLogger(__name__)


class WebSender(LaneSender):
    channel = "web"

    def __init__(self, reader: OutboxReader, chat: WebChat, signer: CallbackSigner,
                 files: WebFiles, name_of: Callable[[str], Awaitable[str]],
                 source: FileSource | None = None, *, lease: Lease | None = None) -> None:
        super().__init__(reader, lease)
        self._name_of = name_of  # an operator id -> the name the visitor sees
        self._chat = chat
        self._signer = signer
        self._files = files
        self._source = source  # Telegram's files, when operators work in a Telegram desk

    def peer(self, item: OutboxItem) -> int | None:
        if item.lane != "customer" or not item.message.peer:
            log.error("web outbox entry %s (%s lane, %s) is not for a web visitor: dropped",
                      item.entry_id, item.lane, item.message.conversation)
            return None
        return zlib.crc32(item.message.peer.encode())  # one ordered lane per visitor

    async def deliver(self, peer: int, item: OutboxItem, lane: Lane) -> list[OutboxItem]:
        message = item.message
        if message.kind == "callback_answer":
            return []  # the widget shows the press itself; nothing to answer
        if message.kind not in ("text", "copy", "edit"):
            log.error("web:%s: %s messages cannot go to a web visitor: dropped",
                      message.peer, message.kind)
            return []
        conv = message.route or message.conversation
        images = [await self._image(file) for file in message.files if file.kind == "photo"]
        entry = ChatEntry(
            sender="operator" if message.operator else "bot", text=message.text,
            buttons=await self._buttons(message), image=next((i for i in images if i), ""),
            name=await self._name_of(message.operator) if message.operator else "",
            at=message.created_at or time.time())
        await self._chat.append(conv, entry, message.id)
        return []

    async def _buttons(self, message: OutboundMessage) -> tuple[tuple[tuple[str, str], ...], ...]:
        rows = []
        for row in message.buttons:
            rows.append(tuple([(b.title, await self._signer.encode(b.payload)) for b in row
                               if not b.url]))
        return tuple(row for row in rows if row)

    async def _image(self, file: MediaFile) -> str:
        """A URL path the widget can show: a web file as it is, another platform's photo
        copied into a web file (an operator's photo from the desk)."""
        if file.url.startswith("/widget/files/"):
            return file.url
        if self._source is None:
            return ""
        try:
            return f"/widget/files/{await self._files.store(await self._source.fetch(file))}"
        except (FileError, ValueError, OSError) as exc:
            log.warning("a photo for a web visitor could not be copied: %s", exc)
            return ""
