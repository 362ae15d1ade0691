"""The OpenAPI 3.1 document of the HTTP API, built in code from the models the handlers use.

Served at `/openapi.json`; tests check that its paths and the app's routes are the same set.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from handoff.api_models import (
    ID_PATTERN,
    LIST_LIMIT_MAX,
    TRANSCRIPT_MAX,
    BanBody,
    ClaimBody,
    CloseBody,
    ConversationDetail,
    ConversationList,
    ErrorOut,
    HourlyReport,
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
    TransferBody,
    TransitionOut,
    UnbanBody,
)
from handoff.api_notices import openapi_paths
from handoff.stats import MAX_DAYS, StatsOut

API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
_REQUESTS: tuple[type[BaseModel], ...] = (
    ClaimBody, ReplyBody, TransferBody, CloseBody, ReturnToBotBody, StatusBody, NoteBody,
    TagsBody, BanBody, UnbanBody,
)
_RESPONSES: tuple[type[BaseModel], ...] = (
    ErrorOut, ConversationList, ConversationDetail, QueueOut, TransitionOut, ReplyOut,
    OperatorList, OperatorOut, StatsOut, NoteOut, TagsOut, TemplateList, HourlyReport,
)
_ERRORS = {
    "400": "Bad input: the reason is in `error`; nothing changed",
    "401": "Missing, wrong or revoked bearer token",
    "403": "A token whose role does not reach this endpoint (docs/api.md, \"Tokens\")",
    "404": "Unknown conversation",
    "409": "The transition was refused; nothing changed. `error` is the service's code: "
           "taken, capacity, offline, unknown_operator, wrong_state, not_owner, "
           "same_operator, version",
}


def build_openapi(server_url: str = "/api/v1") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "supportbot handoff API",
            "version": API_VERSION,
            "description": "Conversations, the queue and operator actions for other desks and "
                           "integrations. Every transition goes through the same Redis scripts "
                           "as the Telegram desk. See docs/api.md.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
            "responses": {
                code: _json_response(text, "ErrorOut") for code, text in _ERRORS.items()
            },
            "parameters": {"conv": _conv_parameter()},
        },
    }


def _schemas() -> dict[str, Any]:
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in _REQUESTS),
        *((model, "serialization") for model in _RESPONSES),
    ]
    _, top = models_json_schema(modes, ref_template=REF)
    schemas: dict[str, Any] = top["$defs"]
    return schemas


def _paths() -> dict[str, Any]:
    conv = "/conversations/{conv}"
    return {
        "/conversations": {"get": _list_operation()},
        conv: {"get": _read_operation()},
        f"{conv}/claim": {"post": _action(
            "claimConversation", "Take a queued conversation (first wins, capacity checked)",
            ClaimBody, TransitionOut,
        )},
        f"{conv}/reply": {"post": _action(
            "replyToCustomer", "Send a message to the customer as the owning operator",
            ReplyBody, ReplyOut,
        )},
        f"{conv}/transfer": {"post": _action(
            "transferConversation",
            "Hand an assigned conversation to another operator, or back to the queue (`to: null`)",
            TransferBody, TransitionOut,
        )},
        f"{conv}/close": {"post": _action(
            "closeConversation", "Close: history entry, back to the bot, rating prompt",
            CloseBody, TransitionOut,
        )},
        f"{conv}/return-to-bot": {"post": _action(
            "returnToBot", "Give the conversation back to the bot, without a rating prompt",
            ReturnToBotBody, TransitionOut,
        )},
        f"{conv}/note": {"post": _action(
            "addNote", "An internal note in the transcript, never sent to the customer",
            NoteBody, NoteOut,
        )},
        f"{conv}/tags": {"post": _action(
            "addTags", "Tags of the current handoff (kept unique; 409 while with the bot)",
            TagsBody, TagsOut,
        )},
        f"{conv}/ban": {"post": _action(
            "banCustomer", "End the handoff and record the customer's messages only, without "
            "answering or relaying them, until an unban",
            BanBody, TransitionOut,
        )},
        f"{conv}/unban": {"post": _action(
            "unbanCustomer", "Lift a ban: the bot answers the customer again",
            UnbanBody, TransitionOut,
        )},
        "/templates": {"get": _templates_operation()},
        "/queue": {"get": _queue_operation()},
        "/operators": {"get": _operators_operation()},
        "/operators/{op}/status": {"post": _status_operation()},
        "/stats": {"get": _stats_operation()},
        "/reports/operators": {"get": _operator_report_operation()},
        "/reports/hourly": {"get": _hourly_report_operation()},
        "/journal": {"get": _journal_operation()},
        "/records": {"get": _records_operation()},
        "/conversations/{conv}/handoffs/{closed}": {"get": _record_export_operation()},
        "/dead-letters": {"get": _dead_letters_operation()},
        "/dead-letters/{letter}/requeue": {"post": _requeue_operation()},
        "/operators/{op}/shift": {"put": _shift_operation()},
        "/roles": {"get": _roles_operation()},
        "/roles/{op}/grant": {"post": _grant_operation()},
        "/roles/{op}/revoke": {"post": _revoke_operation()},
        "/metrics": {"get": _metrics_operation()},
        "/openapi.json": {"get": _openapi_operation()},
        **openapi_paths(),  # /notices (handoff/api_notices.py)
    }


def _list_operation() -> dict[str, Any]:
    return {
        "operationId": "listConversations",
        "summary": "List conversations in one state",
        "description": "`queued` in queue order; `assigned` grouped by operator. Listing `bot` "
                       "conversations is not supported (400): there is no index of them.",
        "parameters": [
            _query("state", {"type": "string", "enum": ["queued", "assigned", "bot"]},
                   required=True),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX,
                             "default": 100}),
        ],
        "responses": _responses("ConversationList", "400", "401"),
    }


def _read_operation() -> dict[str, Any]:
    return {
        "operationId": "getConversation",
        "summary": "One conversation with its transcript, profile, handoff fields and history",
        "parameters": [
            {"$ref": "#/components/parameters/conv"},
            _query("transcript", {"type": "integer", "minimum": 0, "maximum": TRANSCRIPT_MAX,
                                  "default": 50}, "How many of the last transcript entries"),
        ],
        "responses": _responses("ConversationDetail", "400", "401", "404"),
    }


def _action(
    operation_id: str, summary: str, body: type[BaseModel], out: type[BaseModel]
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/conv"}],
        "requestBody": _body(body),
        "responses": _responses(out.__name__, "400", "401", "404", "409"),
    }


def _queue_operation() -> dict[str, Any]:
    return {
        "operationId": "getQueue",
        "summary": "Queued conversations in order, with positions and the wait estimate",
        "parameters": [
            _query("limit", {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX,
                             "default": 100}),
            _query("desk", {"type": "integer"}, "Only this desk group's part (its configured "
                   "chat id); `length` and positions are then that desk's"),
        ],
        "responses": _responses("QueueOut", "400", "401"),
    }


def _operators_operation() -> dict[str, Any]:
    return {
        "operationId": "listOperators",
        "summary": "Every operator who ever set a status, with status, capacity and load",
        "responses": _responses("OperatorList", "401"),
    }


def _status_operation() -> dict[str, Any]:
    return {
        "operationId": "setOperatorStatus",
        "summary": "Set an operator online, paused or offline (and capacity, name); an API "
                   "client registers itself this way before it can claim",
        "parameters": [{
            "name": "op", "in": "path", "required": True,
            "description": "Operator id, e.g. `api:crm` or `tg:1001`",
            "schema": {"type": "string", "pattern": ID_PATTERN},
        }],
        "requestBody": _body(StatusBody),
        "responses": _responses("OperatorOut", "400", "401"),
    }


def _stats_operation() -> dict[str, Any]:
    day = {"type": "string", "format": "date"}
    return {
        "operationId": "getTrainerStats",
        "summary": "Trainer analytics over a period: per-intent volume, fallback and "
                   "deflection rates, handoff reasons, top unrecognized themes",
        "description": "Days are UTC and both ends are included. Give `days` (the last N days, "
                       "today included) or `since`/`until`; default: the last 7 days. "
                       f"At most {MAX_DAYS} days. See docs/trainers.md.",
        "parameters": [
            _query("since", day, "First day, YYYY-MM-DD"),
            _query("until", day, "Last day, YYYY-MM-DD (default: today)"),
            _query("days", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
                   "The last N days, today included"),
        ],
        "responses": _responses("StatsOut", "400", "401"),
    }


def _operator_report_operation() -> dict[str, Any]:
    day = {"type": "string", "format": "date"}
    return {
        "operationId": "getOperatorReport",
        "summary": "The team's report over a period: per operator, channel and tag, conversations "
                   "taken, closed, returned, transferred; first reaction, response and handle "
                   "time (p50, p90, average); peak parallel chats; CSAT and comments",
        "description": "Days in the team's time zone (TIMEZONE) or `tz`; `period` or `from`/`to` "
                       "(both included). Durations in seconds, percentiles from histograms (see "
                       "docs/reports.md). `format=csv` gives one row per operator, channel and "
                       "tag.",
        "parameters": [
            _query("period", {"type": "string", "enum": ["today", "yesterday", "7d", "30d"]},
                   "A named period ending today (default: today)"),
            _query("from", day, "First day, YYYY-MM-DD"),
            _query("to", day, "Last day, YYYY-MM-DD (default: today)"),
            _query("tz", {"type": "string"}, "An IANA time zone, e.g. Asia/Vladivostok"),
            _query("format", {"type": "string", "enum": ["json", "csv"], "default": "json"}),
        ],
        "responses": {
            "200": {
                "description": "The report",
                "content": {"application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}}},
            },
            "400": {"$ref": "#/components/responses/400"},
            "401": {"$ref": "#/components/responses/401"},
        },
    }


def _hourly_report_operation() -> dict[str, Any]:
    day = {"type": "string", "format": "date"}
    return {
        "operationId": "getHourlyReport",
        "summary": "The team's figures per hour of a period, for charts: taken, closed, "
                   "returned, transferred; first reaction p50/p90 (seconds); CSAT",
        "description": "The period as for /reports/operators; hourly counters are kept 35 days "
                       "(an older period is a 400). `format=csv` gives one row per hour, the "
                       "hour in the period's time zone.",
        "parameters": [
            _query("period", {"type": "string", "enum": ["today", "yesterday", "7d", "30d"]},
                   "A named period ending today (default: today)"),
            _query("from", day, "First day, YYYY-MM-DD"),
            _query("to", day, "Last day, YYYY-MM-DD (default: today)"),
            _query("tz", {"type": "string"}, "An IANA time zone, e.g. Asia/Vladivostok"),
            _query("format", {"type": "string", "enum": ["json", "csv"], "default": "json"}),
        ],
        "responses": {
            "200": {
                "description": "One entry per hour, oldest first",
                "content": {"application/json": {"schema": {"$ref": REF.format(
                                model="HourlyReport")}},
                            "text/csv": {"schema": {"type": "string"}}},
            },
            "400": {"$ref": "#/components/responses/400"},
            "401": {"$ref": "#/components/responses/401"},
        },
    }


def _templates_operation() -> dict[str, Any]:
    return {
        "operationId": "listTemplates",
        "summary": "The operators' reply templates (name and text), as /templates shows them",
        "responses": _responses("TemplateList", "401", "404"),
    }


def _plain_object(description: str, *errors: str) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": description, "content": {
        "application/json": {"schema": {"type": "object"}}}}}
    out.update({code: {"$ref": f"#/components/responses/{code}"} for code in errors})
    return out


def _listing(description: str, limit_max: int, limit: int) -> tuple[dict[str, Any],
                                                                      list[dict[str, Any]]]:
    """What the journal and the records share: JSON or CSV, a time range, a limit, a format."""
    responses = _plain_object(description, "400", "401")
    responses["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    moment = {"type": "string"}
    return responses, [
        _query("since", moment, "Epoch seconds or ISO 8601 (without an offset: TIMEZONE)"),
        _query("until", moment),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": limit_max,
                         "default": limit}),
        _query("format", {"type": "string", "enum": ["json", "csv"], "default": "json"}),
    ]


def _journal_operation() -> dict[str, Any]:
    responses, common = _listing("The entries", 10000, 100)
    return {
        "operationId": "getJournal",
        "summary": "Transitions newest first: who did what to which conversation, and when",
        "description": "Filters combine. `since`/`until`: epoch seconds or ISO 8601 (a date or a "
                       "time without an offset is in the team's time zone). `format=csv` for a "
                       "spreadsheet. See docs/reports.md.",
        "parameters": [
            _query("operator", {"type": "string"}, "The actor, owner or transfer target"),
            _query("conversation", {"type": "string"}, "e.g. tg:42"),
            _query("action", {"type": "string"}, "claim, reply, close, transfer, rating, …"),
            *common,
        ],
        "responses": responses,
    }


def _records_operation() -> dict[str, Any]:
    responses, common = _listing("The records", 1000, 50)
    return {
        "operationId": "searchRecords",
        "summary": "Finished handoffs newest first: customer, operators, tags, times, rating",
        "description": "Filters combine; `text` matches words said during the handoff (the "
                       "archived transcript included). See docs/reports.md.",
        "parameters": [
            _query("customer", {"type": "string"}, "A conversation id or words of the name"),
            _query("operator", {"type": "string"}, "The owner or who closed it"),
            _query("tag", {"type": "string"}),
            _query("rating", {"type": "integer", "minimum": 1, "maximum": 5}),
            _query("text", {"type": "string"}, "Words said during the handoff, any case"),
            *common,
        ],
        "responses": responses,
    }


def _record_export_operation() -> dict[str, Any]:
    return {
        "operationId": "exportRecord",
        "summary": "One finished handoff with its whole transcript",
        "parameters": [
            {"name": "conv", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "closed", "in": "path", "required": True, "schema": {"type": "number"},
             "description": "The close time, as in the record"},
        ],
        "responses": _plain_object("The record and its transcript", "400", "401", "404"),
    }


def _dead_letters_operation() -> dict[str, Any]:
    return {
        "operationId": "listDeadLetters",
        "summary": "Inbound events the worker gave up on, newest first",
        "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                        "default": 100})],
        "responses": _plain_object("The dead letters", "401"),
    }


def _requeue_operation() -> dict[str, Any]:
    return {
        "operationId": "requeueDeadLetter",
        "summary": "Send a dead letter's event back to be processed again (once)",
        "parameters": [{"name": "letter", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"}}],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"by": {"type": "string"}}}}}},
        "responses": _plain_object("Requeued: the new inbound entry", "400", "401", "404"),
    }


def _op_path() -> dict[str, Any]:
    return {"name": "op", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "An operator id, e.g. tg:9101"}


def _shift_operation() -> dict[str, Any]:
    return {
        "operationId": "setShift",
        "summary": "Set an operator's shift: at its start they go online, at its end offline "
                   "(journaled); an empty shift removes it",
        "parameters": [_op_path()],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["shift"], "properties": {
                "shift": {"type": "string",
                          "example": "Asia/Vladivostok mon-fri 09:00-18:00; except 2027-01-01"},
                "by": {"type": "string"}}}}}},
        "responses": _responses("OperatorOut", "400", "401", "403"),
    }


def _roles_operation() -> dict[str, Any]:
    return {"operationId": "listRoles", "summary": "Who has which desk role, and who is revoked",
            "responses": _plain_object("The roles", "401", "403")}


def _grant_operation() -> dict[str, Any]:
    return {
        "operationId": "grantRole", "summary": "Give an operator a role (journaled)",
        "parameters": [_op_path()],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["role"], "properties": {
                "role": {"type": "string", "enum": ["operator", "supervisor", "trainer"]},
                "by": {"type": "string"}}}}}},
        "responses": _plain_object("Granted", "400", "401", "403"),
    }


def _revoke_operation() -> dict[str, Any]:
    return {
        "operationId": "revokeAccess",
        "summary": "Take an operator's access away at once; their conversations go back to the "
                   "queue (journaled)",
        "parameters": [_op_path()],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"reason": {"type": "string"},
                                             "by": {"type": "string"}}}}}},
        "responses": _plain_object("Revoked: the conversations requeued", "400", "401", "403"),
    }


def _metrics_operation() -> dict[str, Any]:
    return {
        "operationId": "getMetrics",
        "summary": "Prometheus metrics of this process (text exposition format)",
        "responses": {
            "200": {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": {"$ref": "#/components/responses/401"},
        },
    }


def _openapi_operation() -> dict[str, Any]:
    return {
        "operationId": "getOpenApi",
        "summary": "This document; served without a token",
        "security": [],
        "responses": {
            "200": {
                "description": "The OpenAPI 3.1 document",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    }


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }


def _responses(model: str, *errors: str) -> dict[str, Any]:
    out: dict[str, Any] = {"200": _json_response("OK", model)}
    out.update({code: {"$ref": f"#/components/responses/{code}"} for code in errors})
    return out


def _json_response(description: str, model: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
    }


def _query(
    name: str, schema: dict[str, Any], description: str = "", *, required: bool = False
) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required,
                                 "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _conv_parameter() -> dict[str, Any]:
    return {
        "name": "conv", "in": "path", "required": True,
        "description": "Conversation id `channel:peer`, e.g. `tg:42` (`:` may be sent as `%3A`)",
        "schema": {"type": "string", "pattern": ID_PATTERN},
    }
