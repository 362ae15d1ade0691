"""Bot API media methods of the fake: send* with file_id, URL or uploaded file; albums; getFile.

A file parameter may be an ``attach://<part>`` reference (what aiogram sends), a part named
like the parameter itself, an ``http(s)://`` URL (accepted as if downloaded), or a file_id the
fake issued or saw in a pushed update; any other string is answered like Telegram does:
"Bad Request: wrong file identifier/HTTP URL specified".
"""

from __future__ import annotations

import mimetypes
import secrets
from typing import Any

from fakes.telegram_methods import MessagingMethods
from fakes.telegram_state import FileRecord, public_message
from fakes.telegram_wire import UploadedFile, bad_request

_DEFAULTS: dict[str, dict[str, Any]] = {
    "photo": {"width": 1280, "height": 960},
    "document": {"file_name": "file", "mime_type": "application/octet-stream"},
    "voice": {"duration": 1, "mime_type": "audio/ogg"},
    "video": {"width": 640, "height": 360, "duration": 1, "mime_type": "video/mp4"},
    "audio": {"duration": 1, "mime_type": "audio/mpeg"},
    "animation": {"width": 320, "height": 240, "duration": 1, "mime_type": "video/mp4"},
    "sticker": {"type": "regular", "width": 512, "height": 512, "is_animated": False,
                "is_video": False},
    "video_note": {"length": 240, "duration": 1},
}  # fmt: skip
_EXT = {"photo": "jpg", "voice": "oga", "video": "mp4", "audio": "mp3", "animation": "mp4",
        "sticker": "webp", "video_note": "mp4", "document": "bin"}  # fmt: skip
_ALBUM_KINDS = ("photo", "video", "document", "audio")


def media_object(kind: str, record: FileRecord) -> Any:
    """The message field for a file: a list of PhotoSize for photos, an object otherwise."""
    obj = {**_DEFAULTS[kind], **record.as_object()}
    if kind != "photo":
        return obj
    obj = {k: obj[k] for k in ("file_id", "file_unique_id", "file_size", "width", "height")}
    thumb_id = record.file_id[:-4] + "AAtz"  # Telegram issues one file_id per size
    thumb = {"file_id": thumb_id, "file_unique_id": record.file_unique_id + "-s",
             "file_size": max(1, obj["file_size"] // 10), "width": 90, "height": 68}  # fmt: skip
    return [thumb, obj]


class MediaMethods(MessagingMethods):
    def input_file(
        self, kind: str, value: Any, files: dict[str, UploadedFile], p: dict[str, Any]
    ) -> FileRecord:
        upload: UploadedFile | None = None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request(f"there is no {kind} in the request")
        elif value is None and kind in files:
            upload = files[kind]
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            name = value.rsplit("/", 1)[-1] or "file"
            upload = UploadedFile(kind, name, mimetypes.guess_type(name)[0] or "", b"")
        elif isinstance(value, str) and value:
            return self.file(value)
        else:
            raise bad_request(f"there is no {kind} in the request")
        meta = dict(_DEFAULTS[kind])
        if kind in ("document", "audio"):
            meta["file_name"] = upload.filename
            guessed = mimetypes.guess_type(upload.filename)[0]
            meta["mime_type"] = guessed or upload.content_type or meta["mime_type"]
        settable = set(meta) | ({"title", "performer"} if kind == "audio" else set())
        for key in ("duration", "width", "height", "title", "performer"):
            if key in settable and isinstance(p.get(key), (int, str)):
                meta[key] = p[key]
        if kind == "sticker" and p.get("emoji"):
            meta["emoji"] = p["emoji"]
        return self.add_file(kind, upload.data, meta, _EXT[kind])

    def _send_media(
        self, kind: str, method: str, p: dict[str, Any], files: dict[str, UploadedFile]
    ) -> Any:
        chat, thread_id = self.target(p)
        record = self.input_file(kind, p.get(kind), files, p)
        content: dict[str, Any] = {kind: media_object(kind, record)}
        if kind not in ("sticker", "video_note"):
            content.update(self.caption_content(p))
        return public_message(self.emit(method, chat, thread_id, [content], p)[0])

    def m_sendPhoto(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("photo", "sendPhoto", p, files)

    def m_sendDocument(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("document", "sendDocument", p, files)

    def m_sendVoice(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("voice", "sendVoice", p, files)

    def m_sendVideo(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("video", "sendVideo", p, files)

    def m_sendAudio(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("audio", "sendAudio", p, files)

    def m_sendAnimation(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("animation", "sendAnimation", p, files)

    def m_sendSticker(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("sticker", "sendSticker", p, files)

    def m_sendVideoNote(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_media("video_note", "sendVideoNote", p, files)

    def m_sendMediaGroup(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat, thread_id = self.target(p)
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("media group must include 2-10 items")  # (approx.)
        kinds = {item.get("type") for item in media if isinstance(item, dict)}
        if not kinds <= set(_ALBUM_KINDS) or (len(kinds) > 1 and kinds & {"document", "audio"}):
            raise bad_request("can't use the media of the specified type in the album")
        group_id = str(secrets.randbits(60))
        contents = []
        for item in media:
            kind = item["type"]
            record = self.input_file(kind, item.get("media"), files, item)
            content = {"media_group_id": group_id, kind: media_object(kind, record)}
            content.update(self.caption_content(item))
            contents.append(content)
        no_markup = {**p, "reply_markup": None}
        messages = self.emit("sendMediaGroup", chat, thread_id, contents, no_markup)
        return [public_message(m) for m in messages]

    def m_getFile(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        record = self.file(str(p.get("file_id") or ""))
        return {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "file_size": len(record.data),
            "file_path": record.file_path,
        }

    def file_by_path(self, path: str) -> FileRecord | None:
        return next((f for f in self._files.values() if f.file_path == path), None)
