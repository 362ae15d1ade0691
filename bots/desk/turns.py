"""What one desk event does: an operator's message, edit, command or card button.

Transitions (take, close, transfer, ...) are the handoff service's scripts; what follows from
them for this event (relaying, notes, desk notices) is committed with the event's ack. Relays
to the customer are committed only while the sender owns the conversation (the commit script
checks the owner), so two operators can never both answer.

What reaches the customer from a topic: the owner's messages and media (copied), their edits
(mirrored on the customer's copy) and `/t` templates. Never: commands (known or not), notes
(`/note`, lines or captions starting with `!` or `//`), anything from an operator who does not
own the conversation (they are told who does), anything while the customer is with the bot.
Refusals of a card button are shown as the button's alert only, so a second tap on «Взять»
does not spend the group's 20 messages a minute on a line in the topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bots.callbacks import CallbackSigner, ForgedCallback
from bots.desk.commands import Command, command_hint, is_note, parse_command
from bots.desk.notice_cmd import DeskNotices
from bots.desk.notices import CustomerNotices
from bots.desk.report_text import stats_text
from bots.desk.routing import DeskRouting
from bots.desk.shift_text import shift_line
from bots.desk.templates import TemplateError, Templates
from bots.desk.wall import wall_command
from bots.textcap import capped
from bots.trainer.desk import TrainerDesk
from bots.turns import SUMMARY_PRIORITY, desk_bookkeeping
from handoff.access import ROLES, Access
from handoff.conversations import Conversation, ConversationStore, desk_priority
from handoff.events import CopyOf, InboundEvent, OutboundKind, OutboundMessage
from handoff.hours import HoursError
from handoff.reports import NAMED_PERIODS, ReportError, ReportPeriod, read_report
from handoff.service import HandoffService, Operator, Transition

log = logging.getLogger(__name__)

STATE_RU = {"bot": "с ботом", "queued": "в очереди", "assigned": "в работе"}
REFUSALS = {
    "taken": "Разговор уже ведёт {owner}.",
    "capacity": "У вас максимум разговоров: закройте один, чтобы взять новый.",
    "offline": "Вы офлайн: /online, чтобы брать разговоры.",
    "wrong_state": "Сейчас это сделать нельзя: разговор {state}.",
    "not_owner": "Разговор ведёт {owner}.",
    "unknown_operator": "Оператор не найден.",
    "version": "Разговор только что изменился: повторите, пожалуйста.",
}
# In a transfer the capacity, status and identity checked are the target's, not the sender's.
TRANSFER_REFUSALS = {
    **REFUSALS,
    "capacity": "У {target} нет свободных мест ({detail}): выберите другого — /transfer.",
    "offline": "{target} офлайн: выберите другого — /transfer.",
    "unknown_operator": "Оператор {target} не найден.",
    "same_operator": "Разговор и так у вас.",
    "wrong_state": "Передать можно только разговор в работе, а этот {state}.",
}
PREVIEW = 60  # characters of each template shown by /templates


@dataclass(slots=True)
class DeskDecision:
    transcript: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[OutboundMessage] = field(default_factory=list)  # to the customer
    desk: list[OutboundMessage] = field(default_factory=list)
    relay_as: str = ""  # set: commit only while this operator owns the conversation
    answered: bool = False  # the customer got an answer (stops the reply timer; edits don't)


def summary_item(conv: str, *, asked: bool = False) -> OutboundMessage:
    """The queue summary; `asked` (an operator's /queue) is rendered at once, not on the
    summary's own slow schedule."""
    return desk_item(conv, "summary", coalesce="summary",
                     priority=0 if asked else SUMMARY_PRIORITY)


def desk_item(
    conv: str, kind: OutboundKind, text: str = "", *, priority: int = 2, coalesce: str = "",
    mention: tuple[int, ...] = (), refusal: bool = False,
) -> OutboundMessage:
    return OutboundMessage(conversation=conv, kind=kind, text=text, lane="desk",
                           created_at=time.time(), priority=priority, coalesce=coalesce,
                           mention=mention, refusal=refusal)


class DeskDecider:
    def __init__(
        self, service: HandoffService, store: ConversationStore, signer: CallbackSigner,
        templates: Templates, language: str = "ru", *, supervisors: Iterable[str] = (),
        bot_username: str = "", desks: DeskRouting | None = None, access: Access | None = None,
        trainer: TrainerDesk | None = None, notices: DeskNotices | None = None,
    ) -> None:
        self._service = service
        self.desks = desks  # the desk groups, for /transfer desk
        self._store = store
        self._signer = signer
        self.templates = templates
        self.language = language
        self.notices = CustomerNotices(language)
        # Operator ids ("tg:123") who may close, transfer, return or ban conversations that
        # others own (a stuck conversation of an operator who left, a trainer stepping in).
        self.supervisors = frozenset(supervisors)
        # Our @username: a command addressed to another bot in the group is not for us.
        self.bot_username = bot_username.lstrip("@")
        self.trainer = trainer  # /learn, /totemplate, /toflow, /reload
        self.notices_desk = notices  # /notice: supervisors' proactive notices
        self.access = access  # who may act (handoff/access.py); None: every member may

    async def decide(self, conv: Conversation, event: InboundEvent) -> DeskDecision:
        decision = DeskDecision()
        action = await self._button_action(conv, event, decision) \
            if event.kind == "desk_button" else None
        if event.kind == "desk_button" and action is None:
            return decision  # refused: a forged, stale or foreign button changes nothing
        if event.kind == "desk_member":  # someone left or was removed from the desk group
            await self._member_left(conv, event, decision)
            return decision
        if not await self._may_act(conv, event, decision):
            return decision
        if await self._service.operator(event.actor) is None:
            # Desk members act as operators; their first accepted action brings them online.
            await self._service.set_status(event.actor, "online", name=event.profile.display_name,
                                           username=event.profile.username)
        if action is not None:
            await self._button(conv, event, action, decision)
        elif event.kind == "desk_edit":
            self._edit(conv, event, decision)
        elif event.kind == "desk_text" and (command := parse_command(event.text)):
            await self._command(conv, event, command, decision)
        elif is_note(event.text):  # a text, or a photo for colleagues captioned "// ..."
            decision.transcript.append(_entry(event, "note"))
        elif conv.id.startswith("desk:"):
            pass  # chatter in the General topic is not for any customer
        else:
            await self._relay(conv, event, decision)
        return decision

    # --- access ------------------------------------------------------------------------
    async def _may_act(self, conv: Conversation, event: InboundEvent, decision: DeskDecision
                       ) -> bool:
        """Only listed operators act (when any are listed) and never a revoked one; the
        others are told once a day and otherwise ignored."""
        if self.access is None or await self.access.may_act(event.actor):
            return True
        if await self.access.first_refusal(event.actor):
            name = event.profile.display_name
            decision.desk.append(desk_item(conv.id, "text", (
                f"⛔ {name}, у вас нет доступа к этому столу: ваши сообщения и кнопки не "
                f"работают. Попросите руководителя выдать доступ (/grant)."), refusal=True))
        return False

    async def _member_left(self, conv: Conversation, event: InboundEvent,
                           decision: DeskDecision) -> None:
        if self.access is None:
            return
        reason = "удалён из группы стола" if event.text == "kicked" else "вышел из группы стола"
        await self._revoke(conv, event.actor, "telegram", reason, decision)

    async def _revoke(self, conv: Conversation, op: str, by: str, reason: str,
                      decision: DeskDecision) -> None:
        """Access gone at once: roles, status, and every conversation back to the queue with
        a note in its topic (and the customer told a colleague will pick it up)."""
        assert self.access is not None
        name = await self._operator_name(op)
        moved = await self.access.revoke_and_requeue(self._service, op, by, reason,
                                                     self.notices.requeued)
        for transition in moved:
            priority = (await self._store.load(transition.conv)).priority
            decision.desk.append(desk_item(transition.conv, "text", (
                f"🔒 {name}: доступ отозван ({reason}). Разговор снова в очереди, "
                f"возьмите его.")))
            decision.desk.extend(desk_bookkeeping(transition.conv, priority))
        decision.desk.append(desk_item(conv.id, "text", (
            f"🔒 Доступ {name} отозван: {reason}. Возвращено в очередь: {len(moved)}.")))

    async def _cmd_revoke(self, conv: Conversation, event: InboundEvent, command: Command,
                          decision: DeskDecision) -> None:
        """`/revoke @who [reason]`, for supervisors."""
        if not await self._supervisor(conv, event, command, decision):
            return
        who = self._person(command.words[0]) if command.words else None
        if who is None:
            decision.desk.append(desk_item(conv.id, "text", "Кого? /revoke @username [причина]"))
            return
        found = await self._find_operator(command.words[0])
        reason = " ".join(command.words[1:]) or "по решению руководителя"
        await self._revoke(conv, found.id if found else who, event.actor, reason, decision)

    async def _cmd_grant(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        """`/grant @who operator|supervisor|trainer`, for supervisors."""
        if not await self._supervisor(conv, event, command, decision):
            return
        assert self.access is not None  # a supervisor exists only where access is kept
        words = command.words
        if len(words) != 2 or words[1] not in ROLES or self._person(words[0]) is None:
            decision.desk.append(desk_item(conv.id, "text", (
                f"/grant @username|id роль, роли: {', '.join(ROLES)}")))
            return
        found = await self._find_operator(words[0])
        op = found.id if found else self._person(words[0]) or ""
        role = words[1]
        new = await self.access.grant(op, role, event.actor)
        name = await self._operator_name(op)
        decision.desk.append(desk_item(conv.id, "text", (
            f"✅ {name}: роль {role} выдана." if new else f"У {name} уже есть роль {role}.")))

    async def _supervisor(self, conv: Conversation, event: InboundEvent, command: Command,
                          decision: DeskDecision) -> bool:
        """Whether the actor is a supervisor; if not, they are told the command is not theirs."""
        if self.access is not None and await self.access.is_(event.actor, "supervisor"):
            return True
        decision.desk.append(desk_item(conv.id, "text",
                                       f"/{command.name} — только для руководителей.",
                                       refusal=True))
        return False

    @staticmethod
    def _person(mention: str) -> str | None:
        """An operator id from "@username" (resolved later), "tg:123" or "123"."""
        if mention.startswith("@") and len(mention) > 1:
            return mention
        digits = mention.removeprefix("tg:")
        return f"tg:{digits}" if digits.isdigit() else None

    # --- relaying ---------------------------------------------------------------------
    async def _relay(self, conv: Conversation, event: InboundEvent, decision: DeskDecision
                     ) -> None:
        operator = event.actor
        if conv.state == "queued":  # writing in a waiting topic takes it
            if not await self._transition(conv, self._service.claim(
                    conv.id, operator, notices=self._joined(conv.id, event)), event, decision):
                return
        elif conv.state != "assigned":
            why = "клиент заблокирован (/unban)" if conv.banned else (
                "клиент сейчас с ботом; написать ему можно, когда он снова позовёт оператора")
            decision.desk.append(desk_item(conv.id, "text", f"Не отправлено: {why}."))
            return
        elif conv.owner != operator:
            owner = await self._operator_name(conv.owner)
            decision.desk.append(desk_item(
                conv.id, "text", f"Не отправлено: разговор ведёт {owner}."))
            return
        decision.relay_as = operator
        decision.answered = True
        decision.transcript.append(_entry(event, "out"))
        decision.outbox.append(OutboundMessage(
            conversation=conv.id, kind="copy", created_at=time.time(),
            copy=CopyOf(event.chat_id, event.message_id, event.album),
            # What a channel that cannot copy Telegram messages (VK) sends instead.
            text=event.text, operator=operator, files=event.files,
        ))

    def _edit(self, conv: Conversation, event: InboundEvent, decision: DeskDecision) -> None:
        """The owner edited a message: the customer's copy shows the new text. Edits of
        notes and commands are skipped (their originals never reached the customer)."""
        if (conv.state != "assigned" or conv.owner != event.actor or is_note(event.text)
                or parse_command(event.text) is not None or not event.text):
            return
        decision.relay_as = event.actor
        decision.transcript.append({**_entry(event, "out"), "edit_of": event.message_id})
        decision.outbox.append(OutboundMessage(
            conversation=conv.id, kind="edit", text=event.text, created_at=time.time(),
            edit_of=event.message_id,
        ))

    # --- buttons and commands -----------------------------------------------------------
    async def _button_action(self, conv: Conversation, event: InboundEvent,
                             decision: DeskDecision) -> Command | None:
        """The command a desk button stands for, or None (answered) when it is refused."""
        try:
            payload = await self._signer.decode(event.payload)
        except ForgedCallback as exc:
            log.warning("desk: rejected callback data from %s (%s)", event.actor, exc)
            decision.desk.append(_answer(event, "Эта кнопка больше не работает.", alert=True))
            return None
        action, _, target = payload.partition(":")
        target_conv, _, argument = target.partition("|")
        if target_conv != conv.id:
            log.warning("desk: button for %s pressed in %s's topic", target_conv, conv.id)
            decision.desk.append(_answer(event, "Кнопка не от этого разговора.", alert=True))
            return None
        command = Command({"take": "take", "close": "close", "bot": "bot",
                           "transfer": "transfer", "dm": "dm",  # dm, ban: VK wall threads
                           "ban": "ban"}.get(action, ""), argument)
        if not command.name:
            decision.desk.append(_answer(event, "Неизвестная кнопка.", alert=True))
            return None
        return command

    async def _button(self, conv: Conversation, event: InboundEvent, command: Command,
                      decision: DeskDecision) -> None:
        before = len(decision.desk)
        await self._command(conv, event, command, decision)
        refusals = [m for m in decision.desk[before:] if m.refusal]
        decision.desk = [m for m in decision.desk if not m.refusal]
        text = refusals[0].text if refusals else ""
        decision.desk.append(_answer(event, text, alert=bool(text)))

    async def _command(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        if command.bot and self.bot_username and command.bot.lower() != self.bot_username.lower():
            return  # "/close@other_bot": another bot's command, not ours to answer or relay
        if not command.known:
            # Never relayed (a typo like /clsoe must not reach the customer): say what exists.
            decision.desk.append(desk_item(conv.id, "text", command_hint(command.name)))
            return
        if conv.id.startswith("desk:") and command.name not in DESK_WIDE:
            decision.desk.append(desk_item(conv.id, "text",
                                           f"/{command.name} работает в топике клиента."))
            return
        handler = getattr(self, f"_cmd_{command.name}")
        await handler(conv, event, command, decision)

    async def _cmd_take(self, conv: Conversation, event: InboundEvent, command: Command,
                        decision: DeskDecision) -> None:
        await self._transition(conv, self._service.claim(
            conv.id, event.actor, notices=self._joined(conv.id, event)), event, decision)

    async def _cmd_close(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        """`/close [reason]`. The customer of an assigned conversation gets the rating
        keyboard; one still queued (nobody talked to them) is told they are back with the
        bot, since there is nothing to rate."""
        notices = (self.notices.closed(conv.id) if conv.state == "assigned"
                   else self.notices.back_to_bot(conv.id))
        await self._transition(conv, self._service.close(
            conv.id, event.actor, reason=command.args, force=await self._force(event),
            notices=notices), event, decision)

    async def _cmd_bot(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        await self._transition(conv, self._service.return_to_bot(
            conv.id, event.actor, reason=command.args, force=await self._force(event),
            notices=self.notices.back_to_bot(conv.id)), event, decision)

    async def _cmd_transfer(self, conv: Conversation, event: InboundEvent, command: Command,
                            decision: DeskDecision) -> None:
        """`/transfer @username [reason]`, `/transfer queue [reason]`; bare: who is online."""
        words = command.args.split(maxsplit=1)
        if not words:
            decision.desk.append(desk_item(conv.id, "text", await self._transfer_help(event)))
            return
        target, reason = words[0], words[1] if len(words) > 1 else ""
        if target.lower() in ("desk", "стол"):
            return await self._transfer_to_desk(conv, event, reason, decision)
        to: str | None = None
        notices = list(self.notices.transferred_to_queue(conv.id))
        name = "очередь"
        if target.lower() not in ("queue", "очередь"):
            found = await self._find_operator(target)
            if found is None:
                decision.desk.append(desk_item(conv.id, "text", TRANSFER_REFUSALS[
                    "unknown_operator"].format(target=target), refusal=True))
                return
            to, name = found.id, found.name or found.id
            notices = list(self.notices.joined(conv.id, found.id, name.split()[0]))
        force = await self._force(event)
        result = await self._transition(conv, self._service.transfer(
            conv.id, event.actor, to, reason=reason, force=force, notices=notices),
            event, decision, refusals=TRANSFER_REFUSALS, target=name)
        if not result:
            return
        if to is None:
            decision.desk.append(desk_item(conv.id, "text", "↩️ Разговор вернулся в очередь."))
        else:
            # A mention notifies the new owner even if they muted the group.
            mention = (int(to.split(":", 1)[1]),) if to.startswith("tg:") else ()
            decision.desk.append(desk_item(
                conv.id, "text", f"↪️ {event.profile.display_name} передаёт разговор: {name}.",
                mention=mention))

    async def _transfer_to_desk(self, conv: Conversation, event: InboundEvent, args: str,
                                decision: DeskDecision) -> None:
        """`/transfer desk <name> [reason]`: the conversation goes to another desk group's
        queue; its topic there is created with a card, the one here is closed."""
        name, _, reason = args.partition(" ")
        names = ", ".join(d.name for d in self.desks.desks) if self.desks else ""
        desk = self.desks.find(name) if self.desks and name else None
        refusal = ""
        if desk is None:
            refusal = f"Нет стола «{name}». Столы: {names or 'только этот'}."
        elif desk.chat_id == event.chat_id:
            refusal = f"Разговор уже в столе «{desk.name}»."
        elif conv.state not in ("queued", "assigned"):
            refusal = "Разговор сейчас у бота: передавать нечего."
        if desk is None or refusal:
            decision.desk.append(desk_item(conv.id, "text", refusal, refusal=True))
            return
        if conv.state == "assigned" and not await self._transition(conv, self._service.transfer(
                conv.id, event.actor, None, reason=reason or f"стол {desk.name}",
                force=await self._force(event), notices=list(self.notices.transferred_to_queue(
                    conv.id))), event, decision, refusals=TRANSFER_REFUSALS, target=desk.name):
            return
        decision.desk.append(desk_item(conv.id, "move", str(desk.chat_id),
                                       priority=desk_priority(conv.priority, 1)))

    async def _cmd_ban(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        """`/ban [reason]`: the handoff (if any) ends, and until /unban the customer's messages
        are only recorded in the transcript: no bot answer, nothing relayed to the topic, and
        the customer is not told. A ban is for spam and abuse: relaying it would spend the desk
        group's 20 messages a minute on the one customer everyone agreed to ignore, starving
        the others, and an answer invites more. Nothing is lost: the transcript (API, and the
        card's last messages, re-rendered on /unban) keeps every message."""
        if conv.id.startswith("vk-wall:"):  # a wall comment's author: banned in VK itself
            return await self._cmd_dm(conv, event, command, decision)
        reason = command.args or "заблокирован из desk"
        force = await self._force(event)
        if await self._transition(conv, self._service.ban(
                conv.id, event.actor, reason=reason, force=force), event, decision):
            decision.desk.append(desk_item(
                conv.id, "text", f"⛔ Клиент заблокирован: {reason}. Его сообщения сохраняются в "
                "истории, но сюда не приходят, и бот ему не отвечает. /unban — разблокировать."))

    async def _cmd_unban(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        result = await self._service.unban(conv.id, event.actor, reason=command.args)
        if not result.ok and result.detail == "not banned":
            decision.desk.append(desk_item(conv.id, "text", "Клиент не заблокирован.",
                                           refusal=True))
            return
        if await self._transition(conv, _done(result), event, decision):
            decision.desk.append(desk_item(conv.id, "text",
                                           "✅ Клиент разблокирован: бот снова ему отвечает."))

    async def _cmd_tag(self, conv: Conversation, event: InboundEvent, command: Command,
                       decision: DeskDecision) -> None:
        """`/tag возврат #vip`: tags of the current handoff, shown on the card (its re-render is
        the confirmation). A conversation with the bot has no handoff to tag: a close clears
        the tags and the next handoff sets its own, so they would silently vanish."""
        tags = [word.lstrip("#") for word in command.words if word.lstrip("#")]
        if not tags:
            decision.desk.append(desk_item(conv.id, "text", "Теги через пробел: /tag возврат vip"))
            return
        if conv.state == "bot":
            decision.desk.append(desk_item(
                conv.id, "text", "Теги ставятся на открытое обращение, а клиент сейчас с ботом.",
                refusal=True))
            return
        await self._store.add_tags(conv.id, event.actor, tags)
        decision.desk.extend(desk_bookkeeping(conv.id, conv.priority)[:1])

    async def _cmd_note(self, conv: Conversation, event: InboundEvent, command: Command,
                        decision: DeskDecision) -> None:
        if not command.args:
            decision.desk.append(desk_item(conv.id, "text", "Заметка: /note текст (клиент её не "
                                           "увидит; строки с ! или // — тоже заметки)."))
            return
        decision.transcript.append({**_entry(event, "note"), "text": command.args})

    async def _cmd_t(self, conv: Conversation, event: InboundEvent, command: Command,
                     decision: DeskDecision) -> None:
        """`/t name`: the template's text to the customer, as the owner's reply."""
        if not command.words:
            await self._cmd_templates(conv, event, Command("templates", ""), decision)
            return
        found = self.templates.lookup(command.words[0])
        if found is None:
            decision.desk.append(desk_item(conv.id, "text", f"Нет шаблона «{command.words[0]}». "
                                           "/templates — список.", refusal=True))
            return
        name, text = found
        if conv.state != "assigned":
            decision.desk.append(desk_item(conv.id, "text", "Шаблон не отправлен: сначала "
                                           "возьмите разговор (/take).", refusal=True))
            return
        if conv.owner != event.actor:
            owner = await self._operator_name(conv.owner)
            decision.desk.append(desk_item(conv.id, "text", f"Шаблон не отправлен: разговор "
                                           f"ведёт {owner}.", refusal=True))
            return
        decision.relay_as = event.actor
        decision.answered = True
        decision.transcript.append({**_entry(event, "out"), "text": text, "template": name})
        decision.outbox.append(OutboundMessage(conversation=conv.id, text=text,
                                               created_at=time.time(),
                                               operator=event.actor))

    async def _cmd_templates(self, conv: Conversation, event: InboundEvent, command: Command,
                             decision: DeskDecision) -> None:
        """`/templates`: names with the start of each text; `/templates add name text`
        (the text may span lines) writes the YAML file."""
        words = command.args.split(maxsplit=2)
        if words and words[0].lower() in ("add", "добавить"):
            name = words[1] if len(words) > 1 else ""
            try:
                replaced = self.templates.add(name, words[2] if len(words) > 2 else "")
                reply = f"Шаблон «{name}» {'обновлён' if replaced else 'сохранён'}: /t {name}"
            except TemplateError as exc:
                reply = f"Не сохранил: {exc}. Формат: /templates add имя текст"
            decision.desk.append(desk_item(conv.id, "text", reply))
            return
        items = self.templates.items()
        if not items:
            reply = "Шаблонов пока нет. Добавить: /templates add имя текст"
        else:
            lines = ["Шаблоны (отправить клиенту: /t имя):"]
            for name, text in items:
                flat = " ".join(text.split())
                lines.append(f"• {name} — {flat[:PREVIEW]}{'…' if len(flat) > PREVIEW else ''}")
            lines.append("Добавить: /templates add имя текст")
            reply = "\n".join(lines)
            if len(reply) > 4000:  # one Telegram message
                reply = reply[:3999] + "…"
        decision.desk.append(desk_item(conv.id, "text", reply))

    async def _cmd_queue(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        """Refreshes the one summary in the General topic (edited in place, never re-posted)."""
        decision.desk.append(summary_item(conv.id, asked=True))

    async def _cmd_notice(self, conv: Conversation, event: InboundEvent, command: Command,
                          decision: DeskDecision) -> None:
        """`/notice …`: a proactive notice to a segment, for supervisors (notice_cmd.py)."""
        if not await self._supervisor(conv, event, command, decision):
            return
        text = ("Рассылки здесь не подключены." if self.notices_desk is None
                else await self.notices_desk.handle(command.args, event.actor, conv.id))
        decision.desk.append(desk_item(conv.id, "text", text))

    async def _cmd_console(self, conv: Conversation, event: InboundEvent, command: Command,
                           decision: DeskDecision) -> None:
        """`/console`: a one-time link to the web console, sent in the operator's private chat
        with the bot (in the group anyone could use it first); bots/web/console_auth.py."""
        from bots.web.console_auth import private_link

        allowed = self.access is None or await self.access.may_act(event.actor)
        sent = allowed and await private_link(self._service, event.actor,
                                              event.profile.display_name)
        decision.desk.append(desk_item(conv.id, "text", (
            f"{event.profile.display_name}, ссылка для входа в консоль отправлена вам в личные "
            "сообщения с ботом. Нет сообщения — напишите боту /start и повторите /console.")
            if sent else "/console — только для операторов стола.", refusal=not sent))

    async def _cmd_online(self, conv: Conversation, event: InboundEvent, command: Command,
                          decision: DeskDecision) -> None:
        await self._status(conv, event, "online", decision)

    async def _cmd_offline(self, conv: Conversation, event: InboundEvent, command: Command,
                           decision: DeskDecision) -> None:
        await self._status(conv, event, "offline", decision)

    async def _cmd_pause(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        await self._status(conv, event, "paused", decision)

    async def _cmd_shift(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        """`/shift` shows one's shift; `/shift [zone] days hours` or `/shift off` sets one's
        own; `/shift @who ...` is for supervisors (handoff/shifts.py)."""
        words = command.words
        op, name = event.actor, event.profile.display_name
        if words and (words[0].startswith("@") or words[0].removeprefix("tg:").isdigit()):
            found = await self._find_operator(words[0])
            op = found.id if found else self._person(words[0]) or ""
            name, words = await self._operator_name(op), words[1:]
            if op != event.actor and not await self._supervisor(conv, event, command, decision):
                return
        shifts = self._service.shifts
        now = self._service.clock.now()
        if words:
            try:
                hours = await shifts.set(op, " ".join(words), event.actor)
            except HoursError as exc:
                decision.desk.append(desk_item(conv.id, "text", (
                    f"Не понял смену: {exc}. Например: /shift Asia/Vladivostok mon-fri "
                    "09:00-18:00; except 2027-01-01 — или /shift off."), refusal=True))
                return
            spec = await shifts.of(op)
            text = f"🕘 {name}: {shift_line(spec, hours, now)}."
            decision.desk.append(summary_item(conv.id))
        else:
            spec = await shifts.of(op)
            text = f"🕘 {name}: {shift_line(spec, shifts.parse(spec) if spec else None, now)}."
        decision.desk.append(desk_item(conv.id, "text", text))

    async def _cmd_stats(self, conv: Conversation, event: InboundEvent, command: Command,
                         decision: DeskDecision) -> None:
        """The team's report (handoff/reports.py) over `today` (default), `yesterday`, `7d` or
        `30d`, in the team's time zone, with each operator's status and load now."""
        zone = self._service.config.timezone
        now = self._service.clock.now()
        try:
            period = ReportPeriod.parse(command.words[0] if command.words else None, None,
                                        None, zone, now)
        except ReportError:
            text = f"Период: {', '.join(NAMED_PERIODS)}. Например: /stats 7d"
            decision.desk.append(desk_item(conv.id, "text", text))
            return
        report = await read_report(self._service.redis, self._service.keys, period, now)
        operators = await self._service.operators()
        decision.desk.append(desk_item(conv.id, "text", stats_text(
            report, operators, await self._service.queue_length())))

    async def _trainer_command(self, conv: Conversation, event: InboundEvent, command: Command,
                               decision: DeskDecision) -> None:
        """The trainers' commands (bots/trainer/desk.py)."""
        text = ("Инструменты тренера не подключены." if self.trainer is None
                else await self.trainer.handle(conv.id, event, command))
        decision.desk.append(desk_item(conv.id, "text", text))

    _cmd_learn = _cmd_totemplate = _cmd_toflow = _cmd_reload = _trainer_command

    async def _cmd_dm(self, conv: Conversation, event: InboundEvent, command: Command,
                      decision: DeskDecision) -> None:
        """VK wall comment threads: /dm, /hide, /delete, /ban (bots/desk/wall.py)."""
        owner = await self._operator_name(conv.owner) if conv.owner else ""
        wall_command(conv, event, command, decision, owner)

    _cmd_hide = _cmd_delete = _cmd_dm

    # --- helpers ----------------------------------------------------------------------
    async def _status(self, conv: Conversation, event: InboundEvent, status: str,
                      decision: DeskDecision) -> None:
        operator = await self._service.set_status(
            event.actor, status, name=event.profile.display_name,
            username=event.profile.username)
        label = {"online": "онлайн", "offline": "офлайн", "paused": "на паузе"}[status]
        text = f"{event.profile.display_name}: {label}."
        if status == "offline" and operator.load:
            minutes = max(1, round(self._service.config.offline_grace_seconds / 60))
            text += (f" Ваши разговоры ({operator.load}) вернутся в очередь через {minutes} мин, "
                     "если не вернётесь (/online).")
        if status == "online" and operator.shift:
            hours = self._service.shifts.parse(operator.shift)
            now = self._service.clock.now()
            if not hours.is_open(datetime.fromtimestamp(now, UTC)):
                text += (f" Сейчас вне смены ({shift_line(operator.shift, hours, now)}): "
                         "вы онлайн сверхурочно, до /offline или конца следующей смены.")
        decision.desk.append(desk_item(conv.id, "text", text))
        decision.desk.append(summary_item(conv.id))

    async def _transition(
        self, conv: Conversation, call: Awaitable[Transition], event: InboundEvent,
        decision: DeskDecision, *, refusals: Mapping[str, str] = REFUSALS, target: str = "",
    ) -> bool:
        result = await call
        if result.ok:
            decision.desk.extend(desk_bookkeeping(conv.id, conv.priority))
            return True
        if result.error == "taken" and result.owner == event.actor:
            text = "Разговор уже у вас."
        else:
            template = refusals.get(result.error, "Не получилось: {error}.")
            owner = await self._operator_name(result.owner) if result.owner else "другой оператор"
            text = template.format(owner=owner, state=STATE_RU.get(result.state, result.state),
                                   error=result.error, target=target, detail=result.detail)
        decision.desk.append(desk_item(conv.id, "text", text, refusal=True))
        return False

    async def _force(self, event: InboundEvent) -> bool:
        """Supervisors may act on conversations others own: listed in DESK_SUPERVISORS or
        given the role at the desk or through the API."""
        if event.actor in self.supervisors:
            return True
        return self.access is not None and await self.access.is_(event.actor, "supervisor")

    async def _operator_name(self, operator: str) -> str:
        found = await self._service.operator(operator)
        return (found.name or operator) if found else operator

    async def _find_operator(self, mention: str) -> Operator | None:
        """`@username`, a name or an id (`tg:123` or `123`) -> the Operator, None if nobody."""
        wanted = mention.lstrip("@").lower()
        for operator in await self._service.operators():
            if wanted in (operator.id.lower(), operator.id.split(":", 1)[-1],
                          operator.username.lower(), operator.name.lower()):
                return operator
        return None

    async def _transfer_help(self, event: InboundEvent) -> str:
        names = [f"@{o.username}" if o.username else (o.name or o.id)
                 for o in await self._service.operators()
                 if o.status != "offline" and o.id != event.actor]
        desks = ""
        if self.desks is not None and len(self.desks.desks) > 1:
            desks = (" Другой стол: /transfer desk " +
                     " | ".join(d.name for d in self.desks.desks) + ".")
        return ("Кому передать? /transfer @оператор или /transfer queue (в очередь). Можно "
                "передать: " + (", ".join(names) or "никого нет онлайн") + "." + desks)

    def _joined(self, conv: str, event: InboundEvent) -> Sequence[OutboundMessage]:
        return self.notices.joined(conv, event.actor, event.profile.first_name)


DESK_WIDE = frozenset({"queue", "stats", "online", "offline", "pause", "shift", "notice",
                       "templates",
                       "reload", "console",
                       "grant", "revoke"})


async def _done(result: Transition) -> Transition:
    """An already-made transition, for `_transition` (which awaits its call)."""
    return result


def _entry(event: InboundEvent, direction: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": event.received_at or time.time(), "dir": direction,
                             "text": capped(event.text), "operator": event.actor,
                             "message_id": event.message_id}  # what /toflow may reply to
    if event.media:
        entry["media"] = event.media
    return entry


def _answer(event: InboundEvent, text: str, *, alert: bool = False) -> OutboundMessage:
    return OutboundMessage(conversation=event.conversation, kind="callback_answer", text=text,
                           callback_id=event.callback_id, alert=alert, lane="desk",
                           created_at=time.time(), via=event.via)
