"""A fake Rasa server (`POST /model/parse`) on 127.0.0.1 for the Rasa backend's tests.

    async with FakeRasa() as rasa:
        rasa.answer("где мой заказ", "order_status", 0.93)
        backend = RasaBackend(rasa.url, fallback, threshold=0.35)

The answer has the shape of Rasa 3.6's: `{"text", "intent": {"name", "confidence"},
"intent_ranking": [...], "entities": [...]}`. Failures are switched on and off: `delay` (for
timeouts), `status` (an HTTP error), `body` (a malformed answer), and `stop()`/`start()` take
the server off and back on the same port (connection refused in between).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from typing_extensions import Self

from handoff.embedded_redis import free_port


@dataclass
class Answer:
    intent: str
    confidence: float
    others: dict[str, float] = field(default_factory=dict)
    entities: list[dict[str, Any]] = field(default_factory=list)


class FakeRasa:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.answers: dict[str, Answer] = {}
        self.default = Answer("greet", 0.9)
        self.delay = 0.0
        self.status = 200
        self.body: str | None = None  # sent as is instead of the JSON answer
        self.texts: list[str] = []  # every text asked, in order
        self._runner: web.AppRunner | None = None

    def answer(
        self, text: str, intent: str, confidence: float, *,
        others: dict[str, float] | None = None, entities: list[dict[str, Any]] | None = None,
    ) -> None:
        self.answers[text] = Answer(intent, confidence, others or {}, entities or [])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/model/parse", self._parse)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _parse(self, request: web.Request) -> web.Response:
        text = str((await request.json())["text"])
        self.texts.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": "fake failure"}, status=self.status)
        if self.body is not None:
            return web.Response(text=self.body, content_type="application/json")
        return web.Response(text=json.dumps(self._payload(text)), content_type="application/json")

    def _payload(self, text: str) -> dict[str, Any]:
        answer = self.answers.get(text, self.default)
        ranking = {answer.intent: answer.confidence, **answer.others}
        return {
            "text": text,
            "intent": {"name": answer.intent, "confidence": answer.confidence},
            "intent_ranking": [
                {"name": name, "confidence": confidence}
                for name, confidence in sorted(ranking.items(), key=lambda kv: -kv[1])
            ],
            "entities": answer.entities,
        }
