"""Webhook ingress: Telegram POSTs updates; we answer 200 only after they are stored."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from bots.logsummary import Summarized
from bots.telegram.ingress import TelegramIngress
from handoff.jsonbody import BodyError, parse_json, read_body

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram/webhook"


def webhook_routes(ingress: TelegramIngress, secret: str) -> list[web.RouteDef]:
    refused = Summarized(log)  # what strangers can repeat at will is logged once a minute

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            refused.warning("webhook calls with a wrong secret token rejected",
                            "webhook call from %s with a wrong secret token rejected",
                            request.remote)
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=401)
        try:
            update = parse_json(await read_body(request))
        except BodyError as exc:
            refused.warning(f"webhook bodies rejected ({exc})", "webhook body rejected: %s", exc)
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        try:
            await ingress.accept([update])
        except Exception:
            # Not stored: a non-2xx answer makes Telegram deliver it again later.
            log.exception("webhook update not stored")
            return web.json_response({"ok": False, "error": "not stored"}, status=503)
        return web.json_response({"ok": True})

    return [web.post(WEBHOOK_PATH, receive)]
