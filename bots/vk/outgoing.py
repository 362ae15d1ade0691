"""Building what messages.send takes: keyboards, text parts, idempotent random_ids, and
operators' Telegram files re-uploaded as VK attachments."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from bots.callbacks import CallbackSigner
from bots.delivery.files import FileSource
from bots.vk.client import VkClient
from bots.vk.updates import PAYLOAD_KEY
from handoff.events import MediaFile, OutButton

log = logging.getLogger(__name__)

TEXT_LIMIT = 9000  # messages.send `message` (PLATFORMS.md V3); longer texts go in parts
LABEL_LIMIT = 40
PER_ROW = 5
INLINE_ROWS = 6


def random_id(message_id: str, part: int = 0) -> int:
    """The same outbound message (and part) always gets the same random_id, so VK drops a
    retry of a send that did go through instead of delivering it twice."""
    digest = hashlib.sha256(f"{message_id}:{part}".encode()).digest()
    return int.from_bytes(digest[:7], "big")  # positive, well inside int64


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts of at most `limit` characters, cut at a paragraph, line or word where possible."""
    parts = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        cut = cut if cut > limit // 2 else limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*parts, rest] if rest or not parts else parts


async def keyboard(buttons: tuple[tuple[OutButton, ...], ...], signer: CallbackSigner, *,
                   callback: bool) -> str | None:
    """The flow's buttons as an inline keyboard: callback buttons (a press is a message_event
    we answer), or text buttons for apps that cannot show those. Payloads are signed."""
    if not buttons:
        return None
    rows: list[list[dict[str, Any]]] = []
    for row in buttons[:INLINE_ROWS]:
        rows.append([await _button(button, signer, callback) for button in row[:PER_ROW]])
    if len(buttons) > INLINE_ROWS or any(len(row) > PER_ROW for row in buttons):
        log.warning("vk keyboard cut to %d rows of %d buttons", INLINE_ROWS, PER_ROW)
    return json.dumps({"inline": True, "buttons": rows}, ensure_ascii=False)


async def _button(button: OutButton, signer: CallbackSigner, callback: bool) -> dict[str, Any]:
    label = button.title[:LABEL_LIMIT]
    if button.url:
        return {"action": {"type": "open_link", "link": button.url, "label": label}}
    payload = json.dumps({PAYLOAD_KEY: await signer.encode(button.payload)})
    kind = "callback" if callback else "text"
    return {"action": {"type": kind, "label": label, "payload": payload}, "color": "secondary"}


class Uploads:
    """An operator's photo or document: fetched from where the desk keeps it (`source`:
    Telegram's getFile), uploaded to VK."""

    def __init__(self, client: VkClient, source: FileSource | None) -> None:
        self._client = client
        self._source = source

    async def attachment(self, peer: int, file: MediaFile) -> str:
        content = await self._fetch(file)
        name = file.name or ("photo.jpg" if file.kind == "photo" else "file")
        if file.kind == "photo":
            server = await self._client.call("photos.getMessagesUploadServer", peer_id=peer)
            sent = await self._client.upload(server["upload_url"], "photo", name, content)
            [photo] = await self._client.call(
                "photos.saveMessagesPhoto", photo=sent["photo"], server=sent["server"],
                hash=sent["hash"])
            return _attachment("photo", photo)
        server = await self._client.call("docs.getMessagesUploadServer", type="doc",
                                         peer_id=peer)
        sent = await self._client.upload(server["upload_url"], "file", name, content)
        saved = await self._client.call("docs.save", file=sent["file"], title=name)
        return _attachment("doc", saved["doc"])

    async def _fetch(self, file: MediaFile) -> bytes:
        if file.file_id and self._source is not None:
            return await self._source.fetch(file)
        if file.url:
            return await self._client.download(file.url)
        raise ValueError(f"{file.kind} has neither a Telegram file_id nor a URL")


def _attachment(kind: str, saved: dict[str, Any]) -> str:
    key = f"_{saved['access_key']}" if saved.get("access_key") else ""
    return f"{kind}{saved['owner_id']}_{saved['id']}{key}"
