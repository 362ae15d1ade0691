"""The HTTP API for other desks and integrations (aiohttp), behind a bearer token.

Every change goes through `HandoffService`, i.e. the same Lua transitions the Telegram desk
uses, so an API client and an operator tapping Take race fairly and the journal names the API
client as the actor. This module maps requests to service calls and outcomes to status codes;
plumbing is in handoff/api_http.py, read views in handoff/api_read.py, bodies in
handoff/api_models.py, the document in handoff/openapi.py, usage in docs/api.md.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import date
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfoNotFoundError

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handoff.access import ROLES, Access
from handoff.api_http import (
    ApiError,
    Body,
    actor_of,
    auth_middleware,
    error_middleware,
    int_query,
    json_body,
    json_response,
    path_id,
)
from handoff.api_models import (
    LIST_LIMIT_MAX,
    TRANSCRIPT_MAX,
    BanBody,
    ClaimBody,
    CloseBody,
    ConversationList,
    ConversationSummary,
    HourlyReport,
    HourOut,
    ListState,
    NoteBody,
    NoteOut,
    OperatorList,
    OperatorOut,
    QueueOut,
    ReplyBody,
    ReplyOut,
    ReturnToBotBody,
    StatusBody,
    TagsBody,
    TagsOut,
    TemplateList,
    TemplateOut,
    TransferBody,
    TransitionOut,
    UnbanBody,
)
from handoff.api_notices import NoticeApi
from handoff.api_read import ConversationReader
from handoff.audit import COLUMNS as AUDIT_COLUMNS
from handoff.audit import (
    LIMIT_MAX,
    STREAM_ID_RE,
    DeadLetters,
    JournalQuery,
    moments,
    read_journal,
)
from handoff.clock import Clock, as_datetime
from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage
from handoff.hours import HoursError
from handoff.openapi import build_openapi
from handoff.records import COLUMNS as RECORD_COLUMNS
from handoff.records import LIMIT_MAX as RECORDS_MAX
from handoff.records import RecordQuery, Records
from handoff.report_hours import COLUMNS as HOUR_COLUMNS
from handoff.report_hours import hour_rows, read_hours
from handoff.reports import COLUMNS, ReportError, ReportPeriod, as_json, read_report, rows
from handoff.service import HandoffService, Operator, Transition
from handoff.shifts import Shifts
from handoff.stats import (
    MAX_DAYS,
    Period,
    PeriodError,
    StatsOut,
    bot_counters,
    period_of,
    stats_out,
)
from handoff.team_metrics import TEAM
from handoff.tokens import ApiTokens

#: The trainers' report over a period; the runtime passes one that adds the unrecognized
#: themes (grouping texts needs the NLU, which handoff/ does not import).
StatsSource = Callable[[Period], Awaitable[StatsOut]]

PREFIX = "/api/v1"


class CustomerNotices(Protocol):
    """What the customer is told when an API client acts. The words live in bots/texts.py,
    which handoff/ must not import, so the runtime passes the same notices the desk sends."""

    def joined(self, conv: str, operator: str, name: str = "") -> Sequence[OutboundMessage]:
        ...

    def closed(self, conv: str) -> Sequence[OutboundMessage]: ...

    def back_to_bot(self, conv: str) -> Sequence[OutboundMessage]: ...

    def transferred_to_queue(self, conv: str) -> Sequence[OutboundMessage]: ...

    def requeued(self, conv: str) -> Sequence[OutboundMessage]: ...


class DeskEcho(Protocol):
    """What the operators' desk shows when an API client acts: the same card, topic state,
    queue summary and replies as when someone acts in the group. Rendered in bots/ (like the
    notices); posted after the transition, as the scheduler does: each item re-renders the
    conversation's current state when sent, so a late or repeated one is never wrong."""

    def changed(self, conv: str, priority: str) -> Sequence[OutboundMessage]: ...

    def replied(self, conv: str, operator: str, text: str) -> Sequence[OutboundMessage]: ...

    def operators_changed(self) -> Sequence[OutboundMessage]: ...


