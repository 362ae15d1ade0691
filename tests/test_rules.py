"""Automation rules: the loader's file:line errors, matching, `supportbot rules test` and
`rules stats`, and hot reload of a changed rules file (the e2e runs are in
tests/test_rules_e2e.py)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from bots.cli.common import console
from bots.cli.main import app
from bots.rules.loader import Known, RulesError, load_rules
from bots.rules.matcher import Facts, fired, fired_timed, in_hours
from bots.rules.model import RuleSet
from bots.runtime import load_brain
from bots.settings import Settings
from bots.trainer.reload import BrainReloader
from bots.turns import Brain
from handoff.conversations import utc_day
from handoff.keys import Keys

MOSCOW = ZoneInfo("Europe/Moscow")
KNOWN = Known(intents={"order_status", "request_human", "complaint"},
              templates={"hello": "Здравствуйте!"}, desks={"sales": -1001, "care": -1002},
              wall=False)


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems_of(path: Path, known: Known = KNOWN) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_rules(path, known)
    return [f"{Path(p.file).name}:{p.line}: {p.message}" for p in caught.value.problems]


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, tzinfo=MOSCOW)


# --- the loader -------------------------------------------------------------------------------


def test_every_problem_is_reported_at_its_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        vip: [tg:1, nobody]
        rules:
          - name: one
            when: {intent: order_statuz, colour: red}
            do: {priority: asap, route: nowhere, template: nope}
          - name: Bad-Name
            when: {regex: '(', hours: 25:00-03:00, channel: [tg, fax]}
            do: {tags: [x]}
          - name: one
            when: {keywords: [a]}
            do: {tags: [y]}
            stop: maybe
        """)
    found = problems_of(path)
    assert "rules.yml:2: a VIP is a conversation id such as tg:123456, not 'nobody'" in found
    assert "rules.yml:5: unknown intent 'order_statuz' (no training data)" in found
    assert any(p.startswith("rules.yml:5: unknown key 'colour' in when") for p in found)
    assert "rules.yml:6: priority must be one of low, normal, high, urgent" in found
    assert "rules.yml:6: no desk group named 'nowhere' (desks: sales, care)" in found
    assert "rules.yml:6: no operators' template named 'nope'" in found
    assert "rules.yml:7: rule name 'Bad-Name' may only use a-z, 0-9 and _" in found
    assert any(p.startswith("rules.yml:8: bad regex:") for p in found)
    assert "rules.yml:8: hours '25:00-03:00': not a time of day" in found
    assert "rules.yml:8: unknown channel 'fax' (one of tg, vk, web, vk-wall)" in found
    assert "rules.yml:10: rule 'one' is already defined at line 4" in found
    assert "rules.yml:13: stop must be true or false" in found


def test_actions_that_cannot_run_where_the_rule_runs_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """
        rules:
          - name: silent_tags
            when: {silent_minutes: 10, keywords: [a]}
            do: {tags: [x]}
          - name: close_now
            when: {keywords: [bye]}
            do: {close: true}
          - name: hide
            when: {keywords: [дурак]}
            do: {hide_comment: true}
        """)
    found = problems_of(path)
    assert "rules.yml:3: 'keywords' needs a message: it cannot go with silent_minutes" in found
    assert "rules.yml:4: a rule with silent_minutes must close or return_to_bot" in found
    assert any(p.startswith("rules.yml:7: close needs silent_minutes") for p in found)
    assert any(p.startswith("rules.yml:10: hide_comment needs VK_ADMIN_TOKEN") for p in found)


def test_yaml_syntax_and_a_missing_optional_file(tmp_path: Path) -> None:
    broken = write(tmp_path, "rules:\n  - name: a\n    when: {intent: [x\n")
    assert problems_of(broken)[0].startswith("rules.yml:4: YAML syntax")
    assert load_rules(tmp_path / "none.yml", optional=True).rules == ()
    with pytest.raises(RulesError):
        load_rules(tmp_path / "none.yml")


def test_the_shipped_example_loads_against_the_demo(settings: Settings, brain: Brain) -> None:
    example = Path(__file__).parent.parent / "bots" / "rules" / "example.yml"
    ruleset = load_rules(example, Known(intents=brain.nlu.known_intents(),
                                        templates={"order_number": "…"}, desks={}))
    assert [r.name for r in ruleset.rules] == [
        "vip_first", "refunds_to_sales", "angry_words", "night_order_numbers", "wall_profanity",
        "close_silent"]
    assert ruleset.rules[-1].when.silent_minutes == 30 and ruleset.rules[-1].do.close


# --- matching ---------------------------------------------------------------------------------


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    return load_rules(write(tmp_path, """
        vip: [tg:42, vk:42]
        rules:
          - name: vip
            when: {vip: true}
            do: {priority: high, tags: [vip]}
          - name: status
            when: {intent: order_status}
            do: {tags: [orders]}
          - name: angry
            when: {keywords: [Безобразие, обман], channel: vk}
            do: {priority: urgent}
            stop: true
          - name: number
            when: {regex: '\\b\\d{7}\\b'}
            do: {template: hello}
          - name: night
            when: {hours: 22:00-08:00, language: en}
            do: {route: care}
          - name: refunds
            when: {tag: [Refund]}
            do: {route: sales}
          - name: silent
            when: {silent_minutes: 30, channel: tg}
            do: {close: {notice: Закрыли.}}
        """), KNOWN)


def names(ruleset: RuleSet, **facts: object) -> list[str]:
    values: dict[str, object] = {"conv": "tg:1", "at": at(12)}
    values.update(facts)
    return [rule.name for rule in fired(ruleset, Facts(**values))]  # type: ignore[arg-type]


