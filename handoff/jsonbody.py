"""Strict JSON for bodies that come from the open internet (webhook, VK callback, HTTP API).

UTF-8 only (`json.loads` on bytes would also take UTF-16 and UTF-32), and a nesting depth no
honest sender needs (Telegram updates and VK events nest about six levels): a body nested
thousands deep made the decoder raise RecursionError, which surfaced as a 500, and a body
nested a few hundred deep would reach the models that read it. Everything wrong is one
`BodyError` with a reason fit for a 400 answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

MAX_DEPTH = 32
BODY_TIMEOUT = 10.0  # seconds for a whole request body (bodies are at most 1 MiB)


class BodyError(ValueError):
    """The body is not acceptable JSON; `str()` says why in a few words."""


class ClientGone(Exception):
    """The client closed the connection before its body arrived (not our error)."""


class SlowBody(Exception):
    """The body did not arrive within the timeout (a slow-loris client): a 408."""


async def read_body(request: web.Request, timeout: float | None = None) -> bytes:
    timeout = BODY_TIMEOUT if timeout is None else timeout  # read at call time: tests shorten it
    try:
        return await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        raise SlowBody(f"the request body did not arrive within {timeout:g} s") from None
    except ConnectionResetError:
        raise ClientGone("the client closed the connection mid-body") from None


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not UTF-8") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise BodyError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        raise BodyError("body is not JSON") from None
    if depth_exceeds(data, max_depth):
        raise BodyError(f"JSON nested deeper than {max_depth} levels")
    return scrub(data)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(data: Any) -> Any:
    """Lone surrogates (`"\\ud800"` is valid JSON, and json joins only proper pairs) become
    U+FFFD: a str holding one cannot be encoded as UTF-8, so storing the text failed, and the
    platform delivered the update again and again. Recursion is bounded: depth is checked."""
    if isinstance(data, str):
        return _LONE_SURROGATE.sub("\ufffd", data)
    if isinstance(data, list):
        return [scrub(item) for item in data]
    if isinstance(data, dict):
        return {scrub(key): scrub(value) for key, value in data.items()}
    return data


def depth_exceeds(data: Any, limit: int) -> bool:
    """Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
