"""The HTTP plumbing of the API: auth, the error shape, and checking what clients send.

Every failure a client can cause becomes a JSON `{"error": ...}` with a 4xx status before
anything is changed; only our own bugs (or Redis going away) become a 500, logged with the
traceback and answered with a generic message that leaks nothing.

Auth is a strategy: the bearer tokens here (`auth_middleware`, the API at /api/v1), or another
middleware passed to `create_api_app` (the operators' console signs people in with a session,
bots/web/console_auth.py). A token is trusted to name who acts in its bodies; a signed-in
operator is not: such a middleware sets an `Actor` on the request (`ACTOR`), and the handlers
then act as that operator whatever the body says (`acting_body`).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from handoff.api_models import ID_RE
from handoff.jsonbody import BodyError, ClientGone, SlowBody, parse_json, read_body
from handoff.tokens import ApiTokens, allowed

log = logging.getLogger("handoff.api")

Body = TypeVar("Body", bound=BaseModel)

REQUESTS = Counter(
    "supportbot_api_requests_total", "HTTP API requests by route and status", ["route", "status"]
)
PUBLIC_ROUTES = frozenset({"openapi"})  # the document is no secret; tools fetch it bare
_REALM = 'Bearer realm="supportbot"'


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in operator: bodies' `operator`/`by` become them, and `force` (acting on a
    conversation someone else owns) is a supervisor's only."""

    operator: str
    supervisor: bool = False


#: The request key under which an auth strategy names the person acting.
ACTOR = web.RequestKey("handoff.api.actor", Actor)


def actor_of(request: web.Request) -> Actor | None:
    """The signed-in operator, or None for a bearer token (trusted to name the actor)."""
    return request.get(ACTOR)


class ApiError(Exception):
    """A client-facing failure: status and JSON body, raised anywhere inside a handler."""

    def __init__(self, status: int, error: str, **extra: str | None) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **{k: v for k, v in extra.items() if v}}


# --- middlewares ------------------------------------------------------------------------------
def auth_middleware(token: str, tokens: ApiTokens | None = None) -> Middleware:
    """API_TOKEN is the administrator's; other tokens (handoff/tokens.py) reach their role's
    routes only: 401 for an unknown or revoked token, 403 for a route of another role."""
    expected = token.encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        if route in PUBLIC_ROUTES:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        given = given.strip()
        bearer = scheme.lower() == "bearer" and bool(given)
        # compare_digest takes as long for a near miss as for garbage: no timing oracle.
        if bearer and hmac.compare_digest(given.encode(), expected):
            return await handler(request)
        role = await tokens.role_of(given) if bearer and tokens is not None else None
        if role is not None:
            if route is not None and allowed(role, route):
                return await handler(request)
            return web.json_response(
                {"error": f"forbidden: a {role} token cannot use this endpoint"}, status=403)
        # Checked before routing errors, so strangers learn nothing about which paths exist.
        challenge = _REALM if not given else f'{_REALM}, error="invalid_token"'
        return web.json_response(
            {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": challenge}
        )

    return auth


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.name or "unmatched"
    try:
        response = await handler(request)
    except ApiError as exc:
        response = web.json_response(exc.body, status=exc.status)
    except ClientGone as exc:  # theirs, not ours: one line, no traceback
        log.info("API %s %s: %s", request.method, request.path, exc)
        response = web.json_response({"error": "client closed the connection"}, status=400)
    except SlowBody as exc:
        log.info("API %s %s from %s: %s", request.method, request.path, request.remote, exc)
        response = web.json_response({"error": str(exc)}, status=408)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # The router's own answers (404, 405 with its Allow header, 413) in the API's shape.
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        response = web.json_response(
            {"error": exc.reason.lower()}, status=exc.status, headers=headers
        )
    except Exception:
        log.exception("API %s %s failed", request.method, request.path)
        response = web.json_response({"error": "internal error"}, status=500)
    REQUESTS.labels(route, str(response.status)).inc()
    return response


# --- input ------------------------------------------------------------------------------------
def path_id(request: web.Request, name: str, what: str) -> str:
    value = request.match_info[name]
    if not ID_RE.fullmatch(value):  # not match: `$` also matches before a final newline
        raise ApiError(400, f"bad {what} id: expected channel:id, e.g. tg:42 or api:crm")
    return value


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}")
    return int(raw)


async def json_body(request: web.Request, model: type[Body]) -> Body:
    """The body as `model`; under a signed-in operator, acting as them (`acting_body`)."""
    try:
        data = parse_json(await read_body(request))
    except BodyError as exc:
        raise ApiError(400, str(exc)) from None
    actor = actor_of(request)
    if actor is not None and isinstance(data, dict):
        data = acting_body(data, actor, model.model_fields)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, validation_reason(exc)) from None


def acting_body(data: dict[str, Any], actor: Actor, fields: Any) -> dict[str, Any]:
    """A body as the signed-in operator may send it: whoever it names in `operator` or `by`,
    the actor acts (an operator cannot act as a colleague), and only a supervisor forces."""
    data = dict(data)
    for name in ("operator", "by"):
        if name in fields:
            data[name] = actor.operator
    if "force" in fields and not actor.supervisor:
        data["force"] = False
    return data


def validation_reason(exc: ValidationError) -> str:
    """One line naming each bad field, e.g. `text: String should have at most 4096 characters`."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "string_pattern_mismatch":
            message = "must be an id like tg:1001 or api:crm"
        elif error["type"] == "model_type":
            message = "must be a JSON object"
        else:
            message = error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def json_response(model: BaseModel) -> web.Response:
    return web.json_response(model.model_dump(mode="json"))
