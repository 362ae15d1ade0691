"""Timed rules, run by the desk scheduler's rounds (one process at a time, on its clock).

`silent_minutes: N` holds for an assigned conversation whose last word was the operator's
(the customer does not wait for a reply) and in which nothing happened for N minutes. Its
firing is one script: the service's close (or return to the bot) with the notices, refused
when the conversation changed since it was read (`expected_version`) — a customer who wrote
meanwhile bumped the version, so they are not closed. The `rule` journal entry and the day's
count follow the script that succeeded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bots.desk.notices import CustomerNotices
from bots.rules.matcher import Facts, fired_timed
from bots.rules.model import Rule, RuleSet
from bots.turns import desk_bookkeeping
from handoff.conversations import ConversationStore, utc_day
from handoff.events import OutboundMessage
from handoff.service import HandoffService, Transition

log = logging.getLogger(__name__)

STATS_TTL = 400 * 86400
# Stored times are rounded (Lua prints 14 digits): a silence of exactly N minutes is due.
_SLACK = 0.001


class RuleTimers:
    def __init__(self, service: HandoffService, store: ConversationStore,
                 rules: Callable[[], RuleSet], *, language: str = "ru", desk: bool = True
                 ) -> None:
        self._service = service
        self._store = store
        self._rules = rules  # the running brain's, so a reload takes effect next round
        self._notices = CustomerNotices(language)
        self._desk = desk

    async def once(self) -> list[tuple[str, str]]:
        """Fire what is due; (conversation, rule) of each firing."""
        ruleset = self._rules()
        if not ruleset.timed_rules:
            return []
        done = []
        for conv in await self._assigned():
            rule, version, silent = await self._due(ruleset, conv)
            if rule is not None and await self._fire(conv, rule, version, silent):
                done.append((conv, rule.name))
        return done

    async def _assigned(self) -> list[str]:
        redis, keys = self._service.redis, self._service.keys
        convs: set[str] = set()
        for op in await self._service.operators():
            convs |= {str(conv) for conv in await redis.smembers(keys.operator_convs(op.id))}
        return sorted(convs)

    async def _due(self, ruleset: RuleSet, conv: str) -> tuple[Rule | None, int, float]:
        fields = await self._service.redis.hmget(
            self._service.keys.conversation(conv),
            ["state", "version", "updated_at", "customer_waiting_since", "handoff_tags",
             "profile"])
        state, version, updated, waiting, tags, profile = (str(f or "") for f in fields)
        if state != "assigned" or waiting or not updated:
            return None, 0, 0.0  # the customer waits for the operator: not their silence
        now = self._service.clock.now()
        language = ""
        if profile:
            try:
                language = str(json.loads(profile).get("language_code") or "")
            except ValueError:
                language = ""
        silent = now - float(updated) + _SLACK
        facts = Facts(conv=conv, at=datetime.fromtimestamp(now, UTC),
                      tags=frozenset(t for t in tags.split(",") if t), language=language,
                      silent_seconds=silent)
        rules = [rule for rule in fired_timed(ruleset, facts)
                 if rule.do.close or rule.do.return_to_bot]
        return (rules[0] if rules else None), int(version or 0), silent

    async def _fire(self, conv: str, rule: Rule, version: int, silent: float) -> bool:
        by = f"rule:{rule.name}"
        minutes = max(1, round(silent / 60))
        reason = f"rule {rule.name}: the customer silent {minutes} min"
        said = rule.do.notice or rule.do.template_text
        notices = [OutboundMessage(conversation=conv, text=said, created_at=time.time())] \
            if said else []
        result: Transition
        if rule.do.close:
            result = await self._service.close(
                conv, by, reason, force=True, expected_version=version,
                notices=[*notices, *self._notices.closed(conv)])
        else:
            result = await self._service.return_to_bot(
                conv, by, reason, force=True, expected_version=version,
                notices=notices or self._notices.back_to_bot(conv))
        if not result.ok:
            log.info("%s: rule %s not applied (%s)", conv, rule.name, result.error)
            return False
        await self._journal(conv, rule, result.version)
        if self._desk:
            text = (f"🤖 Правило «{rule.name}»: клиент молчит {minutes} мин — разговор "
                    + ("закрыт." if rule.do.close else "возвращён боту."))
            note = OutboundMessage(conversation=conv, lane="desk", text=text, priority=0,
                                   created_at=time.time())
            await self._store.post_desk([note, *desk_bookkeeping(conv, "normal")])
        return True

    async def _journal(self, conv: str, rule: Rule, version: int) -> None:
        service = self._service
        now = service.clock.now()
        day_key = service.keys.rules_day(utc_day(now))
        async with service.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(service.keys.journal(), {
                "conv": conv, "action": "rule", "actor": f"rule:{rule.name}",
                "reason": "; ".join(rule.do.describe()), "at": repr(round(now, 6)),
                "version": str(version)}, maxlen=service.config.journal_maxlen, approximate=True)
            pipe.hincrby(day_key, rule.name, 1)
            pipe.expire(day_key, STATS_TTL)
            await pipe.execute()
