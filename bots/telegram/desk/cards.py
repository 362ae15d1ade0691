"""The card an operator sees in a customer's topic: who, why, what the bot already said, and
the buttons Take · Transfer · Close · Back to bot. Rendered from Redis at send time, so a card
that waited behind the group's rate limit still shows the current state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bots.callbacks import CallbackSigner
from bots.vk.wall import card_lines, is_wall
from handoff.conversations import Conversation

PRIORITY_RU = {"low": "низкий", "normal": "обычный", "high": "высокий", "urgent": "срочный"}
STATE_RU = {"queued": "🟡 В очереди", "assigned": "🟢 В работе", "bot": "⚪ Закрыт, с ботом"}
CHANNEL_RU = {"tg": "Telegram", "vk": "ВКонтакте", "web": "чат на сайте", "shell": "терминал",
              "vk-wall": "комментарии ВКонтакте"}
TRANSCRIPT_LINES = 8


@dataclass(frozen=True, slots=True)
class CardData:
    conversation: Conversation
    fields: dict[str, str]  # the raw hash: owner, handoff_reason, ...
    transcript: list[dict[str, Any]]
    owner_name: str = ""
    earlier: int = 0


def profile_link(conv: str, username: str) -> str:
    channel, peer = conv.split(":", 1)
    if channel == "tg":
        return f"https://t.me/{username}" if username else f"tg://user?id={peer}"
    if channel == "vk":
        return f"https://vk.com/id{peer}"
    return ""


def card_text(data: CardData) -> str:
    conv = data.conversation
    fields = data.fields
    profile = conv.profile
    name = profile.display_name if profile else conv.id
    channel = CHANNEL_RU.get(conv.id.split(":", 1)[0], conv.id.split(":", 1)[0])
    who = f"👤 {name}"
    if profile and profile.username:
        who += f" (@{profile.username})"
    who += f" · {channel}"
    if profile and profile.language_code:
        who += f" · язык: {profile.language_code}"
    if profile and profile.city:
        who += f" · {profile.city}"
    state = STATE_RU.get(conv.state, conv.state)
    if conv.state == "assigned" and data.owner_name:
        state += f" · ведёт {data.owner_name}"
    priority = PRIORITY_RU.get(fields.get("handoff_priority", "normal"), "обычный")
    lines = [f"{state} · приоритет: {priority}", who]
    link = profile_link(conv.id, profile.username if profile else "")
    if link:
        lines.append(f"🔗 {link}")
    if conv.linked:  # the same customer on another network (handoff/links.py)
        other = conv.linked.split(":", 1)[0]
        lines.append(f"🔗 Также {CHANNEL_RU.get(other, other)}: {profile_link(conv.linked, '')}")
        if conv.route:
            last = conv.route.split(":", 1)[0]
            lines.append(f"✉️ Последнее сообщение из: {CHANNEL_RU.get(last, last)}")
    lines.extend(card_lines(conv.id, data.transcript))  # a VK wall thread: post, author, rights
    lines.append(f"Причина: {fields.get('handoff_reason') or '—'}")
    if fields.get("handoff_tags"):
        lines.append("Теги: " + ", ".join(f"#{t}" for t in fields["handoff_tags"].split(",") if t))
    lines.append(f"Обращений к людям раньше: {data.earlier}")
    if conv.unreachable:
        lines.append(f"⚠️ Клиент недоступен: {conv.unreachable}")
    exchange = [entry for entry in data.transcript if entry.get("text")][-TRANSCRIPT_LINES:]
    if exchange:
        lines.append("")
        lines.append("Последние сообщения:")
        for entry in exchange:
            speaker = {"in": "Клиент", "out": "Бот", "system": "•",
                       "note": "Заметка"}.get(entry.get("dir", ""), "•")
            if entry.get("operator") and entry.get("dir") == "out":
                speaker = "Оператор"
            text = str(entry["text"]).replace("\n", " ")
            lines.append(f"{speaker}: {text[:300]}")
    return "\n".join(lines)[:4000]


async def card_keyboard(conv: Conversation, signer: CallbackSigner) -> InlineKeyboardMarkup:
    if conv.state == "bot":
        return InlineKeyboardMarkup(inline_keyboard=[])
    actions = [("take", "Взять"), ("transfer", "Передать"), ("close", "Закрыть"),
               ("bot", "Вернуть боту")]
    if conv.state == "assigned":
        actions = actions[1:]
    if is_wall(conv.id):  # bots/desk/wall.py
        actions += [("dm", "В личку"), ("ban", "Бан автора")]
    row = [
        InlineKeyboardButton(text=title, callback_data=await signer.encode(f"{action}:{conv.id}"))
        for action, title in actions
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row[:2], row[2:]] if len(row) > 2 else [row])
