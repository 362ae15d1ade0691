"""Texts of flows: variants, languages and `{slot}` substitution.

Texts are parsed into templates once, at load time, so a turn only joins strings; a brace that
does not form `{slot}`, `{{` or `}}` is a load error rather than a surprise in front of a customer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

#: Languages a text may be written in (the `LANGUAGE` setting picks one).
LANGUAGES = ("ru", "en")
#: Used when a text has no variant in the chosen language.
FALLBACK_LANGUAGE = "ru"
#: The key of a text written without a language mapping: it serves every language.
ANY_LANGUAGE = "*"

SLOT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


class TemplateError(ValueError):
    """A text's braces do not form `{slot}`, `{{` or `}}`."""


@dataclass(frozen=True, slots=True)
class SlotRef:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """One text variant, split into literal parts and slot references."""

    source: str
    parts: tuple[str | SlotRef, ...]
    line: int

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts if isinstance(part, SlotRef))

    def render(self, slots: Mapping[str, str]) -> str:
        # A slot nobody filled renders as nothing: `supportbot validate` flags such texts, and a
        # customer is better served by a short sentence than by a raw `{name}`.
        return "".join(
            part if isinstance(part, str) else slots.get(part.name, "") for part in self.parts
        )


def parse_template(source: str, line: int) -> Template:
    parts: list[str | SlotRef] = []
    literal: list[str] = []
    cursor = 0
    for match in _TOKEN.finditer(source):
        literal.append(source[cursor : match.start()])
        cursor = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1) is not None:
            if any(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(SlotRef(match.group(1)))
        else:
            raise TemplateError(
                f"stray {token!r} at column {match.start() + 1}: write {{slot_name}} for a slot, "
                "'{{' or '}}' for a literal brace"
            )
    literal.append(source[cursor:])
    if any(literal) or not parts:
        parts.append("".join(literal))
    return Template(source, tuple(parts), line)


@dataclass(frozen=True, slots=True)
class Text:
    """A text in one or more languages, each a tuple of variants (one is picked per use)."""

    variants: Mapping[str, tuple[Template, ...]]
    line: int

    def templates(self) -> Iterator[Template]:
        for options in self.variants.values():
            yield from options

    def pick(self, language: str, rng: random.Random) -> Template:
        options = (
            self.variants.get(language)
            or self.variants.get(ANY_LANGUAGE)
            or self.variants.get(FALLBACK_LANGUAGE)
            or next(iter(self.variants.values()))
        )
        # Only texts with variants draw from the rng, so adding a plain text somewhere does not
        # change which variants a seeded run (a conversation test) picks.
        return options[0] if len(options) == 1 else rng.choice(options)

    def render(self, language: str, rng: random.Random, slots: Mapping[str, str]) -> str:
        return self.pick(language, rng).render(slots)


def fold(value: str) -> str:
    """The form in which customer answers and slot values are compared: case and ё ignored."""
    return value.casefold().replace("ё", "е")
