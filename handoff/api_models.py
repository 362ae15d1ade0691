"""Request and response bodies of the HTTP API (handoff/api.py).

Pydantic models serve twice: they validate what clients send and shape what the API answers, and
their JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1) become the components of
`/openapi.json`, so the document cannot drift from what the handlers accept and return.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handoff.config import MAX_CAPACITY

# `channel:peer` for conversations (`tg:42`, `vk:2000000001`) and `channel:user` or `api:name`
# for operators (`tg:1001`, `api:crm`); see docs/handoff.md, "Identities".
ID_PATTERN = r"^[a-z]+:[0-9A-Za-z_-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
TEXT_MAX = 4096  # Telegram's limit for one message; VK's is larger
REASON_MAX = 500
NAME_MAX = 64
LIST_LIMIT_MAX = 500
TRANSCRIPT_MAX = 200  # the store keeps at most this many entries (Limits.transcript_max)
TAG_PATTERN = r"^#?[\w-]{1,32}$"  # what /tag takes at the desk, without its commas
TAGS_MAX = 20

OperatorId = Annotated[str, Field(pattern=ID_PATTERN, examples=["api:crm", "tg:1001"])]
ListState = Literal["queued", "assigned", "bot"]


class _Body(BaseModel):
    # Strict: `"operator": 5` is a client mistake to report, not a string to invent. Unknown
    # fields are refused too, so a typo such as `reasn` does not silently drop the reason.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ClaimBody(_Body):
    operator: OperatorId


class ReplyBody(_Body):
    operator: OperatorId
    text: str = Field(min_length=1, max_length=TEXT_MAX)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value


class _ActBody(_Body):
    by: OperatorId
    # The token holder is trusted like a supervisor: `force` acts on a conversation someone
    # else owns (the journal still names `by` as the actor).
    force: bool = False


class TransferBody(_ActBody):
    # Required but nullable: `null` puts the conversation back into the queue, and that should
    # be said out loud rather than be what a forgotten field means.
    to: OperatorId | None
    reason: str = Field(default="", max_length=REASON_MAX)


class CloseBody(_ActBody):
    reason: str = Field(default="", max_length=REASON_MAX)


class ReturnToBotBody(_ActBody):
    reason: str = Field(default="", max_length=REASON_MAX)


class NoteBody(ReplyBody):
    """An internal note: the same shape as a reply, never sent to the customer."""


class TagsBody(_Body):
    by: OperatorId
    tags: list[Annotated[str, Field(pattern=TAG_PATTERN)]] = Field(
        min_length=1, max_length=TAGS_MAX,
        description="Words of letters, digits, `_` or `-`, up to 32 characters each")


class BanBody(_ActBody):
    reason: str = Field(default="", max_length=REASON_MAX)


class UnbanBody(_Body):
    by: OperatorId
    reason: str = Field(default="", max_length=REASON_MAX)


class StatusBody(_Body):
    status: Literal["online", "paused", "offline"]
    capacity: int | None = Field(default=None, ge=1, le=MAX_CAPACITY,
                                 description="Parallel conversations; null keeps the stored one")
    name: str = Field(default="", max_length=NAME_MAX)
    username: str = Field(default="", max_length=NAME_MAX)


# --- responses ----------------------------------------------------------------------------


class ErrorOut(BaseModel):
    error: str = Field(description="A refusal code (409) or a reason for a human (400)")
    state: str | None = Field(default=None, description="409: the conversation's state now")
    owner: str | None = Field(default=None, description="409: the current owner, e.g. `taken`")
    detail: str | None = Field(default=None, description="409: e.g. `5/5` for `capacity`")


class Profile(BaseModel):
    user_id: str
    first_name: str = ""
    last_name: str = ""
    username: str = ""
    language_code: str = ""


class HandoffInfo(BaseModel):
    reason: str
    priority: str
    tags: list[str]
    queued_at: float | None
    assigned_at: float | None
    escalated: bool
    reminded: bool
    customer_waiting_since: float | None
    first_response_at: float | None


class ConversationSummary(BaseModel):
    id: str
    state: str
    version: int
    owner: str | None
    handoff: HandoffInfo | None = Field(description="Present while queued or assigned")
    profile: Profile | None
    desk: int | None = Field(default=None, description=(
        "The desk group (its configured chat id) the conversation was routed to, with several "
        "desks (OPERATOR_CHAT_IDS); null until the desk first showed it"))


class ConversationList(BaseModel):
    state: ListState
    count: int
    conversations: list[ConversationSummary]


class ConversationDetail(ConversationSummary):
    banned: bool
    unreachable: str
    handoffs: int
    closed: int
    queue_position: int | None
    transcript: list[dict[str, Any]] = Field(
        description="The last entries, oldest first: `{at, dir: in|out|system, text, ...}`"
    )
    history: list[dict[str, Any]] = Field(
        description="Closed handoffs, oldest first: opened, claimed, closed, owner, reason, ..."
    )


class QueueItem(BaseModel):
    position: int = Field(description="1-based place in the queue")
    conversation: ConversationSummary
    waited_seconds: float | None


class QueueOut(BaseModel):
    length: int = Field(description="The whole queue; `items` holds the first `limit`")
    wait_estimate_seconds: float = Field(
        description="What a customer handed off now (normal priority) is told: recent waits "
                    "(the configured default before any was measured) and free operators; "
                    "the time until opening is not included"
    )
    open_now: bool = Field(description="Within business hours (always true without them)")
    opens_at: datetime | None = Field(description="While closed: the next opening (UTC)")
    items: list[QueueItem]
    desks: dict[str, int] = Field(default_factory=dict, description=(
        "Queue length per desk group (chat id), with several desks; conversations not routed "
        "yet under \"none\""))


class TransitionOut(BaseModel):
    ok: Literal[True] = True
    conversation: ConversationSummary


class ReplyOut(TransitionOut):
    message_id: str = Field(description="Id of the message put into the customer outbox")


class OperatorOut(BaseModel):
    id: str
    status: str
    capacity: int
    load: int = Field(description="Conversations assigned right now")
    name: str
    username: str
    status_since: float
    shift: str = Field(default="", description=(
        "Working hours with an optional time zone and days off, e.g. 'Asia/Vladivostok "
        "mon-fri 09:00-18:00; except 2027-01-01'; empty: none (status by /online, /offline)"))
    on_shift: bool | None = Field(default=None, description=(
        "Whether the shift's hours are on now; null without a shift"))


class OperatorList(BaseModel):
    operators: list[OperatorOut]


class NoteOut(BaseModel):
    ok: Literal[True] = True
    conversation: str
    entry: dict[str, Any] = Field(description="The transcript entry: `{at, dir: note, text, "
                                              "operator}`")


class TagsOut(TransitionOut):
    tags: list[str] = Field(description="All the handoff's tags now, in order")


class TemplateOut(BaseModel):
    name: str
    text: str


class TemplateList(BaseModel):
    templates: list[TemplateOut]


class HourOut(BaseModel):
    start: float = Field(description="The hour's start, epoch seconds")
    taken: int
    closed: int
    returned: int
    transferred: int
    first_reaction_count: int
    first_reaction_p50: float | None = Field(description="Seconds; null: none measured")
    first_reaction_p90: float | None
    csat_ratings: int
    csat_average: float | None


class HourlyReport(BaseModel):
    period: dict[str, Any] = Field(description="`{start, end, label, zone}`: as in the "
                                               "operators' report, with its time zone")
    hours: list[HourOut]