@runtime_checkable
class NoteEcho(Protocol):
    """A desk that also shows operators' notes made outside it (the console's does)."""

    def noted(self, conv: str, operator: str, text: str) -> Sequence[OutboundMessage]: ...


class TemplateSource(Protocol):
    """The operators' reply templates (bots/desk/templates.py, which handoff/ does not import):
    (name, text) pairs in the order operators see them."""

    def items(self) -> list[tuple[str, str]]: ...


class NoDesk:
    """No operators' desk configured: nothing to show."""

    def changed(self, conv: str, priority: str) -> Sequence[OutboundMessage]:
        return ()

    def replied(self, conv: str, operator: str, text: str) -> Sequence[OutboundMessage]:
        return ()

    def operators_changed(self) -> Sequence[OutboundMessage]:
        return ()


class Silent:
    """No notices: for tests and for integrations that talk to the customer themselves."""

    def joined(self, conv: str, operator: str, name: str = "") -> Sequence[OutboundMessage]:
        return ()

    def closed(self, conv: str) -> Sequence[OutboundMessage]:
        return ()

    def back_to_bot(self, conv: str) -> Sequence[OutboundMessage]:
        return ()

    def transferred_to_queue(self, conv: str) -> Sequence[OutboundMessage]:
        return ()

    def requeued(self, conv: str) -> Sequence[OutboundMessage]:
        return ()


def create_api_app(
    service: HandoffService, store: ConversationStore, *, token: str | None = None,
    clock: Clock | None = None, notices: CustomerNotices | None = None,
    stats: StatsSource | None = None, desk: DeskEcho | None = None,
    dead_letters: DeadLetters | None = None, tokens: ApiTokens | None = None,
    access: Access | None = None, auth: Middleware | None = None,
    templates: TemplateSource | None = None,
) -> web.Application:
    """The API as an aiohttp application, to be mounted with `add_subapp(PREFIX, app)`.

    Auth is the bearer `token` (API_TOKEN) and the role `tokens`, or another strategy: `auth`,
    a middleware that lets a request through only when it may use the route and sets the acting
    operator on it (handoff/api_http.py, `Actor`; the console's sessions). Without either the
    app is refused: there is never an open API. `clock` defaults to the service's, so waits
    shown match its own.
    """
    if auth is None and not token:
        raise ValueError("the HTTP API needs a token (API_TOKEN); leave it unmounted without one")
    api = _Api(service, store, clock or service.clock, notices or Silent(), desk or NoDesk(),
               dead_letters, access, stats=stats, templates=templates)
    guard = auth or auth_middleware(token or "", tokens)
    app = web.Application(middlewares=[error_middleware, guard])
    conv = "/conversations/{conv}"
    app.add_routes([
        web.get("/conversations", api.list_conversations, name="list"),
        web.get(conv, api.read, name="read"),
        web.post(f"{conv}/claim", api.claim, name="claim"),
        web.post(f"{conv}/reply", api.reply, name="reply"),
        web.post(f"{conv}/transfer", api.transfer, name="transfer"),
        web.post(f"{conv}/close", api.close, name="close"),
        web.post(f"{conv}/return-to-bot", api.return_to_bot, name="return_to_bot"),
        web.post(f"{conv}/note", api.note, name="note"),
        web.post(f"{conv}/tags", api.tags, name="tags"),
        web.post(f"{conv}/ban", api.ban, name="ban"),
        web.post(f"{conv}/unban", api.unban, name="unban"),
        web.get("/templates", api.list_templates, name="templates"),
        web.get("/queue", api.queue, name="queue"),
        web.get("/operators", api.operators, name="operators"),
        web.post("/operators/{op}/status", api.set_status, name="operator_status"),
        web.put("/operators/{op}/shift", api.set_shift, name="operator_shift"),
        web.get("/stats", api.stats, name="stats"),
        web.get("/reports/operators", api.operator_report, name="operator_report"),
        web.get("/reports/hourly", api.hourly_report, name="hourly_report"),
        web.get("/journal", api.journal, name="journal"),
        web.get("/records", api.records, name="records"),
        web.get(f"{conv}/handoffs/{{closed}}", api.record_export, name="record_export"),
        web.get("/dead-letters", api.dead_letters, name="dead_letters"),
        web.get("/roles", api.roles, name="roles"),
        web.post("/roles/{op}/grant", api.grant_role, name="grant_role"),
        web.post("/roles/{op}/revoke", api.revoke_role, name="revoke_role"),
        web.post("/dead-letters/{letter}/requeue", api.requeue, name="requeue"),
        web.get("/metrics", api.metrics, name="metrics"),
        web.get("/openapi.json", _openapi, name="openapi"),
    ])
    NoticeApi(service.redis, service.keys).mount(app)  # /notices (handoff/api_notices.py)
    return app


