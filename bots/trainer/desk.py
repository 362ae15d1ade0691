"""The trainers' desk commands: /learn, /totemplate, /toflow, /reload.

`/learn <intent>` in a customer's topic teaches the messages of that customer the bot did not
understand (its open inbox entries, the ones the card shows) as examples of the intent; sent as a
reply to one of the customer's messages in the topic, it teaches that message only;
`/learn <intent> <text>` teaches the given text instead. Any desk member may /learn: the
operator who read the conversation knows best what the customer meant.

`/totemplate <name>` and `/toflow <intent>`, sent as a reply to an operator's message in the
topic (or without a reply: the conversation's last operator reply), save that reply as a desk
template or as a flow answer draft. They and `/reload` are for trainers (DESK_TRAINERS).
Every command answers in the topic with what it did, or why it did nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bots.desk.commands import Command
from bots.desk.templates import TemplateError, Templates
from bots.trainer.inbox import Labelled, label
from bots.trainer.knowledge import FlowDrafts, OperatorReply, operator_replies
from handoff.access import Access
from handoff.api_models import TRANSCRIPT_MAX
from handoff.conversations import ConversationStore
from handoff.events import InboundEvent
from handoff.inbox import Inbox, InboxEntry
from nlu.data import DataError

log = logging.getLogger(__name__)

RequestReload = Callable[[str, str], Awaitable[int]]  # (by, reply_to conversation)
TRAINER_ONLY = frozenset({"learn", "totemplate", "toflow", "reload"})
QUOTE = 60  # characters of a message quoted back


@dataclass(frozen=True, slots=True)
class TrainerSetup:
    data_dir: Path  # NLU_DATA_DIR
    drafts: FlowDrafts
    trainers: frozenset[str]  # operator ids ("tg:123")


class TrainerDesk:
    def __init__(
        self, setup: TrainerSetup, inbox: Inbox, store: ConversationStore, templates: Templates,
        request_reload: RequestReload, access: Access | None = None,
    ) -> None:
        self._setup = setup
        self._inbox = inbox
        self._store = store
        self._templates = templates
        self._request_reload = request_reload
        self.access = access  # roles given at the desk (/grant … trainer)

    async def handle(self, conv: str, event: InboundEvent, command: Command) -> str:
        if command.name in TRAINER_ONLY and not await self._is_trainer(event.actor):
            return f"/{command.name} — только для тренеров бота (DESK_TRAINERS, /grant)."
        if command.name == "reload":
            version = await self._request_reload(event.actor, conv)
            return f"♻️ Перезагружаю сценарии и NLU (#{version})…"
        if conv.startswith("desk:"):
            return f"/{command.name} работает в топике клиента."
        if command.name == "learn":
            return await self._learn(conv, event, command)
        return await self._reply_to_knowledge(conv, event, command)

    async def _is_trainer(self, actor: str) -> bool:
        """Listed in the settings, or given the role by a supervisor (handoff/access.py)."""
        if actor in self._setup.trainers:
            return True
        return self.access is not None and await self.access.is_(actor, "trainer")

    # --- /learn -------------------------------------------------------------------------
    async def _learn(self, conv: str, event: InboundEvent, command: Command) -> str:
        words = command.args.split(maxsplit=1)
        if not words:
            return "Формат: /learn интент — сообщения клиента, которые бот не понял; " \
                   "/learn интент текст — этот текст."
        intent = words[0]
        if len(words) > 1:
            entries = [InboxEntry("", conv, words[1], 0.0, "desk")]
        elif event.reply_to:
            found = await self._replied_customer_message(conv, event)
            if isinstance(found, str):
                return found
            entries = [found]
        else:
            entries = await self._inbox.open_of(conv)
            if not entries:
                return ("Непонятых ботом сообщений этого клиента нет. Добавить свой пример: "
                        "/learn интент текст")
        try:
            done = await label(self._inbox, self._setup.data_dir, entries, intent)
        except DataError as exc:
            problem = exc.problems[0]
            if problem.message.startswith("unknown intent"):
                return f"Не добавил: интента {intent} нет в данных NLU."
            return f"Не добавил: данные NLU не читаются ({problem})."
        return _learned(done)

    async def _replied_customer_message(self, conv: str, event: InboundEvent
                                        ) -> InboxEntry | str:
        """The customer's message the command replies to, or why there is none.

        The topic holds the bot's copy of it; the copy's text is trusted only when the customer
        really wrote it (it is among the conversation's inbound messages), so a reply to the card,
        a notice or an operator's message teaches nothing."""
        text = event.reply_text.strip()
        if text:
            for entry in await self._inbox.open_of(conv):
                if entry.text.strip() == text:
                    return entry  # also closes it in the inbox
            said = {str(item.get("text", "")).strip()
                    for item in await self._store.transcript(conv, TRANSCRIPT_MAX)
                    if item.get("dir") == "in"}
            if text in said:
                return InboxEntry("", conv, text, 0.0, "desk")
        return ("Ответьте /learn интент на сообщение клиента с текстом (или: /learn интент "
                "текст).")

    # --- /totemplate, /toflow -----------------------------------------------------------
    async def _reply_to_knowledge(self, conv: str, event: InboundEvent, command: Command
                                  ) -> str:
        name = command.args.split(maxsplit=1)[0] if command.args else ""
        what = "имя" if command.name == "totemplate" else "интент"
        if not name:
            return f"Формат: ответьте на сообщение оператора: /{command.name} {what}"
        reply = _chosen(await operator_replies(self._store, conv), event.reply_to)
        if reply is None:
            return ("Не нашёл ответа оператора: ответьте командой на сообщение оператора в "
                    "этом топике.")
        try:
            if command.name == "totemplate":
                replaced = await asyncio.to_thread(self._templates.add, name, reply.text)
                return f"Шаблон «{name}» {'обновлён' if replaced else 'сохранён'}: /t {name}"
            flow_id = await asyncio.to_thread(
                self._setup.drafts.add, name, reply.text, f"{conv}, {reply.operator}")
        except (TemplateError, ValueError) as exc:
            return f"Не сохранил: {exc}."
        return (f"Черновик ответа «{flow_id}» для интента {name} сохранён в "
                f"{self._setup.drafts.path.name}: проверьте и перенесите в сценарии.")


def _chosen(replies: list[OperatorReply], reply_to: int) -> OperatorReply | None:
    """The operator's message replied to, or (no reply) the last one."""
    if not reply_to:
        return replies[-1] if replies else None
    return next((r for r in reversed(replies) if r.message_id == reply_to), None)


def _learned(done: Labelled) -> str:
    lines = []
    if done.appended.added:
        where = done.appended.file.name if done.appended.file else "?"
        lines.append(f"📚 В интент {done.intent} ({where}) добавлено: "
                     + ", ".join(f"«{_short(text)}»" for text in done.appended.added)
                     + ". Применить: /reload")
    for text, why in done.appended.skipped:
        lines.append(f"Пропущено «{_short(text)}»: {_why_ru(why)}")
    return "\n".join(lines) or "Нечего добавлять."


def _why_ru(why: str) -> str:
    if why.startswith("already an example of "):
        return "уже пример интента " + why.removeprefix("already an example of ")
    return {"empty": "пустое"}.get(why, why)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE else flat[: QUOTE - 1] + "…"


def trainer_ids(ids: Iterable[int]) -> frozenset[str]:
    return frozenset(f"tg:{uid}" for uid in ids)
