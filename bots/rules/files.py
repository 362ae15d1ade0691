"""The rules file of the settings, with what its rules may name: the NLU's intents, the
operators' templates and the desk groups."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import yaml

from bots.rules.loader import Known, RulesError, load_rules
from bots.rules.model import RuleSet
from bots.settings import Settings
from nlu.types import Problem

SHIPPED_TEMPLATES = Path(__file__).parent.parent / "desk" / "templates.yml"


def known_names(settings: Settings, intents: Collection[str] | None) -> Known:
    desks = {desk.name: desk.chat_id for desk in settings.desk_groups}
    return Known(intents=intents, templates=templates(settings), desks=desks,
                 wall=settings.vk_enabled and settings.vk_admin_token is not None)


def templates(settings: Settings) -> dict[str, str]:
    """The operators' templates (the shipped ones until the bot first copies them)."""
    path = settings.templates_path if settings.templates_path.exists() else SHIPPED_TEMPLATES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}  # the desk reports a broken templates file itself
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def load_settings_rules(settings: Settings, intents: Collection[str] | None,
                        path: Path | None = None) -> RuleSet:
    """RULES_FILE (or `path`); no file, no rules. Raises RulesError."""
    return load_rules(path or settings.rules_path, known_names(settings, intents),
                      settings.timezone, optional=path is None)


def rules_problems(settings: Settings, intents: Collection[str] | None,
                   path: Path | None = None) -> list[Problem]:
    try:
        load_settings_rules(settings, intents, path)
    except RulesError as exc:
        return exc.problems
    return []