def test_each_condition_matches_alone(ruleset: RuleSet) -> None:
    assert names(ruleset) == []
    assert names(ruleset, conv="tg:42") == ["vip"]
    assert names(ruleset, intent="order_status") == ["status"]
    assert names(ruleset, text="Это БЕЗОБРАЗИЕ", channel="vk") == ["angry"]
    assert names(ruleset, text="это безобразие") == []  # Telegram, not VK
    assert names(ruleset, text="заказ 1234567") == ["number"]
    assert names(ruleset, text="заказ 12345678") == []
    assert names(ruleset, tags=frozenset({"refund"})) == ["refunds"]


def test_time_of_day_is_in_the_timezone_and_wraps_midnight(ruleset: RuleSet) -> None:
    assert names(ruleset, at=at(23, 30), language="en-US") == ["night"]
    assert names(ruleset, at=at(7, 59), language="en") == ["night"]
    assert names(ruleset, at=at(8, 0), language="en") == []
    assert names(ruleset, at=at(23, 30), language="ru") == []
    # 20:30 UTC is 23:30 in Moscow
    assert names(ruleset, at=datetime(2026, 12, 7, 20, 30, tzinfo=UTC), language="en") == [
        "night"]
    assert in_hours((9 * 60, 18 * 60), 9 * 60) and not in_hours((9 * 60, 18 * 60), 18 * 60)


def test_rules_fire_in_file_order_and_stop_ends_the_list(ruleset: RuleSet) -> None:
    assert names(ruleset, conv="vk:42", intent="order_status", text="обман 1234567",
                 channel="vk") == ["vip", "status", "angry"]
    assert names(ruleset, conv="tg:42", intent="order_status", text="1234567") == [
        "vip", "status", "number"]


def test_timed_rules_need_the_silence_and_never_fire_on_a_message(ruleset: RuleSet) -> None:
    def timed(conv: str, seconds: float | None) -> list[str]:
        facts = Facts(conv=conv, at=at(12), silent_seconds=seconds)
        return [rule.name for rule in fired_timed(ruleset, facts)]

    assert timed("tg:1", 29 * 60 + 59) == []
    assert timed("tg:1", 30 * 60) == ["silent"]
    assert timed("vk:1", 31 * 60) == []
    assert "silent" not in names(ruleset, silent_seconds=3600)


# --- the CLI ----------------------------------------------------------------------------------


def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    for name, value in {"REDIS_URL": settings.redis_url or "",
                        "REDIS_PREFIX": settings.redis_prefix,
                        "DATA_DIR": str(settings.data_dir),
                        "CACHE_DIR": str(settings.cache_dir)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(console, "width", 200)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return result.output


def test_rules_test_shows_what_fires_with_the_real_nlu(
        settings: Settings, brain: Brain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, """
        rules:
          - name: where_is_it
            when: {intent: order_status}
            do: {tags: [orders], priority: high}
          - name: night_vip
            when: {hours: 23:00-06:00, tag: vip}
            do: {tags: [night]}
            stop: true
          - name: never
            when: {channel: vk}
            do: {tags: [vk]}
        """)
    output = cli(settings, monkeypatch, "rules", "test", str(path), "где мой заказ?",
                 "--at", "23:30", "--tag", "vip")
    assert "intent: order_status" in output
    assert "where_is_it" in output and "tags orders; priority high" in output
    assert "night_vip" in output and "never" not in output
    quiet = cli(settings, monkeypatch, "rules", "test", str(path), "где мой заказ?",
                "--at", "12:00", "--channel", "web")
    assert "where_is_it" in quiet and "night_vip" not in quiet
    broken = write(tmp_path, "rules:\n  - name: x\n    when: {intent: nope}\n"
                             "    do: {tags: [a]}\n", "broken.yml")
    assert "broken.yml:3: error: unknown intent 'nope'" in cli(
        settings, monkeypatch, "rules", "test", str(broken), "привет")


async def test_rules_stats_counts_per_day(
        settings: Settings, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import time

    keys = Keys(settings.redis_prefix)
    await redis.hset(keys.rules_day(utc_day(time.time())), mapping={"vip": 3, "silent": 1})
    output = await asyncio.to_thread(cli, settings, monkeypatch, "rules", "stats")
    assert "vip" in output and "silent" in output and "4" in output


# --- hot reload -------------------------------------------------------------------------------


async def test_a_changed_rules_file_is_reloaded_and_a_broken_one_keeps_the_old(
        settings: Settings, brain: Brain, redis: aioredis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path, """
        rules:
          - name: first
            when: {keywords: [a]}
            do: {tags: [a]}
        """)
    configured = settings.model_copy(update={"rules_file": path})
    assert [r.name for r in load_brain(configured).rules.rules] == ["first"]
    swapped: list[Brain] = []
    reports: list[str] = []

    async def report(_conv: str, text: str) -> None:
        reports.append(text)

    reloader = BrainReloader(redis, Keys(settings.redis_prefix), configured, load_brain,
                             swapped.append, report)
    path.write_text(path.read_text(encoding="utf-8").replace("first", "second"),
                    encoding="utf-8")
    outcome = await reloader.reload()
    assert outcome.ok and [r.name for r in swapped[-1].rules.rules] == ["second"]
    path.write_text("rules:\n  - name: third\n    when: {intent: nope}\n    do: {tags: [a]}\n",
                    encoding="utf-8")
    refused = await reloader.reload()
    assert not refused.ok and len(swapped) == 1
    assert f"{path}:3: error: unknown intent 'nope' (no training data)" in refused.text()
