"""The HTTP API over a real server on 127.0.0.1 and a real Redis: auth, input checks, every
endpoint, and the OpenAPI document matching the routes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from handoff.api import PREFIX, create_api_app
from handoff.clock import FakeClock
from handoff.conversations import ConversationStore, Handoff, Limits
from handoff.events import OutboundMessage, Profile
from handoff.hours import BusinessHours
from handoff.keys import Keys
from handoff.scripts import Scripts
from handoff.service import HandoffService
from tests.test_handoff_support import START, enqueue, journal, make_service, notices

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONV = "tg:42"
ANN, BOB, CRM = "tg:1001", "tg:1002", "api:crm"

Client = TestClient[web.Request, web.Application]

# Every route of the API but the public document, with a body that would succeed if authorised
# (CONV queued, ANN online). test_the_auth_table_covers_every_route keeps this list complete.
LETTER = "1765000000000-0"
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/conversations?state=queued", None),
    ("GET", f"/conversations/{CONV}", None),
    ("POST", f"/conversations/{CONV}/claim", {"operator": ANN}),
    ("POST", f"/conversations/{CONV}/reply", {"operator": ANN, "text": "hi"}),
    ("POST", f"/conversations/{CONV}/transfer", {"by": ANN, "to": None, "force": True}),
    ("POST", f"/conversations/{CONV}/close", {"by": ANN}),
    ("POST", f"/conversations/{CONV}/return-to-bot", {"by": ANN}),
    ("POST", f"/conversations/{CONV}/note", {"operator": ANN, "text": "n"}),  # test_console
    ("POST", f"/conversations/{CONV}/tags", {"by": ANN, "tags": ["vip"]}),
    ("POST", f"/conversations/{CONV}/ban", {"by": ANN, "force": True}),
    ("POST", f"/conversations/{CONV}/unban", {"by": ANN}),
    ("GET", "/templates", None),
    ("GET", "/queue", None),
    ("GET", "/operators", None),
    ("POST", f"/operators/{CRM}/status", {"status": "online"}),
    ("PUT", f"/operators/{CRM}/shift", {"shift": "mon-fri 09:00-18:00"}),  # test_desk_shifts
    ("GET", "/metrics", None),
    ("GET", "/stats?days=7", None),  # the trainers' report (tests/test_stats.py)
    ("GET", "/reports/operators?period=7d", None),  # the team's (tests/test_reports_e2e.py)
    ("GET", "/reports/hourly?period=7d", None),  # per hour, for charts (tests/test_console)
    ("GET", "/journal?limit=5", None),  # tests/test_audit.py
    ("GET", "/records?limit=5", None),  # tests/test_reports_e2e.py
    ("GET", f"/conversations/{CONV}/handoffs/1765000000.5", None),
    ("GET", "/dead-letters", None),
    ("POST", f"/dead-letters/{LETTER}/requeue", {"by": ANN}),
    ("GET", "/roles", None),  # tests/test_access.py
    ("POST", f"/roles/{CRM}/grant", {"role": "operator"}),
    ("POST", f"/roles/{CRM}/revoke", {"reason": "left"}),
    ("POST", "/notices", {"text": "hi", "segment": {"ids": [CONV]}}),  # test_notices_api
    ("GET", "/notices/{notice}", None),  # the template itself: any id is refused unauthorised
    ("POST", "/notices/{notice}/resume", None),
]


class Recorder:
    """Customer notices as the runtime would pass them, recognisable by their text."""

    def joined(self, conv: str, operator: str, name: str = "") -> Sequence[OutboundMessage]:
        named = f" ({name})" if name else ""
        return [OutboundMessage(conversation=conv, text=f"joined {operator}{named}")]

    def closed(self, conv: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, text="rate us")]

    def back_to_bot(self, conv: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, text="bot again")]

    def transferred_to_queue(self, conv: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, text="queued again")]

    def requeued(self, conv: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, text="operator left")]


@pytest.fixture
def store(redis: aioredis.Redis, keys: Keys) -> ConversationStore:
    return ConversationStore(redis, keys, Scripts(redis), Limits())


@pytest.fixture
async def client(service: HandoffService, store: ConversationStore) -> AsyncIterator[Client]:
    root = web.Application()  # mounted the way the runtime mounts it
    root.add_subapp(PREFIX, create_api_app(service, store, token=TOKEN, notices=Recorder()))
    async with TestClient(TestServer(root, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def queued(service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
                 ) -> None:
    await service.set_status(ANN, "online")
    await service.set_status(BOB, "online")
    await enqueue(redis, keys, CONV, clock)


async def call(client: Client, method: str, path: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    async with client.request(method, PREFIX + path, data=data,
                              headers=AUTH if headers is None else headers) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type.endswith(
            "json") else text


async def snapshot(redis: aioredis.Redis, keys: Keys) -> dict[str, Any]:
    """Every key of this test's prefix with its value: "nothing changed" means equal snapshots.
    (A scan is fine here: the prefix is this test's own.)"""
    readers: dict[Any, Any] = {
        "hash": redis.hgetall, "list": lambda k: redis.lrange(k, 0, -1), "set": redis.smembers,
        "zset": lambda k: redis.zrange(k, 0, -1, withscores=True), "string": redis.get,
        "stream": redis.xrange,
    }
    found = {}
    async for key in redis.scan_iter(match=f"{keys.prefix}*"):
        kind = await redis.type(key)
        found[key] = (kind, await readers[kind](key))
    return found


async def conversation(redis: aioredis.Redis, keys: Keys, conv: str = CONV) -> dict[Any, Any]:
    return await redis.hgetall(keys.conversation(conv))


# --- auth -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), [*ENDPOINTS, ("GET", "/nowhere", None)])
@pytest.mark.parametrize("header", [
    None, "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}",
    TOKEN,
])
async def test_a_missing_or_wrong_token_is_401_and_changes_nothing(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None,
    method: str, path: str, body: dict[str, Any] | None, header: str | None,
) -> None:
    before = await snapshot(redis, keys)
    headers = {} if header is None else {"Authorization": header}
    async with client.request(method, PREFIX + path, json=body, headers=headers) as response:
        assert response.status == 401
        assert await response.json() == {"error": "unauthorized"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await snapshot(redis, keys) == before


def _routes(service: HandoffService, store: ConversationStore) -> set[tuple[str, str]]:
    """(method, path template) of every route, as the app defines them (unmounted)."""
    app = create_api_app(service, store, token=TOKEN)
    return {(r.method, r.resource.canonical) for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None}


async def test_the_auth_table_covers_every_route(service: HandoffService,
                                                 store: ConversationStore) -> None:
    routes = _routes(service, store)
    tested = {(method, path.split("?")[0].replace(CONV, "{conv}").replace(CRM, "{op}")
               .replace(LETTER, "{letter}").replace("1765000000.5", "{closed}"))
              for method, path, _ in ENDPOINTS}
    assert routes - tested == {("GET", "/openapi.json")}
    assert tested <= routes


async def test_the_right_token_passes_and_an_empty_one_is_refused_at_build(
    client: Client, service: HandoffService, store: ConversationStore
) -> None:
    assert (await call(client, "GET", "/queue"))[0] == 200
    lower = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive (RFC 7235)
    assert (await call(client, "GET", "/queue", headers=lower))[0] == 200
    with pytest.raises(ValueError, match="API_TOKEN"):
        create_api_app(service, store, token="")


# --- bad input --------------------------------------------------------------------------------
BAD_INPUT: list[tuple[str, str, Any, str]] = [
    ("POST", f"/conversations/{CONV}/claim", b"{not json", "body is not JSON"),
    ("POST", f"/conversations/{CONV}/claim", b"\xff\xfe", "body is not UTF-8"),
    ("POST", f"/conversations/{CONV}/claim", b"", "body is not JSON"),
    ("POST", f"/conversations/{CONV}/claim", [ANN], "must be a JSON object"),
    ("POST", f"/conversations/{CONV}/claim", {}, "operator: Field required"),
    ("POST", f"/conversations/{CONV}/claim", {"operator": 1001}, "operator:"),
    ("POST", f"/conversations/{CONV}/claim", {"operator": "ann"}, "operator: must be an id"),
    ("POST", f"/conversations/{CONV}/claim", {"operator": ANN, "as": "x"}, "as:"),
    ("POST", "/conversations/42/claim", {"operator": ANN}, "bad conversation id"),
    ("POST", "/conversations/TG:42/claim", {"operator": ANN}, "bad conversation id"),
    ("POST", f"/conversations/tg:{'9' * 65}/claim", {"operator": ANN}, "bad conversation id"),
    ("POST", "/conversations/tg:42%0A/claim", {"operator": ANN}, "bad conversation id"),
    ("POST", f"/conversations/{CONV}/claim", {"operator": f"{ANN}\n"}, "must be an id"),
    ("POST", f"/conversations/{CONV}/reply", {"operator": ANN, "text": ""}, "text:"),
    ("POST", f"/conversations/{CONV}/reply", {"operator": ANN, "text": " \n "}, "blank"),
    ("POST", f"/conversations/{CONV}/reply", {"operator": ANN, "text": "x" * 4097}, "4096"),
    ("POST", f"/conversations/{CONV}/reply", {"operator": ANN, "text": 5}, "text:"),
    ("POST", f"/conversations/{CONV}/reply", {"text": "hi"}, "operator: Field required"),
    ("POST", f"/conversations/{CONV}/transfer", {"by": ANN}, "to: Field required"),
    ("POST", f"/conversations/{CONV}/transfer", {"by": ANN, "to": "bob"}, "to: must be an id"),
    ("POST", f"/conversations/{CONV}/transfer", {"by": ANN, "to": None, "force": "yes"},
     "force:"),
    ("POST", f"/conversations/{CONV}/close", {"by": ANN, "reason": "x" * 501}, "reason:"),
    ("POST", f"/conversations/{CONV}/close", {"by": None}, "by:"),
    ("POST", f"/conversations/{CONV}/return-to-bot", {}, "by: Field required"),
    ("POST", f"/operators/{CRM}/status", {"status": "away"}, "status:"),
    ("POST", f"/operators/{CRM}/status", {"status": "online", "capacity": 0}, "capacity:"),
    ("POST", f"/operators/{CRM}/status", {"status": "online", "capacity": "5"}, "capacity:"),
    ("POST", "/operators/crm/status", {"status": "online"}, "bad operator id"),
    ("POST", "/operators/api:crm%0A/status", {"status": "online"}, "bad operator id"),
    ("GET", "/conversations?state=bot", None, "listing bot conversations is not supported"),
    ("GET", "/conversations", None, "state must be"),
    ("GET", "/conversations?state=closed", None, "state must be"),
    ("GET", "/conversations?state=queued&limit=0", None, "limit must be"),
    ("GET", "/conversations?state=queued&limit=ten", None, "limit must be"),
    ("GET", "/conversations?state=queued&limit=501", None, "limit must be"),
    ("GET", f"/conversations/{CONV}?transcript=-1", None, "transcript must be"),
    ("GET", f"/conversations/{CONV}?transcript=201", None, "transcript must be"),
    ("GET", "/conversations/tg:4 2", None, "bad conversation id"),
    ("GET", "/queue?limit=%D9%A3", None, "limit must be"),  # an Arabic-Indic digit
]


@pytest.mark.parametrize(("method", "path", "body", "reason"), BAD_INPUT)
async def test_bad_input_is_400_with_a_reason_and_changes_nothing(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None,
    method: str, path: str, body: Any, reason: str,
) -> None:
    before = await snapshot(redis, keys)
    status, answer = await call(client, method, path, body)
    assert status == 400
    assert reason in answer["error"]
    assert await snapshot(redis, keys) == before


async def test_unknown_conversation_is_404_and_unknown_paths_and_methods_answer_json(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    before = await snapshot(redis, keys)
    assert await call(client, "GET", "/conversations/tg:7") == (
        404, {"error": "unknown conversation"})
    assert await call(client, "POST", "/conversations/tg:7/claim", {"operator": ANN}) == (
        404, {"error": "unknown conversation"})
    assert await call(client, "GET", "/nowhere") == (404, {"error": "not found"})
    async with client.get(f"{PREFIX}/conversations/{CONV}/claim", headers=AUTH) as response:
        assert response.status == 405
        assert await response.json() == {"error": "method not allowed"}
        assert response.headers["Allow"] == "POST"
    assert await snapshot(redis, keys) == before


async def test_a_body_over_the_size_limit_is_413_json(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    before = await snapshot(redis, keys)
    huge = json.dumps({"operator": ANN, "text": "x" * (2 * 1024 * 1024)}).encode()
    async with client.post(f"{PREFIX}/conversations/{CONV}/reply", data=io.BytesIO(huge),
                           headers=AUTH) as response:
        assert response.status == 413
        assert await response.json() == {"error": "request entity too large"}
    assert await snapshot(redis, keys) == before


async def test_an_unexpected_failure_is_a_logged_500_that_leaks_nothing(
    client: Client, service: HandoffService, queued: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "claim", broken)
    with caplog.at_level(logging.ERROR, logger="handoff.api"):
        status, answer = await call(client, "POST", f"/conversations/{CONV}/claim",
                                    {"operator": ANN})
    assert (status, answer) == (500, {"error": "internal error"})
    (record,) = caplog.records
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])


# --- transitions ------------------------------------------------------------------------------
async def test_claim_wins_once_then_taken_with_the_owner(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    status, answer = await call(client, "POST", f"/conversations/{CONV}/claim",
                                {"operator": ANN})
    assert status == 200
    assert answer["ok"] is True
    summary = answer["conversation"]
    assert (summary["state"], summary["owner"]) == ("assigned", ANN)
    assert summary["handoff"]["assigned_at"] == START
    before = await snapshot(redis, keys)
    status, answer = await call(client, "POST", f"/conversations/{CONV}/claim",
                                {"operator": BOB})
    assert (status, answer) == (409, {"error": "taken", "state": "assigned", "owner": ANN})
    assert await snapshot(redis, keys) == before
    assert [n["text"] for n in await notices(redis, keys)] == [f"joined {ANN}"]
    (entry,) = await journal(redis, keys, "claim")
    assert entry["actor"] == ANN


async def test_the_customer_hears_the_name_of_the_operator_who_took_them(
    client: Client, service: HandoffService, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    await service.set_status(BOB, "online", name="Борис")
    status, _answer = await call(client, "POST", f"/conversations/{CONV}/claim",
                                 {"operator": BOB})
    assert status == 200
    assert [n["text"] for n in await notices(redis, keys)] == [f"joined {BOB} (Борис)"]


async def test_concurrent_claims_over_http_have_exactly_one_winner(
    client: Client, service: HandoffService, queued: None
) -> None:
    ops = [f"api:bot{n}" for n in range(20)]
    for op in ops:
        await service.set_status(op, "online")
    results = await asyncio.gather(*(
        call(client, "POST", f"/conversations/{CONV}/claim", {"operator": op}) for op in ops
    ))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 19
    winner = next(a["conversation"]["owner"] for s, a in results if s == 200)
    assert {a["owner"] for s, a in results if s == 409} == {winner}


@pytest.mark.parametrize(("setup", "error", "detail"), [
    ("unknown", "unknown_operator", CRM), ("offline", "offline", "offline"),
    ("full", "capacity", "1/1"), ("bot", "wrong_state", ""),
])
async def test_claim_refusals_are_409_with_the_service_code(
    client: Client, service: HandoffService, redis: aioredis.Redis, keys: Keys,
    clock: FakeClock, setup: str, error: str, detail: str,
) -> None:
    await enqueue(redis, keys, CONV, clock)
    if setup == "offline":
        await service.set_status(CRM, "offline")
    elif setup == "full":
        await service.set_status(CRM, "online", capacity=1)
        await enqueue(redis, keys, "tg:7", clock)
        assert (await service.claim("tg:7", CRM)).ok
    elif setup == "bot":
        await service.set_status(CRM, "online")
        assert (await service.cancel(CONV)).ok
    before = await snapshot(redis, keys)
    status, answer = await call(client, "POST", f"/conversations/{CONV}/claim",
                                {"operator": CRM})
    assert status == 409
    assert (answer["error"], answer.get("detail", "")) == (error, detail)
    assert await snapshot(redis, keys) == before


async def test_an_api_client_registers_itself_then_claims_and_replies(
    client: Client, redis: aioredis.Redis, keys: Keys, store: ConversationStore, queued: None
) -> None:
    status, operator = await call(client, "POST", f"/operators/{CRM}/status",
                                  {"status": "online", "capacity": 8, "name": "CRM"})
    assert status == 200
    assert (operator["id"], operator["status"], operator["capacity"], operator["load"],
            operator["name"]) == (CRM, "online", 8, 0, "CRM")
    assert (await call(client, "POST", f"/conversations/{CONV}/claim",
                       {"operator": CRM}))[0] == 200
    status, answer = await call(client, "POST", f"/conversations/{CONV}/reply",
                                {"operator": CRM, "text": "Здравствуйте! Смотрю заказ."})
    assert status == 200
    assert answer["conversation"]["handoff"]["first_response_at"] == START
    joined, sent = await notices(redis, keys)  # the customer outbox stream, in order
    assert joined["text"] == f"joined {CRM} (CRM)"  # the name it registered with
    assert (sent["id"], sent["conversation"], sent["text"]) == (
        answer["message_id"], CONV, "Здравствуйте! Смотрю заказ.")
    last = (await store.transcript(CONV, 1))[0]
    assert (last["dir"], last["text"], last["operator"]) == ("out", sent["text"], CRM)
    status, operators = await call(client, "GET", "/operators")
    assert {o["id"]: o["load"] for o in operators["operators"]} == {ANN: 0, BOB: 0, CRM: 1}


async def test_only_the_owner_replies(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    status, answer = await call(client, "POST", f"/conversations/{CONV}/reply",
                                {"operator": ANN, "text": "hi"})
    assert (status, answer["error"]) == (409, "wrong_state")
    await call(client, "POST", f"/conversations/{CONV}/claim", {"operator": ANN})
    before = await snapshot(redis, keys)
    status, answer = await call(client, "POST", f"/conversations/{CONV}/reply",
                                {"operator": BOB, "text": "hi"})
    assert (status, answer) == (409, {"error": "not_owner", "state": "assigned", "owner": ANN})
    assert await snapshot(redis, keys) == before


async def test_transfer_to_an_operator_and_back_to_the_queue(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    path = f"/conversations/{CONV}/transfer"
    score = await redis.zscore(keys.queue(), CONV)
    await call(client, "POST", f"/conversations/{CONV}/claim", {"operator": ANN})
    status, answer = await call(client, "POST", path, {"by": BOB, "to": BOB})
    assert (status, answer["error"], answer["owner"]) == (409, "not_owner", ANN)
    status, answer = await call(client, "POST", path, {"by": ANN, "to": BOB})
    assert (status, answer["conversation"]["owner"]) == (200, BOB)
    assert await redis.smembers(keys.operator_convs(BOB)) == {CONV}
    status, answer = await call(client, "POST", path, {"by": CRM, "to": None, "force": True,
                                                       "reason": "shift over"})
    assert status == 200
    assert (answer["conversation"]["state"], answer["conversation"]["owner"]) == ("queued", None)
    assert await redis.zscore(keys.queue(), CONV) == score  # the customer keeps their place
    (entry,) = [e for e in await journal(redis, keys, "transfer") if e["to"] == "queued"]
    assert (entry["actor"], entry["reason"]) == (CRM, "shift over")
    assert [n["text"] for n in await notices(redis, keys)] == [
        f"joined {ANN}", f"joined {BOB}", "queued again"]


async def test_close_ends_the_handoff_with_history_and_the_rating_prompt(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    await call(client, "POST", f"/conversations/{CONV}/claim", {"operator": ANN})
    status, answer = await call(client, "POST", f"/conversations/{CONV}/close",
                                {"by": ANN, "reason": "solved"})
    assert status == 200
    assert answer["conversation"] == {"id": CONV, "state": "bot", "version": 3, "owner": None,
                                      "handoff": None, "profile": None, "desk": None}
    assert [n["text"] for n in await notices(redis, keys)] == [f"joined {ANN}", "rate us"]
    status, detail = await call(client, "GET", f"/conversations/{CONV}")
    assert (detail["closed"], detail["queue_position"]) == (1, None)
    (closed,) = detail["history"]
    assert (closed["owner"], closed["closed_by"], closed["close_reason"], closed["outcome"]) == (
        ANN, ANN, "solved", "close")
    status, answer = await call(client, "POST", f"/conversations/{CONV}/close", {"by": ANN})
    assert (status, answer["error"], answer["state"]) == (409, "wrong_state", "bot")


async def test_return_to_bot_needs_the_owner_or_force(
    client: Client, redis: aioredis.Redis, keys: Keys, queued: None
) -> None:
    path = f"/conversations/{CONV}/return-to-bot"
    await call(client, "POST", f"/conversations/{CONV}/claim", {"operator": ANN})
    assert (await call(client, "POST", path, {"by": CRM}))[1]["error"] == "not_owner"
    status, answer = await call(client, "POST", path, {"by": CRM, "force": True})
    assert (status, answer["conversation"]["state"]) == (200, "bot")
    assert (await conversation(redis, keys)).get("closed") is None  # not counted as handled
    assert [n["text"] for n in await notices(redis, keys)][-1] == "bot again"
    (entry,) = await journal(redis, keys, "return_to_bot")
    assert (entry["actor"], entry["owner"]) == (CRM, ANN)


# --- reads ------------------------------------------------------------------------------------
async def test_one_conversation_with_profile_transcript_and_handoff_fields(
    client: Client, store: ConversationStore, keys: Keys, clock: FakeClock
) -> None:
    # Queued through the worker's own commit path, as a real handoff is.
    profile = Profile(user_id="42", first_name="Иван", username="ivan", language_code="ru")
    said = [{"at": START, "dir": "in", "text": f"сообщение {n}"} for n in range(5)]
    result = await store.commit(
        await store.load(CONV), shard_stream=keys.inbound_stream(0), group="workers", entry="",
        profile=profile, transcript=said,
        handoff=Handoff(reason="explicit", priority="high", tags=("billing", "vip")),
    )
    assert result.state == "queued"
    status, detail = await call(client, "GET", f"/conversations/{CONV}?transcript=2")
    assert status == 200
    assert (detail["state"], detail["queue_position"], detail["handoffs"]) == ("queued", 1, 1)
    assert detail["profile"] == {"user_id": "42", "first_name": "Иван", "last_name": "",
                                 "username": "ivan", "language_code": "ru"}
    handoff = detail["handoff"]
    assert (handoff["reason"], handoff["priority"], handoff["tags"]) == (
        "explicit", "high", ["billing", "vip"])
    assert [entry["text"] for entry in detail["transcript"]] == ["сообщение 3", "сообщение 4"]
    assert (await call(client, "GET", f"/conversations/{CONV}?transcript=0"))[1][
        "transcript"] == []
    assert len((await call(client, "GET", f"/conversations/{CONV}"))[1]["transcript"]) == 5
    assert (await call(client, "GET", "/conversations/tg%3A42"))[0] == 200


async def test_list_by_state(
    client: Client, service: HandoffService, redis: aioredis.Redis, keys: Keys,
    clock: FakeClock,
) -> None:
    await service.set_status(ANN, "online")
    await service.set_status(BOB, "online")
    for conv, priority in [("tg:1", "normal"), ("tg:2", "low"), ("vk:3", "urgent"),
                           ("tg:4", "normal"), ("tg:5", "high")]:
        await enqueue(redis, keys, conv, clock, priority=priority)
        clock.advance(10)
    assert (await service.claim("tg:4", BOB)).ok
    clock.advance(10)
    assert (await service.claim("tg:1", ANN)).ok
    status, listed = await call(client, "GET", "/conversations?state=queued")
    assert status == 200
    assert [c["id"] for c in listed["conversations"]] == ["vk:3", "tg:5", "tg:2"]
    assert listed["count"] == 3
    status, listed = await call(client, "GET", "/conversations?state=assigned")
    assert [(c["id"], c["owner"]) for c in listed["conversations"]] == [
        ("tg:4", BOB), ("tg:1", ANN)]  # longest-assigned first
    _, limited = await call(client, "GET", "/conversations?state=queued&limit=1")
    assert [c["id"] for c in limited["conversations"]] == ["vk:3"]


async def test_the_queue_with_positions_waits_and_the_estimate(
    client: Client, service: HandoffService, redis: aioredis.Redis, keys: Keys,
    clock: FakeClock,
) -> None:
    status, empty = await call(client, "GET", "/queue")
    assert (status, empty) == (200, {"length": 0, "wait_estimate_seconds": 180.0,  # the default
                                     "open_now": True, "opens_at": None, "items": [],
                                     "desks": {}})
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:9", clock)
    clock.advance(60)
    assert (await service.claim("tg:9", ANN)).ok  # one measured wait: 60 s
    for conv, priority in [("tg:1", "normal"), ("tg:2", "urgent"), ("tg:3", "normal")]:
        await enqueue(redis, keys, conv, clock, priority=priority)
        clock.advance(30)
    status, queue = await call(client, "GET", "/queue?limit=2")
    assert status == 200
    assert queue["length"] == 3
    # A new normal customer would be 4th, with one free operator: 4 rounds of the 60 s median.
    assert queue["wait_estimate_seconds"] == await service.estimate_for("normal") == 240.0
    assert [(i["position"], i["conversation"]["id"], i["waited_seconds"])
            for i in queue["items"]] == [(1, "tg:2", 60.0), (2, "tg:1", 90.0)]


async def test_the_queue_says_when_the_team_opens(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock, store: ConversationStore
) -> None:
    hours = BusinessHours.parse("mon-fri 09:00-18:00", "UTC")
    service = make_service(redis, keys, clock, hours=hours)
    clock.set(datetime(2026, 9, 26, 12, 0, tzinfo=timezone.utc))  # a Saturday
    root = web.Application()
    root.add_subapp(PREFIX, create_api_app(service, store, token=TOKEN))
    async with TestClient(TestServer(root, host="127.0.0.1")) as client:
        status, queue = await call(client, "GET", "/queue")
    assert (status, queue["open_now"]) == (200, False)
    assert datetime.fromisoformat(queue["opens_at"]) == datetime(2026, 9, 28, 9, 0,
                                                                 tzinfo=timezone.utc)


async def test_metrics_are_prometheus_text(client: Client, queued: None) -> None:
    await call(client, "GET", "/queue")
    async with client.get(f"{PREFIX}/metrics", headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    assert "# TYPE supportbot_api_requests_total counter" in text
    assert 'supportbot_api_requests_total{route="queue",status="200"}' in text


# --- the document -----------------------------------------------------------------------------
async def test_openapi_is_public_and_matches_the_routes(
    client: Client, service: HandoffService, store: ConversationStore
) -> None:
    async with client.get(f"{PREFIX}/openapi.json") as response:  # no token
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": PREFIX}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer"}
    routes = {(method.lower(), path) for method, path in _routes(service, store)}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == routes
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    for path, item in document["paths"].items():
        for operation in item.values():
            assert "200" in operation["responses"], path
            if "security" not in operation:  # protected: the 401 is documented
                assert "401" in operation["responses"], path
    _assert_refs_resolve(document, document)


def _assert_refs_resolve(node: Any, document: dict[str, Any]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target: Any = document
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            assert isinstance(target, dict), ref
        for value in node.values():
            _assert_refs_resolve(value, document)
    elif isinstance(node, list):
        for value in node:
            _assert_refs_resolve(value, document)
