"""What one desk event does: an operator's message, edit, command or card button.

Transitions (take, close, transfer, ...) are the handoff service's scripts; what follows from
them for this event (relaying, notes, desk notices) is committed with the event's ack. Relays
to the customer are committed only while the sender owns the conversation (the commit script
checks the owner), so two operators can never both answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bots import texts
from bots.callbacks import CallbackSigner, ForgedCallback
from bots.desk.commands import Command, is_note, parse_command
from bots.desk.templates import TemplateError, Templates
from bots.turns import SUMMARY_PRIORITY, desk_bookkeeping
from handoff.conversations import Conversation, ConversationStore
from handoff.events import InboundEvent, OutboundMessage, OutButton
from handoff.service import HandoffService, Transition

log = logging.getLogger(__name__)

REFUSALS = {
    "taken": "Разговор уже ведёт {owner}.",
    "capacity": "У вас максимум разговоров: закройте один, чтобы взять новый.",
    "offline": "Вы офлайн: /online, чтобы брать разговоры.",
    "wrong_state": "Сейчас это сделать нельзя: разговор в состоянии «{state}».",
    "not_owner": "Разговор ведёт {owner}.",
    "unknown_operator": "Оператор не найден.",
}


@dataclass(slots=True)
class DeskDecision:
    transcript: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[OutboundMessage] = field(default_factory=list)  # to the customer
    desk: list[OutboundMessage] = field(default_factory=list)
    relay_as: str = ""  # set: commit only while this operator owns the conversation


def summary_item(conv: str) -> OutboundMessage:
    return desk_item(conv, "summary", coalesce="summary", priority=SUMMARY_PRIORITY)


def desk_item(conv: str, kind: str, text: str = "", **params: Any) -> OutboundMessage:
    return OutboundMessage(conversation=conv, kind=kind, text=text, lane="desk",  # type: ignore[arg-type]
                           created_at=time.time(), params=params)


class DeskDecider:
    def __init__(
        self, service: HandoffService, store: ConversationStore, signer: CallbackSigner,
        templates: Templates, language: str = "ru",
    ) -> None:
        self._service = service
        self._store = store
        self._signer = signer
        self.templates = templates
        self.language = language

    async def decide(self, conv: Conversation, event: InboundEvent) -> DeskDecision:
        decision = DeskDecision()
        if await self._service.operator(event.actor) is None:
            # Desk members act as operators; the first action brings them online.
            await self._service.set_status(event.actor, "online", name=event.profile.display_name,
                                           username=event.profile.username)
        if event.kind == "desk_button":
            await self._button(conv, event, decision)
        elif event.kind == "desk_edit":
            self._edit(conv, event, decision)
        elif event.kind == "desk_text" and (command := parse_command(event.text)):
            await self._command(conv, event, command, decision)
        elif event.kind == "desk_text" and is_note(event.text):
            decision.transcript.append(_entry(event, "note"))
        elif conv.id.startswith("desk:"):
            pass  # chatter in the General topic is not for any customer
        else:
            await self._relay(conv, event, decision)
        return decision

    # --- relaying ---------------------------------------------------------------------
    async def _relay(self, conv: Conversation, event: InboundEvent, decision: DeskDecision
                     ) -> None:
        operator = event.actor
        if conv.state == "queued":  # writing in a waiting topic takes it
            if not await self._transition(conv.id, self._service.claim(conv.id, operator,
                                          notices=self._joined(conv.id, event)), decision):
                return
        elif conv.state != "assigned":
            decision.desk.append(desk_item(conv.id, "text", "Разговор сейчас с ботом: "
                                           "нажмите «Взять» в карточке или /take."))
            return
        elif conv.owner != operator:
            decision.desk.append(desk_item(conv.id, "text", REFUSALS["not_owner"].format(
                owner=conv.owner)))
            return
        decision.relay_as = operator
        decision.transcript.append(_entry(event, "out"))
        decision.outbox.append(OutboundMessage(
            conversation=conv.id, kind="copy", created_at=time.time(),
            params={"from_chat": event.chat_id, "message_id": event.message_id},
            meta={"operator": operator},
        ))

    def _edit(self, conv: Conversation, event: InboundEvent, decision: DeskDecision) -> None:
        if conv.state != "assigned" or conv.owner != event.actor or is_note(event.text):
            return
        decision.relay_as = event.actor
        decision.outbox.append(OutboundMessage(
            conversation=conv.id, kind="edit", text=event.text, created_at=time.time(),
            params={"message_id": event.message_id},
        ))

    # --- buttons and commands -----------------------------------------------------------
    async def _button(self, conv: Conversation, event: InboundEvent, decision: DeskDecision
                      ) -> None:
        try:
            payload = await self._signer.decode(event.payload)
        except ForgedCallback as exc:
            log.warning("desk: rejected callback data from %s (%s)", event.actor, exc)
            decision.desk.append(_answer(event, "Эта кнопка больше не работает.", alert=True))
            return
        action, _, target = payload.partition(":")
        target_conv, _, argument = target.partition("|")
        if target_conv != conv.id:
            log.warning("desk: button for %s pressed in %s's topic", target_conv, conv.id)
            decision.desk.append(_answer(event, "Кнопка не от этого разговора.", alert=True))
            return
        command = Command({"take": "take", "close": "close", "bot": "bot",
                           "transfer": "transfer"}.get(action, ""), argument)
        if not command.name:
            decision.desk.append(_answer(event, "Неизвестная кнопка.", alert=True))
            return
        before = len(decision.desk)
        await self._command(conv, event, command, decision)
        refusal = next((m.text for m in decision.desk[before:] if m.params.get("refusal")), "")
        decision.desk.append(_answer(event, refusal, alert=bool(refusal)))

    async def _command(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        handler = getattr(self, f"_cmd_{command.name}", None)
        if handler is None:
            return
        if conv.id.startswith("desk:") and command.name not in DESK_WIDE:
            decision.desk.append(desk_item(conv.id, "text",
                                           f"/{command.name} работает в топике клиента."))
            return
        await handler(conv, event, command, decision)

    async def _cmd_take(self, conv: Conversation, event: InboundEvent, command: Command,
                        decision: DeskDecision) -> None:
        await self._transition(conv.id, self._service.claim(
            conv.id, event.actor, notices=self._joined(conv.id, event)), decision)

    async def _cmd_close(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        await self._transition(conv.id, self._service.close(
            conv.id, event.actor, reason=command.args, notices=[self._rating_prompt(conv.id)]),
            decision)

    async def _cmd_bot(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        notice = OutboundMessage(conversation=conv.id, created_at=time.time(),
                                 text=texts.text("back_to_bot", self.language))
        await self._transition(conv.id, self._service.return_to_bot(
            conv.id, event.actor, notices=[notice]), decision)

    async def _cmd_transfer(self, conv: Conversation, event: InboundEvent, command: Command,
                            decision: DeskDecision) -> None:
        target = command.words[0] if command.words else ""
        if not target:
            decision.desk.append(desk_item(conv.id, "text", await self._transfer_help(conv.id)))
            return
        to = None if target in ("queue", "очередь") else await self._operator_id(target)
        if to == "":
            decision.desk.append(desk_item(conv.id, "text", f"Оператор {target} не найден.",
                                           refusal=True))
            return
        await self._transition(conv.id, self._service.transfer(conv.id, event.actor, to),
                               decision)

    async def _cmd_ban(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        await self._transition(conv.id, self._service.ban(
            conv.id, event.actor, reason=command.args or "banned from the desk"), decision)

    async def _cmd_unban(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        await self._transition(conv.id, self._service.unban(conv.id, event.actor), decision)

    async def _cmd_tag(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        tags = [word.lstrip("#") for word in command.words if word.lstrip("#")]
        await self._store.add_tags(conv.id, event.actor, tags)
        decision.desk.extend(desk_bookkeeping(conv.id, conv.priority)[:1])

    async def _cmd_note(self, conv: Conversation, event: InboundEvent, command: Command,
                        decision: DeskDecision) -> None:
        decision.transcript.append({**_entry(event, "note"), "text": command.args})

    async def _cmd_t(self, conv: Conversation, event: InboundEvent, command: Command,
                     decision: DeskDecision) -> None:
        text = self.templates.get(command.words[0]) if command.words else None
        if text is None:
            decision.desk.append(desk_item(conv.id, "text", "Нет такого шаблона. /templates — "
                                           "список."))
            return
        if conv.state != "assigned" or conv.owner != event.actor:
            decision.desk.append(desk_item(conv.id, "text", "Сначала возьмите разговор."))
            return
        decision.relay_as = event.actor
        decision.transcript.append({**_entry(event, "out"), "text": text})
        decision.outbox.append(OutboundMessage(conversation=conv.id, text=text,
                                               created_at=time.time(),
                                               meta={"operator": event.actor}))

    async def _cmd_templates(self, conv: Conversation, event: InboundEvent, command: Command,
                             decision: DeskDecision) -> None:
        words = command.args.split(maxsplit=2)
        if len(words) >= 1 and words[0] == "add":
            try:
                self.templates.add(words[1] if len(words) > 1 else "",
                                   words[2] if len(words) > 2 else "")
                reply = f"Шаблон «{words[1]}» сохранён."
            except TemplateError as exc:
                reply = f"Не сохранил: {exc}"
        else:
            names = self.templates.names()
            reply = ("Шаблоны: " + ", ".join(names) + "\nОтправить: /t имя; добавить: "
                     "/templates add имя текст") if names else "Шаблонов пока нет."
        decision.desk.append(desk_item(conv.id, "text", reply))

    async def _cmd_queue(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        decision.desk.append(summary_item(conv.id))

    async def _cmd_online(self, conv: Conversation, event: InboundEvent, command: Command,
                          decision: DeskDecision) -> None:
        await self._status(conv, event, "online", decision)

    async def _cmd_offline(self, conv: Conversation, event: InboundEvent, command: Command,
                           decision: DeskDecision) -> None:
        await self._status(conv, event, "offline", decision)

    async def _cmd_pause(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        await self._status(conv, event, "paused", decision)

    async def _cmd_stats(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        lines = ["📊 Операторы:"]
        for operator in await self._service.operators():
            stats = await self._service.operator_stats(operator.id)
            rating = f"{stats.average_rating:.1f}" if stats.average_rating is not None else "—"
            lines.append(f"{operator.name or operator.id}: {operator.status}, в работе "
                         f"{operator.load}/{operator.capacity}, закрыто {stats.handled}, "
                         f"оценка {rating} ({stats.ratings})")
        decision.desk.append(desk_item(conv.id, "text", "\n".join(lines)))

    # --- helpers ----------------------------------------------------------------------
    async def _status(self, conv: Conversation, event: InboundEvent, status: str,
                      decision: DeskDecision) -> None:
        await self._service.set_status(event.actor, status, name=event.profile.display_name,
                                       username=event.profile.username)
        label = {"online": "онлайн", "offline": "офлайн", "paused": "на паузе"}[status]
        decision.desk.append(desk_item(conv.id, "text", f"{event.profile.display_name}: {label}."))
        decision.desk.append(summary_item(conv.id))

    async def _transition(self, conv: str, call: Any, decision: DeskDecision) -> bool:
        result: Transition = await call
        if result.ok:
            decision.desk.extend(desk_bookkeeping(conv, "normal"))
            return True
        template = REFUSALS.get(result.error, "Не получилось: {error}.")
        owner = await self._operator_name(result.owner) if result.owner else "другой оператор"
        decision.desk.append(desk_item(
            conv, "text", template.format(owner=owner, state=result.state, error=result.error),
            refusal=True,
        ))
        return False

    async def _operator_name(self, operator: str) -> str:
        found = await self._service.operator(operator)
        return (found.name or operator) if found else operator

    async def _operator_id(self, mention: str) -> str:
        """`@username`, a name or an id -> operator id; "" when nobody matches."""
        wanted = mention.lstrip("@").lower()
        for operator in await self._service.operators():
            if wanted in (operator.id.lower(), operator.username.lower(), operator.name.lower()):
                return operator.id
        return ""

    async def _transfer_help(self, conv: str) -> str:
        names = [f"@{o.username}" if o.username else o.id
                 for o in await self._service.operators() if o.status == "online"]
        return ("Кому передать? /transfer @оператор или /transfer queue (в очередь). Онлайн: "
                + (", ".join(names) or "никого"))

    def _joined(self, conv: str, event: InboundEvent) -> list[OutboundMessage]:
        text = texts.text("operator_joined", self.language, name=event.profile.first_name)
        return [OutboundMessage(conversation=conv, text=text, created_at=time.time())]

    def _rating_prompt(self, conv: str) -> OutboundMessage:
        row = tuple(OutButton(title=str(score), payload=f"rate:{score}") for score in range(1, 6))
        return OutboundMessage(conversation=conv, text=texts.text("closed_rate", self.language),
                               buttons=(row,), created_at=time.time())


DESK_WIDE = frozenset({"queue", "stats", "online", "offline", "pause", "templates"})


def _entry(event: InboundEvent, direction: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": event.received_at or time.time(), "dir": direction,
                             "text": event.text, "operator": event.actor}
    if event.media:
        entry["media"] = event.media
    return entry


def _answer(event: InboundEvent, text: str, *, alert: bool = False) -> OutboundMessage:
    return OutboundMessage(conversation=event.conversation, kind="callback_answer", text=text,
                           callback_id=event.callback_id, alert=alert, lane="desk",
                           created_at=time.time())
