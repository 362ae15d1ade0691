"""The notices' part of the HTTP API (docs/notices.md, docs/api.md): a supervisor previews a
notice to a segment, sends it, reads its counts, resumes it.

A sent notice runs in the process that served the request, in the background; if that process
stops, the notice stays `sending` and `POST /notices/{notice}/resume` (or `supportbot notices
resume`) continues it, nobody getting it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from handoff.api_http import ApiError, json_body
from handoff.keys import Keys
from handoff.notice_run import NoticeRun, RunLimits
from handoff.notices import MAX_TEXT, Notice, NoticeError, Notices, Preview, segment_of
from handoff.scripts import Scripts

log = logging.getLogger(__name__)
NOTICE_ID = re.compile(r"[0-9]{8}-[0-9a-f]{6}")
SHOWN = 20  # recipients listed by a preview


class SegmentBody(BaseModel):
    ids: list[str] = Field(default_factory=list, max_length=100_000)
    channel: str = ""
    since: str = ""  # 7d, 24h, 90m, a date, an ISO time
    tag: str = ""


class NoticeBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    segment: SegmentBody = Field(default_factory=SegmentBody)
    by: str = Field(default="api", max_length=100)
    send: bool = False  # false: a preview only
    language: Literal["ru", "en"] = "ru"  # of the opt-out line


class NoticeApi:
    def __init__(self, redis: Redis, keys: Keys, limits: RunLimits | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._limits = limits or RunLimits()
        self._stop = asyncio.Event()
        self._runs: dict[str, asyncio.Task[Any]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/notices", self.create, name="notices"),
            web.get("/notices/{notice}", self.read, name="notice"),
            web.post("/notices/{notice}/resume", self.resume, name="notice_resume"),
        ]

    def mount(self, app: web.Application) -> None:
        app.add_routes(self.routes())
        app.on_cleanup.append(self._close)

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request, NoticeBody)
        notices = Notices(self._redis, self._keys, language=body.language)
        s = body.segment
        try:
            segment = segment_of(s.ids, s.channel, s.since, s.tag)
            if not body.send:
                return web.json_response(_preview(await notices.preview(segment, body.text)))
            notice = await notices.create(segment, body.text, body.by)
        except (ValueError, NoticeError) as exc:
            raise ApiError(400, str(exc)) from None
        self._start(notice.id)
        return web.json_response(notice.as_dict(), status=202)

    async def read(self, request: web.Request) -> web.Response:
        notice_id = _notice_id(request)
        notices = Notices(self._redis, self._keys)
        notice = await notices.get(notice_id)
        if notice is None:
            raise ApiError(404, "unknown notice")
        refused = await notices.undelivered(notice_id)
        return web.json_response({**notice.as_dict(), "refused": len(refused),
                                  "running_here": notice_id in self._runs})

    async def resume(self, request: web.Request) -> web.Response:
        notice_id = _notice_id(request)
        notice = await Notices(self._redis, self._keys).get(notice_id)
        if notice is None:
            raise ApiError(404, "unknown notice")
        if notice.status == "cancelled":
            raise ApiError(409, "wrong_state", state="cancelled")
        self._start(notice_id)
        return web.json_response({**notice.as_dict(), "running_here": True})

    def _start(self, notice_id: str) -> None:
        if notice_id in self._runs:
            return
        run = NoticeRun(self._redis, self._keys, Scripts(self._redis),
                        Notices(self._redis, self._keys), self._limits)
        task = asyncio.create_task(self._run(run, notice_id), name=f"notice {notice_id}")
        self._runs[notice_id] = task

    async def _run(self, run: NoticeRun, notice_id: str) -> Notice | None:
        try:
            return await run.run(notice_id, self._stop)
        except Exception:
            log.exception("notice %s: the run failed; resume it", notice_id)
            return None
        finally:
            self._runs.pop(notice_id, None)

    async def _close(self, _app: web.Application) -> None:
        """The process stops: runs stop between batches (resumable), within seconds."""
        self._stop.set()
        if self._runs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._runs.values()), 10)


def _notice_id(request: web.Request) -> str:
    value = request.match_info["notice"]
    if not NOTICE_ID.fullmatch(value):
        raise ApiError(400, "bad notice id: expected one like 20261206-a1b2c3")
    return value


def _preview(preview: Preview) -> dict[str, Any]:
    return {"count": preview.count, "opted_out": preview.opted_out,
            "unreachable": preview.unreachable, "unknown": preview.unknown,
            "first": preview.recipients[:SHOWN], "text": preview.text}


def openapi_paths() -> dict[str, Any]:
    """The notices' operations for handoff/openapi.py."""
    notice = {"name": "notice", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "A notice's id, e.g. 20261206-a1b2c3."}
    segment = {"type": "object", "description": "Every filter given must hold; none: everyone.",
               "properties": {
                   "ids": {"type": "array", "items": {"type": "string"}},
                   "channel": {"type": "string", "enum": ["", "tg", "vk", "web"]},
                   "since": {"type": "string", "description": "7d, 24h, 90m, a date, a time"},
                   "tag": {"type": "string"}}}
    body = {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        "segment": segment, "by": {"type": "string"},
        "send": {"type": "boolean", "description": "false (default): a preview only"},
        "language": {"type": "string", "enum": ["ru", "en"]}}}
    errors = {code: {"$ref": f"#/components/responses/{code}"} for code in ("400", "401")}
    obj = {"application/json": {"schema": {"type": "object"}}}
    return {
        "/notices": {"post": {
            "operationId": "notices", "summary": "Preview a notice to a segment, or send it",
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "The preview: count, first, text",
                                  "content": obj},
                          "202": {"description": "Created and sending", "content": obj},
                          **errors}}},
        "/notices/{notice}": {"get": {
            "operationId": "notice", "summary": "A notice and its counts",
            "parameters": [notice],
            "responses": {"200": {"description": "The notice", "content": obj}, **errors,
                          "404": {"$ref": "#/components/responses/404"}}}},
        "/notices/{notice}/resume": {"post": {
            "operationId": "notice_resume", "summary": "Continue an interrupted notice",
            "parameters": [notice],
            "responses": {"200": {"description": "Sending again", "content": obj}, **errors,
                          "404": {"$ref": "#/components/responses/404"},
                          "409": {"$ref": "#/components/responses/409"}}}},
    }
