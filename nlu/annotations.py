"""Entity annotations inside Rasa examples: `[text](entity)`, `[text](entity:value)` and
`[text]{"entity": "...", "value": "..."}`. They are stripped to their text and remembered."""

from __future__ import annotations

import json
import re

from nlu.types import Entity

# `[text]` alone (no `(...)` or `{...}` after it) is plain text, as in Rasa.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+)\]"
    r"(?:\((?P<entity>[^():]+)(?::(?P<value>[^()]+))?\)|(?P<json>\{[^{}]*\}))"
)


def parse_annotations(text: str) -> tuple[str, tuple[Entity, ...]]:
    """The example without markup and its entities (offsets into the stripped text).

    Raises ValueError with a trainer-facing message for malformed `{...}` annotations.
    """
    parts: list[str] = []
    entities: list[Entity] = []
    length = 0
    position = 0
    for match in _ANNOTATION.finditer(text):
        before = text[position : match.start()]
        parts.append(before)
        length += len(before)
        surface = match["text"]
        entity, value = _entity_and_value(match)
        entities.append(Entity(entity, value or surface, length, length + len(surface)))
        parts.append(surface)
        length += len(surface)
        position = match.end()
    parts.append(text[position:])
    return "".join(parts), tuple(entities)


def _entity_and_value(match: re.Match[str]) -> tuple[str, str | None]:
    if match["json"] is None:
        return match["entity"].strip(), match["value"].strip() if match["value"] else None
    try:
        spec = json.loads(match["json"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"annotation {match[0]!r} is not valid JSON: {exc.msg}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
        raise ValueError(f'annotation {match[0]!r} needs {{"entity": "name"}}')
    value = spec.get("value")
    if value is not None and not isinstance(value, str):
        value = str(value)
    return spec["entity"], value
