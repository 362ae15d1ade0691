"""Wire format of the fake Telegram Bot API: request parameters in, JSON answers out.

aiogram (``AiohttpSession.build_form_data`` + ``BaseSession.prepare_value``) sends every method
as form data: plain strings as they are, everything else (ints, bools, floats, dicts, lists)
JSON-encoded, ``None`` and ``""`` left out entirely, and each ``InputFile`` as a separate part
named by a random key that the field refers to as ``"attach://<key>"``. Without files aiohttp
sends ``application/x-www-form-urlencoded``; with files, ``multipart/form-data``.

So a raw value cannot be JSON-decoded blindly: a message text ``"123"`` or ``"[1]"`` must stay a
string. :data:`STRING_PARAMS` names the fields the Bot API types as String; everything else is
JSON-decoded when it parses (``chat_id="@channel"`` does not parse and stays a string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import MultipartReader, web
from aiohttp.web_request import FileField

# Bot API parameters typed String (or "InputFile or String"); never JSON-decoded.
STRING_PARAMS = frozenset(
    {
        "action", "address", "animation", "audio", "business_connection_id", "caption",
        "certificate", "custom_title", "description", "document", "emoji", "file_id",
        "first_name", "foursquare_id", "foursquare_type", "google_place_id",
        "google_place_type", "icon_custom_emoji_id", "inline_message_id", "ip_address",
        "last_name", "message_effect_id", "name", "parse_mode", "phone_number", "photo",
        "callback_query_id", "secret_token", "sticker", "text", "thumbnail", "title", "url",
        "vcard", "video", "video_note", "voice", "method",
    }
)  # fmt: skip


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


class ApiError(Exception):
    """Raised by a method handler; becomes ``{"ok": false, ...}`` with the HTTP status."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, int] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def bad_request(text: str, **parameters: int) -> ApiError:
    return ApiError(400, f"Bad Request: {text}", parameters or None)


def decode_value(name: str, raw: str) -> Any:
    """One form/query value as the Bot API would read it (see the module docstring)."""
    if name in STRING_PARAMS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


async def read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from the query string plus a JSON, urlencoded or multipart body."""
    params: dict[str, Any] = {k: decode_value(k, v) for k, v in request.query.items()}
    files: dict[str, UploadedFile] = {}
    if request.method != "POST" or not request.can_read_body:
        return params, files
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params, files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, FileField):
            data = value.file.read()
            files[key] = UploadedFile(key, value.filename, value.content_type, data)
        elif isinstance(value, str):
            params[key] = decode_value(key, value)
        else:
            params[key] = decode_value(key, bytes(value).decode("utf-8", "replace"))
    return params, files


async def read_multipart(
    reader: MultipartReader,
) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """A multipart body (such as aiogram's webhook reply) as parameters and files."""
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        if isinstance(part, MultipartReader):  # nested multipart: not used by Telegram
            continue
        name = part.name or ""
        data = await part.read(decode=True)
        if part.filename:
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            files[name] = UploadedFile(name, part.filename, content_type, bytes(data))
        else:
            params[name] = decode_value(name, bytes(data).decode("utf-8"))
    return params, files


def ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}