class _Api:
    def __init__(self, service: HandoffService, store: ConversationStore, clock: Clock,
                 notices: CustomerNotices, desk: DeskEcho,
                 dead_letters: DeadLetters | None = None, access: Access | None = None, *,
                 stats: StatsSource | None = None, templates: TemplateSource | None = None
                 ) -> None:
        self._service = service
        self._letters = dead_letters
        self._access = access
        self._store = store
        self._notices = notices
        self._desk = desk
        self._clock = clock
        self._reader = ConversationReader(service.redis, service.keys, clock)
        self._records = Records(service.redis, service.keys, store)
        # The trainers' report when the runtime has it, else the counters alone.
        self.stats_source: StatsSource = stats or self.counters_only
        self.templates = templates

    # --- reads ----------------------------------------------------------------------------
    async def list_conversations(self, request: web.Request) -> web.Response:
        state = request.query.get("state")
        limit = int_query(request, "limit", 100, 1, LIST_LIMIT_MAX)
        if state == "bot":
            # No index of bot conversations exists (that is every customer who ever wrote),
            # and the API never scans live keys to build one.
            raise ApiError(400, "listing bot conversations is not supported")
        if state == "queued":
            return _listed("queued", await self._reader.queued(limit))
        if state == "assigned":
            return _listed("assigned", await self._reader.assigned(limit))
        raise ApiError(400, "state must be one of queued, assigned")

    async def read(self, request: web.Request) -> web.Response:
        conv = path_id(request, "conv", "conversation")
        last = int_query(request, "transcript", 50, 0, TRANSCRIPT_MAX)
        detail = await self._reader.detail(conv)
        if detail is None:
            raise ApiError(404, "unknown conversation")
        if last > 0:  # the store reads "the last 0" as the whole list
            transcript = await self._store.transcript(conv, last)
            detail = detail.model_copy(update={"transcript": transcript})
        return json_response(detail)

    async def queue(self, request: web.Request) -> web.Response:
        limit = int_query(request, "limit", 100, 1, LIST_LIMIT_MAX)
        desk = request.query.get("desk")
        if desk is not None and not desk.lstrip("-").isdigit():
            raise ApiError(400, "desk must be a desk group's chat id")
        length, items, desks = await self._reader.queue(
            limit, int(desk) if desk is not None else None)
        estimate = await self._service.estimate_for("normal")
        now = as_datetime(self._clock.now())
        hours = self._service.config.hours_for(desk)
        open_now = hours is None or hours.is_open(now)
        return json_response(QueueOut(
            length=length, wait_estimate_seconds=estimate, open_now=open_now,
            opens_at=None if open_now or hours is None else hours.next_open(now), items=items,
            desks=desks,
        ))

    async def operators(self, _request: web.Request) -> web.Response:
        found = await self._service.operators()
        return json_response(OperatorList(operators=[
            _operator(op, self._service.shifts, self._clock.now()) for op in found]))

    async def stats(self, request: web.Request) -> web.Response:
        since, until = _date_query(request, "since"), _date_query(request, "until")
        days = int_query(request, "days", 0, 1, MAX_DAYS) if "days" in request.query else None
        today = as_datetime(self._clock.now()).date()
        try:
            period = period_of(since, until, days, today)
        except PeriodError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(await self.stats_source(period))

    async def operator_report(self, request: web.Request) -> web.Response:
        """The team's report over `period` (today, yesterday, 7d, 30d) or `from`..`to` (dates,
        both included), in the team's time zone or `tz`; `format=csv` for a spreadsheet."""
        period, _zone = self._period(request)
        report = await read_report(self._service.redis, self._service.keys, period,
                                   self._clock.now())
        if request.query.get("format", "json") == "csv":
            return _csv([list(COLUMNS), *rows(report)])
        return web.json_response(as_json(report))

    async def hourly_report(self, request: web.Request) -> web.Response:
        """The team's figures per hour of the period (as the operators' report takes it), for
        charts: taken, closed, returned, transferred, first reaction p50/p90, CSAT."""
        period, zone = self._period(request)
        try:
            hours = await read_hours(self._service.redis, self._service.keys, period,
                                     self._clock.now())
        except ReportError as exc:
            raise ApiError(400, f"period: {exc}") from None
        if request.query.get("format", "json") == "csv":
            return _csv([list(HOUR_COLUMNS), *hour_rows(hours, zone)])
        return json_response(HourlyReport(
            period={"start": period.start, "end": period.end, "label": period.label,
                    "zone": zone},
            hours=[HourOut.model_validate(asdict(hour)) for hour in hours]))

    def _period(self, request: web.Request) -> tuple[ReportPeriod, str]:
        """`period` (today, yesterday, 7d, 30d) or `from`..`to`, in `tz` or the team's zone."""
        zone = request.query.get("tz") or self._zone()
        try:
            period = ReportPeriod.parse(request.query.get("period"), request.query.get("from"),
                                        request.query.get("to"), zone, self._clock.now())
        except (ReportError, ZoneInfoNotFoundError, ValueError) as exc:
            raise ApiError(400, f"period: {exc}") from None
        return period, zone

    async def list_templates(self, _request: web.Request) -> web.Response:
        if self.templates is None:
            raise ApiError(404, "templates are not kept here")
        return json_response(TemplateList(templates=[
            TemplateOut(name=name, text=text) for name, text in self.templates.items()]))

    async def metrics(self, _request: web.Request) -> web.Response:
        await TEAM.refresh(self._service, self._clock.now())
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def journal(self, request: web.Request) -> web.Response:
        """Transitions newest first, by `operator`, `conversation`, `action`, `since`/`until`
        (epoch seconds or ISO 8601; a date or a time without an offset is in the team's time
        zone), `limit`; `format=csv`."""
        query = request.query
        try:
            between = moments(query.get("since"), query.get("until"), self._zone())
            wanted = JournalQuery(
                operator=query.get("operator"), conversation=query.get("conversation"),
                action=query.get("action"), limit=int_query(request, "limit", 100, 1, LIMIT_MAX),
                **between)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        entries = await read_journal(self._service.redis, self._service.keys, wanted)
        if query.get("format", "json") == "csv":
            return _csv([list(AUDIT_COLUMNS), *(entry.row() for entry in entries)])
        return web.json_response({"entries": [
            dict(zip(AUDIT_COLUMNS, entry.row()[:-1], strict=False)) | {"details": entry.details}
            for entry in entries]})

    async def records(self, request: web.Request) -> web.Response:
        """Finished handoffs newest first, searched by `customer`, `operator`, `tag`, `rating`,
        `text` (words said during the handoff) and `since`/`until`; `format=csv`."""
        query = request.query
        try:
            between = moments(query.get("since"), query.get("until"), self._zone())
            rating = int_query(request, "rating", 0, 1, 5) if "rating" in query else None
            wanted = RecordQuery(
                customer=query.get("customer"), operator=query.get("operator"),
                tag=query.get("tag"), rating=rating, text=query.get("text"),
                limit=int_query(request, "limit", 50, 1, RECORDS_MAX), **between)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        found = await self._records.search(wanted)
        if query.get("format", "json") == "csv":
            return _csv([list(RECORD_COLUMNS), *(record.row() for record in found)])
        return web.json_response({"records": [asdict(record) for record in found]})

    async def record_export(self, request: web.Request) -> web.Response:
        """One finished handoff with everything said during it (the archive included)."""
        conv = path_id(request, "conv", "conversation")
        try:
            closed = float(request.match_info["closed"])
        except ValueError:
            raise ApiError(400, "closed is the handoff's close time, epoch seconds") from None
        record = await self._records.record(conv, closed)
        if record is None:
            raise ApiError(404, "no such handoff in the conversation's history")
        return web.json_response(await self._records.export(record))

    async def dead_letters(self, request: web.Request) -> web.Response:
        letters = await self._dead_letters().list(int_query(request, "limit", 100, 1, 1000))
        return web.json_response({"dead_letters": [
            {"id": d.id, "conversation": d.conversation, "stream": d.stream, "entry": d.entry,
             "error": d.error} for d in letters]})

    async def requeue(self, request: web.Request) -> web.Response:
        letter = request.match_info["letter"]
        if not STREAM_ID_RE.fullmatch(letter):
            raise ApiError(400, "a dead letter id looks like 1765000000000-0")
        body = await _small_json(request)
        entry = await self._dead_letters().requeue(letter, _by(request, body),
                                                   self._clock.now())
        if entry is None:
            raise ApiError(404, "no such dead letter (or its event is unreadable)")
        return web.json_response({"requeued": letter, "entry": entry})

    async def set_shift(self, request: web.Request) -> web.Response:
        """`{"shift": "Asia/Vladivostok mon-fri 09:00-18:00", "by": "..."}`, or `""` for
        none (handoff/shifts.py); journaled with `by`."""
        op = path_id(request, "op", "operator")
        body = await _small_json(request)
        spec = body.get("shift")
        if not isinstance(spec, str):
            raise ApiError(400, "shift must be a string such as 'Europe/Moscow mon-fri "
                                "09:00-18:00' (empty: no shift)")
        try:
            await self._service.shifts.set(op, spec, _by(request, body))
        except HoursError as exc:
            raise ApiError(400, f"shift: {exc}") from None
        found = await self._service.operator(op)
        assert found is not None  # the shift script registers the operator
        await self._echo(self._desk.operators_changed())
        return json_response(_operator(found, self._service.shifts, self._clock.now()))

    async def roles(self, _request: web.Request) -> web.Response:
        access = self._needs_access()
        return web.json_response({"roles": {role: sorted(await access.members(role))
                                            for role in ROLES},
                                  "revoked": sorted(await access.revoked())})

    async def grant_role(self, request: web.Request) -> web.Response:
        """`{"role": "operator|supervisor|trainer", "by": "..."}`: journaled with `by`."""
        op = path_id(request, "op", "operator")
        body = await _small_json(request)
        role = body.get("role")
        if role not in ROLES:
            raise ApiError(400, f"role must be one of {', '.join(ROLES)}")
        new = await self._needs_access().grant(op, role, _by(request, body))
        return web.json_response({"operator": op, "role": role, "added": new})

    async def revoke_role(self, request: web.Request) -> web.Response:
        """Access gone at once: roles, status, and the operator's conversations back to the
        queue (the customers told, the desk's cards redrawn); journaled with `by`."""
        op = path_id(request, "op", "operator")
        body = await _small_json(request)
        reason = str(body.get("reason") or "по решению руководителя")
        moved = await self._needs_access().revoke_and_requeue(
            self._service, op, _by(request, body), reason, self._notices.requeued)
        for transition in moved:
            priority = (await self._store.load(transition.conv)).priority
            await self._store.post_desk(list(self._desk.changed(transition.conv, priority)))
        return web.json_response({"operator": op, "requeued": [t.conv for t in moved]})

    async def _name(self, op: str) -> str:
        """An operator's name as customers see it ("" when they never gave one)."""
        found = await self._service.operator(op)
        return found.name if found else ""

    def _needs_access(self) -> Access:
        if self._access is None:
            raise ApiError(404, "roles are not kept here")
        return self._access

    def _dead_letters(self) -> DeadLetters:
        if self._letters is None:
            raise ApiError(404, "dead letters are not available here")
        return self._letters

    def _zone(self) -> str:
        return self._service.config.timezone

    async def counters_only(self, period: Period) -> StatsOut:
        """Without the trainers' source: the counters, no themes."""
        return stats_out(period, await bot_counters(self._service.redis, self._service.keys,
                                                    period), [])

    # --- changes --------------------------------------------------------------------------
    async def set_status(self, request: web.Request) -> web.Response:
        op = path_id(request, "op", "operator")
        actor = actor_of(request)
        if actor is not None and op != actor.operator and not actor.supervisor:
            raise ApiError(403, "forbidden: an operator sets their own status only")
        body = await json_body(request, StatusBody)
        found = await self._service.set_status(
            op, body.status, name=body.name, username=body.username, capacity=body.capacity
        )
        await self._echo(self._desk.operators_changed())
        return json_response(_operator(found, self._service.shifts, self._clock.now()))

    async def claim(self, request: web.Request) -> web.Response:
        conv, body = await self._target(request, ClaimBody)
        # The customer hears the operator's name, as when they are taken at the desk.
        notices = self._notices.joined(conv, body.operator, await self._name(body.operator))
        result = await self._service.claim(conv, body.operator, notices=notices)
        return await self._done(conv, result)

    async def reply(self, request: web.Request) -> web.Response:
        conv, body = await self._target(request, ReplyBody)
        result = await self._service.reply(conv, body.operator, body.text)
        _raise_refused(result)
        await self._echo(self._desk.replied(conv, body.operator, body.text))
        return json_response(
            ReplyOut(conversation=await self._after(conv), message_id=result.message_id)
        )

    async def transfer(self, request: web.Request) -> web.Response:
        conv, body = await self._target(request, TransferBody)
        # The customer hears who joined, or that they are back in the queue, as from the desk.
        notices = (self._notices.joined(conv, body.to, await self._name(body.to)) if body.to
                   else self._notices.transferred_to_queue(conv))
        result = await self._service.transfer(
            conv, body.by, body.to, reason=body.reason, force=body.force, notices=notices
        )
        return await self._done(conv, result)

    async def close(self, request: web.Request) -> web.Response:
        conv, body = await self._target(request, CloseBody)
        result = await self._service.close(
            conv, body.by, body.reason, force=body.force, notices=self._notices.closed(conv)
        )
        return await self._done(conv, result)

    async def return_to_bot(self, request: web.Request) -> web.Response:
        conv, body = await self._target(request, ReturnToBotBody)
        result = await self._service.return_to_bot(
            conv, body.by, body.reason, force=body.force,
            notices=self._notices.back_to_bot(conv),
        )
        return await self._done(conv, result)

    async def note(self, request: web.Request) -> web.Response:
        """An internal note in the transcript: never sent to the customer; journaled (`note`)
        and shown in the desk's topic when the desk shows notes (`NoteEcho`)."""
        conv, body = await self._target(request, NoteBody)
        now = self._clock.now()
        entry = {"at": now, "dir": "note", "text": body.text, "operator": body.operator}
        written = await self._service.scripts["note"](
            keys=[self._service.keys.conversation(conv), self._service.keys.transcript(conv),
                  self._service.keys.journal()],
            args=[json.dumps({"conv": conv, "op": body.operator, "at": repr(round(now, 6)),
                              "entry": json.dumps(entry, ensure_ascii=False),
                              "transcript_max": self._service.config.transcript_max,
                              "journal_maxlen": self._service.config.journal_maxlen},
                             ensure_ascii=False)])
        if not written:
            raise ApiError(404, "unknown conversation")
        if isinstance(self._desk, NoteEcho):
            await self._echo(self._desk.noted(conv, body.operator, body.text))
        return json_response(NoteOut(conversation=conv, entry=entry))

    async def tags(self, request: web.Request) -> web.Response:
        """Tags of the current handoff (as `/tag` at the desk): a conversation with the bot has
        none to tag, since its next handoff sets its own."""
        conv, body = await self._target(request, TagsBody)
        before = await self._after(conv)
        if before.state == "bot":
            raise ApiError(409, "wrong_state", state="bot",
                           detail="tags belong to an open handoff")
        joined = await self._store.add_tags(conv, body.by, [t.lstrip("#") for t in body.tags])
        after = await self._after(conv)
        priority = after.handoff.priority if after.handoff else "normal"
        await self._echo(self._desk.changed(conv, priority))
        return json_response(TagsOut(conversation=after,
                                     tags=[tag for tag in joined.split(",") if tag]))

    async def ban(self, request: web.Request) -> web.Response:
        """The handoff (if any) ends and the customer's messages are only recorded until an
        unban; the customer is not told (docs/desk.md, `/ban`)."""
        conv, body = await self._target(request, BanBody)
        result = await self._service.ban(conv, body.by, body.reason or "ban (API)",
                                         force=body.force)
        return await self._done(conv, result)

    async def unban(self, request: web.Request) -> web.Response:
        conv, body = await self._target(request, UnbanBody)
        result = await self._service.unban(conv, body.by, reason=body.reason)
        return await self._done(conv, result)

    async def _target(self, request: web.Request, model: type[Body]) -> tuple[str, Body]:
        """The checked id and body of a transition, or a 400/404 before anything is touched."""
        conv = path_id(request, "conv", "conversation")
        body = await json_body(request, model)
        if not await self._reader.exists(conv):
            raise ApiError(404, "unknown conversation")
        return conv, body

    async def _done(self, conv: str, result: Transition) -> web.Response:
        _raise_refused(result)
        after = await self._after(conv)
        priority = after.handoff.priority if after.handoff else "normal"
        await self._echo(self._desk.changed(conv, priority))
        return json_response(TransitionOut(conversation=after))

    async def _echo(self, items: Sequence[OutboundMessage]) -> None:
        if items:
            await self._store.post_desk(items)

    async def _after(self, conv: str) -> ConversationSummary:
        """The conversation as it is now (a later change may already show: that is the truth)."""
        summary = await self._reader.summary(conv)
        if summary is None:  # conversations are never deleted: only a flushed Redis gets here
            raise RuntimeError(f"{conv} vanished right after a transition")
        return summary


