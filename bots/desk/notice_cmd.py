"""`/notice` at the desk: supervisors send a proactive notice to a segment (docs/notices.md).

    /notice tag:vip channel:vk since:7d | Текст уведомления   → a notice made, with its count
    /notice send 20261206-a1b2c3                               → sent, in the background
    /notice 20261206-a1b2c3                                    → its counts

Making a notice fixes its recipients (what the count says is who gets it); sending is a second,
deliberate step. The run goes on in the worker's process and reports to the General topic when
it ends; a run cut short (the process stopped) is resumed by `/notice send` again or by
`supportbot notices resume`, nobody getting it twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from redis.asyncio import Redis

from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.notice_run import NoticeRun
from handoff.notices import OUTCOMES, Notice, NoticeError, Notices, segment_of
from handoff.scripts import Scripts

log = logging.getLogger(__name__)

USAGE = ("Рассылка: /notice tag:тег channel:tg|vk|web since:7d ids:tg:1,vk:2 | текст — "
         "создать (покажет, сколько получат); /notice send ID — отправить; /notice ID — итоги.")
_ID = re.compile(r"^[0-9]{8}-[0-9a-f]{6}$")
_KEYS = ("tag", "channel", "since", "ids")
SHOWN = 5


class DeskNotices:
    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts, store: ConversationStore,
                 language: str = "ru") -> None:
        self._redis = redis
        self._keys = keys
        self._notices = Notices(redis, keys, language=language)
        self._scripts = scripts
        self._store = store
        self._runs: dict[str, asyncio.Task[None]] = {}  # kept: a task nobody holds may vanish

    async def handle(self, args: str, by: str, where: str) -> str:
        """The reply to `/notice <args>` from supervisor `by` in desk conversation `where`."""
        words = args.split()
        try:
            if len(words) == 2 and words[0] == "send" and _ID.match(words[1]):
                return await self._send(words[1], where)
            if len(words) == 1 and _ID.match(words[0]):
                return await self._show(words[0])
            if "|" in args:
                return await self._create(args, by)
        except (NoticeError, ValueError) as exc:
            return f"Рассылка не создана: {exc}. {USAGE}"
        return USAGE

    async def _create(self, args: str, by: str) -> str:
        spec, _, text = args.partition("|")
        found: dict[str, str] = {}
        for word in spec.split():
            key, colon, value = word.partition(":")
            if not colon or key not in _KEYS or not value:
                raise ValueError(f"не понял {word!r} (можно: {', '.join(_KEYS)})")
            found[key] = value
        if not text.strip():
            raise ValueError("нет текста после |")
        segment = segment_of([i for i in found.get("ids", "").split(",") if i],
                             found.get("channel", ""), found.get("since", ""),
                             found.get("tag", ""))
        preview = await self._notices.preview(segment, text.strip())
        notice = await self._notices.create(segment, text.strip(), by, preview)
        first = ", ".join(preview.recipients[:SHOWN])
        return (f"📣 Рассылка {notice.id}: получат {notice.total} ({segment.describe()}); "
                f"отказались от рассылок: {preview.opted_out}, недоступны: "
                f"{preview.unreachable}. Первые: {first}.\nТекст:\n{notice.text}\n"
                f"Отправить: /notice send {notice.id}")

    async def _send(self, notice_id: str, where: str) -> str:
        notice = await self._notices.get(notice_id)
        if notice is None:
            return f"Рассылки {notice_id} нет."
        if notice.status in ("done", "cancelled"):
            return f"Рассылка {notice_id} уже {_STATUS.get(notice.status, notice.status)}."
        if notice_id not in self._runs:
            self._runs[notice_id] = asyncio.create_task(self._run(notice_id, where),
                                                        name=f"notice {notice_id}")
        return (f"📣 Рассылка {notice_id} отправляется ({notice.total} получателей, в темпе "
                "ограничений платформ). Итог придёт сюда.")

    async def _run(self, notice_id: str, where: str) -> None:
        run = NoticeRun(self._redis, self._keys, self._scripts, self._notices)
        try:
            notice = await run.run(notice_id)
            text = f"📣 Рассылка {notice_id} завершена. {_counts(notice)}"
        except Exception:
            log.exception("notice %s: the run failed; resume it", notice_id)
            text = f"⚠️ Рассылка {notice_id} прервалась: продолжить — /notice send {notice_id}."
        finally:
            self._runs.pop(notice_id, None)
        await self._store.post_desk([OutboundMessage(
            conversation=where, lane="desk", text=text, created_at=time.time(), priority=0)])

    async def _show(self, notice_id: str) -> str:
        notice = await self._notices.get(notice_id)
        if notice is None:
            return f"Рассылки {notice_id} нет."
        running = " Идёт сейчас." if notice_id in self._runs else ""
        return (f"📣 Рассылка {notice_id}: {_STATUS.get(notice.status, notice.status)}. "
                f"{_counts(notice)}{running}")


_STATUS = {"ready": "создана, не отправлялась", "sending": "отправляется или прервана",
           "done": "отправлена", "cancelled": "отменена"}


_OUTCOMES_RU = {"sent": "отправлено", "opted_out": "отказались", "unreachable": "недоступны",
                "banned": "заблокированы", "missing": "нет такого клиента"}


def _counts(notice: Notice) -> str:
    parts = [f"{_OUTCOMES_RU.get(o, o)}: {notice.counts.get(o, 0)}" for o in OUTCOMES]
    return f"Всего {notice.total}; " + ", ".join(parts) + "."
