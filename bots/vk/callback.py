"""Callback API endpoint: VK POSTs events; `ok` is answered once they are stored.

`confirmation` is answered with the configured code. Every other request must carry the
configured `secret` (compared in constant time); a wrong one is refused with 403 and changes
nothing. A repeated delivery (same event_id) is answered `ok` again and dropped by the ingest's
dedup, so it is handled once. If Redis fails the answer is 503: VK delivers the event again.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from bots.logsummary import Summarized
from bots.vk.ingress import VkIngress
from handoff.jsonbody import BodyError, parse_json, read_body

log = logging.getLogger(__name__)

CALLBACK_PATH = "/vk/callback"


def callback_routes(ingress: VkIngress, confirmation: str, secret: str) -> list[web.RouteDef]:
    refused = Summarized(log)  # what strangers can repeat at will is logged once a minute

    async def receive(request: web.Request) -> web.Response:
        try:
            body = parse_json(await read_body(request))
        except BodyError as exc:
            refused.warning(f"vk callback bodies rejected ({exc})",
                            "vk callback body rejected: %s", exc)
            return web.Response(status=400, text=str(exc))
        if not isinstance(body, dict):
            refused.warning("vk callback bodies not an object rejected",
                            "vk callback body is not an object: rejected")
            return web.Response(status=400, text="body is not an object")
        group = body.get("group_id")
        if type(group) is not int or group != ingress.group_id:  # 77.0 and True are not ids
            refused.warning("vk callbacks for another group rejected",
                            "vk callback for group %r, not ours: rejected", group)
            return web.Response(status=403, text="wrong group")
        # VK sends the secret in every request, the confirmation too: checked first, so the
        # confirmation code goes only to VK itself.
        given = str(body.get("secret", ""))
        if not hmac.compare_digest(given.encode(), secret.encode()):
            refused.warning("vk callbacks with a wrong secret rejected",
                            "vk callback from %s with a wrong secret rejected", request.remote)
            return web.Response(status=403, text="wrong secret")
        if body.get("type") == "confirmation":
            log.info("vk callback server confirmation answered")
            return web.Response(text=confirmation)
        try:
            await ingress.accept([body])
        except Exception:
            log.exception("vk callback event not stored")
            return web.Response(status=503, text="not stored")
        return web.Response(text="ok")

    return [web.post(CALLBACK_PATH, receive)]