def _by(request: web.Request, body: dict[str, Any]) -> str:
    """Who acts, for the journal: the signed-in operator, else the body's `by` (or "api")."""
    actor = actor_of(request)
    return actor.operator if actor is not None else str(body.get("by") or "api")


async def _small_json(request: web.Request) -> dict[str, Any]:
    """An optional JSON object body (`{}` when empty)."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _csv(table: list[list[str]]) -> web.Response:
    text = io.StringIO()
    csv.writer(text).writerows(table)
    return web.Response(text=text.getvalue(), content_type="text/csv", charset="utf-8")


def _date_query(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a date, YYYY-MM-DD") from None


def _listed(state: ListState, found: list[ConversationSummary]) -> web.Response:
    return json_response(ConversationList(state=state, count=len(found), conversations=found))


def _raise_refused(result: Transition) -> None:
    """A refusal changed nothing; say why with the service's code and the state as it is."""
    if not result.ok:
        raise ApiError(409, result.error, state=result.state, owner=result.owner,
                       detail=result.detail)


def _operator(op: Operator, shifts: Shifts, now: float) -> OperatorOut:
    on_shift = None
    if op.shift:
        with contextlib.suppress(HoursError):  # a shift stored under other rules: unknown
            on_shift = shifts.parse(op.shift).is_open(as_datetime(now))
    return OperatorOut(id=op.id, status=op.status, capacity=op.capacity, load=op.load,
                       name=op.name, username=op.username, status_since=op.status_since,
                       shift=op.shift, on_shift=on_shift)


async def _openapi(request: web.Request) -> web.Response:
    # Mounted under a prefix, the document names that prefix as its server.
    prefix = request.path[: -len("/openapi.json")]
    return web.json_response(build_openapi(prefix or "/"))
