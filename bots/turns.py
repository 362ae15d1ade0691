"""Deciding what one inbound event does to its conversation (no I/O besides the NLU).

The gate lives here: only a conversation in state `bot` gets NLU + flows; in any other state the
bot stays silent and the message is only recorded, so it never talks over a human.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bots import metrics, texts
from bots.callbacks import CallbackSigner, ForgedCallback
from bots.notice_optout import notices_command
from bots.pace import CustomerPace, Pace
from bots.rules.model import NO_RULES, RuleSet
from bots.rules.turn import answered_publicly, rule_args
from bots.textcap import capped
from bots.vk.wall import REASON as WALL_REASON
from bots.vk.wall import is_wall_handoff, wall_entry, wall_turn
from flows.engine import Button, DialogueState, FlowEngine, Reply, Turn, TurnResult
from handoff.conversations import Conversation, Handoff, desk_priority
from handoff.events import BotTrace, CopyOf, InboundEvent, OutboundMessage, OutButton, Profile
from handoff.links import Links
from nlu.types import NLUBackend, ParseResult

log = logging.getLogger(__name__)

SUMMARY_PRIORITY = 99  # the queue summary waits behind every card and message
MAX_TEXT = 4096  # longer customer texts are cut here before the NLU sees them
INBOX_GUESSES = 3  # the NLU's top intents kept with a message it did not understand


@dataclass(frozen=True, slots=True)
class Brain:
    """What answers: swapped as a whole on reload, never mutated."""

    nlu: NLUBackend
    engine: FlowEngine
    language: str = "ru"
    rules: RuleSet = NO_RULES  # automation rules (bots/rules), reloaded with flows


@dataclass(slots=True)
class Decision:
    dialogue: dict[str, Any] | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[OutboundMessage] = field(default_factory=list)
    desk: list[OutboundMessage] = field(default_factory=list)
    handoff: Handoff | None = None
    unreachable: str = ""
    customer_waiting: bool = False  # the customer wrote to a human who has not answered yet
    flag: str = ""  # a conversation flag to set (comment_pending)
    unflag: str = ""
    transition: str = ""  # done by a handoff script before the commit (e.g. "cancel")
    rules: dict[str, Any] | None = None  # automation rules that fired: committed with the turn


class HumanSide(Protocol):
    """What the bot turn needs from the human handoff (the desk and its service)."""

    async def handoff_notice(self, conv: str, priority: str, reason: str = "",
                             tags: tuple[str, ...] = (), profile: Profile | None = None
                             ) -> str: ...

    async def cancel_wait(self, conv: str) -> bool: ...

    async def return_to_bot(self, conv: str, by: str) -> bool: ...

    async def rate(self, conv: str, score: int) -> bool: ...

    async def comment(self, conv: str, text: str) -> bool: ...


class TurnDecider:
    def __init__(
        self, brain: Brain, signer: CallbackSigner, human: HumanSide | None = None, *,
        desk: bool = False, pace: CustomerPace | None = None, links: Links | None = None,
    ) -> None:
        self.brain = brain
        self._signer = signer
        self._human = human
        self._pace = pace
        self._desk = desk  # an operator desk exists to show cards and relay messages to
        self.links = links  # /link and /unlink (one customer on two networks)

    async def decide(self, conv: Conversation, event: InboundEvent) -> Decision:
        decision = Decision()
        decision.transcript.append(_inbound_entry(event))
        if event.kind in ("blocked", "edit"):
            self._noted(conv, event, decision)
            return decision
        if event.kind == "button":
            # The spinner on the customer's button stops only when the query is answered.
            decision.outbox.append(self._callback_answer(event))
        if conv.banned:
            return decision  # recorded for the operators; a banned customer gets nothing
        if notices_command(event, decision, self.brain.language):
            return decision  # /stop, /notices on|off: proactive notices (bots/notice_optout.py)
        if self.links is not None and event.kind in ("text", "command") \
                and await self._linking(conv, event, decision, self.links):
            return decision
        if conv.state != "bot":
            await self._with_human(conv, event, decision)
            await self._rules(conv, event, decision, self.brain, "")
            return decision  # a human owns this conversation: the bot never answers
        if self._pace is not None and not self._paced(conv, event, decision, self._pace):
            return decision
        if event.kind == "button" and await self._rating(conv, event, decision):
            return decision
        if conv.comment_pending:
            decision.unflag = "comment_pending"
            if event.kind == "text" and self._human is not None \
                    and await self._human.comment(conv.id, event.text[:MAX_TEXT]):
                self._tell(event, decision, texts.text("comment_thanks", self.brain.language))
                return decision
        brain = self.brain  # one turn is decided by one brain, even if a reload swaps it
        turn = await self._turn(event, decision, brain)
        if turn is None:
            await self._rules(conv, event, decision, brain, "")  # e.g. a VK wall comment
            return decision
        result = self._run_engine(conv, event, turn, brain)
        await self._apply(result, conv, event, decision)
        await self._rules(conv, event, decision, brain, result.intent or "")
        if turn.parse is not None and not result.understood:
            mark_miss(decision.transcript[0], turn.parse, decision.handoff)
        return decision

    async def _with_human(self, conv: Conversation, event: InboundEvent, decision: Decision
                          ) -> None:
        """Queued or assigned: the message goes to the operators' topic; /cancel leaves."""
        command = event.text.split()[0].split("@")[0] if event.kind == "command" else ""
        if (command == "/cancel" and conv.state == "queued" and self._human is not None
                and await self._human.cancel_wait(conv.id)):
            decision.transition = "cancel"
            if self._desk:
                decision.desk.extend(desk_bookkeeping(conv.id, conv.priority))
            return
        if event.kind not in ("text", "command", "media"):
            return
        decision.customer_waiting = True  # the reply timer runs for any human side
        if self._desk and event.channel != "tg":  # not a Telegram message: re-sent, not copied
            decision.desk.append(relayed(conv, event))
            return
        if self._desk:
            decision.desk.append(OutboundMessage(
                conversation=conv.id, kind="copy", lane="desk", created_at=time.time(),
                copy=CopyOf(event.chat_id, event.message_id, event.album),
                priority=desk_priority(conv.priority, 2),
                # A text can be merged with the customer's next ones while they wait.
                text=capped(event.text, 4000) if event.kind == "text" else "",
                said_at=event.received_at or time.time(),
            ))

    async def _rules(self, conv: Conversation, event: InboundEvent, decision: Decision,
                     brain: Brain, intent: str) -> None:
        """Automation rules (bots/rules/turn.py): their changes ride on the turn's commit."""
        if decision.transition or event.kind not in ("text", "command", "media", "button"):
            return
        decision.rules, decision.handoff = rule_args(
            brain.rules, conv, event, intent, time.time(), decision.handoff,
            lambda text: self._tell(event, decision, text), decision.outbox)
        if conv.state == "bot" and is_wall_handoff(decision.handoff) \
                and answered_publicly(decision.outbox):  # a rule answered the comment itself
            decision.handoff = None
            decision.desk.clear()  # only wall_turn's card and queue bookkeeping were there
            decision.transcript[:] = [e for e in decision.transcript
                                      if e.get("text") != f"handoff: {WALL_REASON}"]
        back = decision.rules.get("return_to_bot", "") if decision.rules else ""
        if back and conv.state != "bot" and self._human is not None \
                and await self._human.return_to_bot(conv.id, f"rule:{back}"):
            decision.transition = "return_to_bot"  # like /cancel: its script ran first
        if decision.rules and self._desk and decision.handoff is None and conv.state != "bot":
            items = desk_bookkeeping(conv.id, decision.rules["priority"] or conv.priority)
            decision.desk.extend(items if decision.transition else items[:1])  # the card

    def _noted(self, conv: Conversation, event: InboundEvent, decision: Decision) -> None:
        """Events the bot records and never answers. `blocked`: the customer stopped our
        messages. `edit`: the customer changed a message they sent; the new text is in the
        transcript, marked with the message it replaces. The bot answered the first version,
        and the next message moves on. In both cases the operators of a handoff are told in
        the topic."""
        if event.kind == "blocked":
            decision.unreachable = "blocked by the customer"
            note = "⚠️ Клиент запретил сообщения от нас: ответы до него не дойдут."
        else:
            note = f"✏️ Клиент исправил сообщение: {capped(event.text, 3800)}"
        if self._desk and conv.state != "bot" and not conv.banned:
            decision.desk.append(OutboundMessage(
                conversation=conv.id, lane="desk", created_at=time.time(),
                priority=desk_priority(conv.priority, 2), text=note))

    def _paced(self, conv: Conversation, event: InboundEvent, decision: Decision,
               pace: CustomerPace) -> bool:
        """Whether the bot answers; a flood is stored and, once a streak, explained."""
        verdict = pace.admit(conv.id)
        if verdict is Pace.ANSWER:
            return True
        metrics.QUIETED.inc()
        if verdict is Pace.WARN:
            log.info("%s: the customer writes faster than the bot answers; answers paused",
                     conv.id)
            self._tell(event, decision, texts.text("too_fast", self.brain.language))
        return False

    async def _linking(self, conv: Conversation, event: InboundEvent, decision: Decision,
                       links: Links) -> bool:
        """`/link` (a one-time code), the code typed in the other network, `/unlink`."""
        words = event.text.split()
        command = words[0].split("@")[0].lower() if event.kind == "command" and words else ""
        code = Links.parse_code(words[1] if command == "/link" and len(words) > 1
                                else event.text if event.kind == "text" else "")
        if command not in ("/link", "/unlink") and code is None:
            return False
        here = conv.via or conv.id
        if command == "/unlink":
            done = bool(conv.linked) and await links.unlink(conv.id, conv.linked)
            key = "unlinked" if done else "not_linked"
        elif conv.linked or here != conv.id:
            key = "already_linked"
        elif code is None:
            new_code = await links.offer(here)
            self._tell(event, decision, texts.text("link_code", self.brain.language,
                                                   code=new_code, minutes=links.ttl // 60))
            return True
        else:
            key = {"ok": "linked", "unknown": "link_unknown", "same_channel": "link_same_channel",
                   "busy": "link_busy"}.get(await links.accept(code, here), "already_linked")
        self._tell(event, decision, texts.text(key, self.brain.language))
        return True

    async def _rating(self, conv: Conversation, event: InboundEvent, decision: Decision) -> bool:
        """The 1-5 buttons sent after a close: stored against the handoff and its operator."""
        try:
            payload = await self._signer.decode(event.payload)
        except ForgedCallback:
            return False
        if not payload.startswith("rate:") or self._human is None:
            return False
        score = payload.removeprefix("rate:")
        if score.isdigit() and 1 <= int(score) <= 5 and await self._human.rate(conv.id, int(score)):
            decision.outbox[-1] = self._callback_answer(
                event, texts.text("rating_thanks", self.brain.language)
            )
            self._tell(event, decision, texts.text("ask_comment", self.brain.language))
            decision.flag = "comment_pending"
            decision.transcript[0]["text"] = f"[rating] {score}"
        return True

    async def _turn(self, event: InboundEvent, decision: Decision, brain: Brain) -> Turn | None:
        if wall_turn(event, decision, desk=self._desk):  # a VK wall comment: to the operators
            return None
        language = brain.language
        if event.kind == "media":
            self._tell(event, decision, texts.text("non_text", language))
            return None
        if event.kind == "button":
            try:
                payload = await self._signer.decode(event.payload)
            except ForgedCallback as exc:
                log.warning("%s: rejected callback data (%s)", event.conversation, exc)
                decision.outbox[-1] = self._callback_answer(
                    event, texts.text("stale_button", language), alert=True
                )
                return None
            if not brain.engine.is_valid_payload(payload):
                log.warning("%s: callback payload %r unknown to flows", event.conversation, payload)
                decision.outbox[-1] = self._callback_answer(
                    event, texts.text("stale_button", language), alert=True
                )
                return None
            return Turn(payload=payload)
        if event.kind == "command" and event.text.split()[0].split("@")[0] == "/start":
            return Turn(payload="flow:start")
        text = event.text.lstrip("/") if event.kind == "command" else event.text
        if len(text) > MAX_TEXT:
            log.info("%s: text of %d chars cut to %d", event.conversation, len(text), MAX_TEXT)
            text = text[:MAX_TEXT]
        parse = await brain.nlu.parse(text)
        return Turn(text=text, parse=parse)

    def _run_engine(self, conv: Conversation, event: InboundEvent, turn: Turn, brain: Brain
                    ) -> TurnResult:
        try:
            state = DialogueState.from_dict(conv.dialogue) if conv.dialogue else DialogueState()
        except (KeyError, TypeError, ValueError):
            log.warning("%s: unreadable dialogue state, starting fresh", conv.id)
            state = DialogueState()
        first_name = event.profile.first_name or (conv.profile.first_name if conv.profile else "")
        return brain.engine.handle(state.with_slot("first_name", first_name), turn)

    async def _apply(
        self, result: TurnResult, conv: Conversation, event: InboundEvent, decision: Decision
    ) -> None:
        trace = BotTrace(intent=result.intent, confidence=round(result.confidence, 4),
                         steps=tuple(result.trace), received_at=event.received_at)
        decision.transcript[0].update(intent=result.intent, confidence=trace.confidence)
        decision.dialogue = result.state.to_dict()
        for reply in result.replies:
            decision.outbox.append(self._reply(event, reply, trace))
            decision.transcript.append({"at": time.time(), "dir": "out", "text": reply.text})
        if result.handoff is not None:
            notice_text = texts.text("handoff_queued", self.brain.language, position="{position}")
            last = decision.outbox[-1] if result.replies else None
            if last is not None and not last.buttons:
                # The flow said it is passing the conversation on: one message with the place in
                # the queue, not a second one saying the same (and one Bot API call less).
                decision.outbox.pop()
                position = texts.text("handoff_position", self.brain.language,
                                      position="{position}")
                notice_text = f"{last.text}\n\n{position}"
            if self._human is not None:
                extra = await self._human.handoff_notice(
                    conv.id, result.handoff.priority, result.handoff.reason,
                    tuple(result.handoff.tags), event.profile)
                notice_text = f"{notice_text} {extra}".strip()
            if self._desk:
                decision.desk.extend(
                    desk_bookkeeping(conv.id, result.handoff.priority)
                )
            decision.handoff = Handoff(
                reason=result.handoff.reason, priority=result.handoff.priority,
                tags=tuple(result.handoff.tags),
                notice=self._say(event, notice_text, replace(trace, handoff=True)),
            )
            decision.transcript.append(
                {"at": time.time(), "dir": "system", "text": f"handoff: {result.handoff.reason}"}
            )

    def _reply(self, event: InboundEvent, reply: Reply, trace: BotTrace) -> OutboundMessage:
        rows = tuple((_out_button(button),) for button in reply.buttons)
        return OutboundMessage(
            conversation=event.conversation, text=reply.text, buttons=rows,
            created_at=time.time(), bot=trace,
        )

    def _tell(self, event: InboundEvent, decision: Decision, text: str) -> None:
        """A system reply: sent, and kept in the transcript like any other."""
        decision.outbox.append(self._say(event, text))
        decision.transcript.append({"at": time.time(), "dir": "out", "text": text})

    def _say(
        self, event: InboundEvent, text: str, trace: BotTrace | None = None
    ) -> OutboundMessage:
        return OutboundMessage(
            conversation=event.conversation, text=text, created_at=time.time(), bot=trace
        )

    def _callback_answer(
        self, event: InboundEvent, text: str = "", *, alert: bool = False
    ) -> OutboundMessage:
        return OutboundMessage(
            conversation=event.conversation, kind="callback_answer", text=text,
            callback_id=event.callback_id, alert=alert, created_at=time.time(),
        )


def mark_miss(entry: dict[str, Any], parse: ParseResult, handoff: Handoff | None) -> None:
    """A message the bot did not understand: its transcript entry says why and what the NLU
    guessed, which files it in the trainers' inbox with the turn's commit."""
    if handoff is not None:
        entry["miss"] = "handoff"  # the fallback gave up and asked for a human
    elif parse.in_scope:
        entry["miss"] = "no_flow"  # an intent no flow answers
    else:
        entry["miss"] = "out_of_scope"  # nothing known, or too unsure to act
    entry["guesses"] = [[score.name, round(score.confidence, 4)]
                        for score in parse.ranking[:INBOX_GUESSES]]


def _out_button(button: Button) -> OutButton:
    return OutButton(title=button.title, payload=button.payload or "", url=button.url or "")


def _inbound_entry(event: InboundEvent) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": event.received_at or time.time(), "dir": "in"}
    if event.kind == "media":
        entry["media"] = event.media
        # Where a photo can be seen again (the web console shows it): VK's and the widget's
        # files have an address; a Telegram file_id has none outside the Bot API.
        shown = [{"kind": f.kind, "url": f.url} for f in event.files if f.url]
        if shown:
            entry["files"] = shown
    if event.kind == "edit":
        entry["edit_of"] = event.message_id
    wall_entry(event, entry)  # a VK wall comment: its id and author (bots/vk/wall.py)
    entry["text"] = capped(event.text) if event.kind != "button" \
        else f"[button] {event.payload[:64]}"
    return entry


def relayed(conv: Conversation, event: InboundEvent) -> OutboundMessage:
    """A customer message from another platform, for the desk topic: its text, and its photos
    and documents sent by URL (Telegram cannot copy a message it never saw)."""
    return OutboundMessage(
        conversation=conv.id, kind="text", lane="desk", created_at=time.time(),
        # Under Telegram's 4,096 characters with the marker: a longer VK text is still shown
        text=capped(event.text, 4000) or ("" if event.files else f"[{event.media or 'сообщение'}]"),
        priority=desk_priority(conv.priority, 2), files=event.files,
        said_at=event.received_at or time.time(),
    )


def desk_bookkeeping(conv: str, priority: str) -> list[OutboundMessage]:
    """Desk items after a state change: the card (rendered when sent), the topic's name and
    open/closed state (a second handoff reopens the topic of the first), the summary."""
    now = time.time()
    return [
        OutboundMessage(
            conversation=conv, kind="card", lane="desk", created_at=now,
            coalesce=f"card:{conv}", priority=desk_priority(priority, 1)),
        OutboundMessage(
            conversation=conv, kind="topic", lane="desk", created_at=now,
            coalesce=f"topic:{conv}", priority=desk_priority(priority, 3)),
        OutboundMessage(conversation=conv, kind="summary", lane="desk", created_at=now,
                        coalesce="summary", priority=SUMMARY_PRIORITY),
    ]
