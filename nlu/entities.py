"""Entities from regexes and lookup tables, with synonyms mapped to their canonical value, and
the built-in phone, email, date and amount (nlu/system_entities.py).

Lookup tables also learn from the data: a synonym variant of a value in a table, and every value
annotated in an example (`[мск]{"entity": "city", "value": "Москва"}`), are matched like table
entries. Matching ignores case and ё/е; offsets refer to the original text.
"""

from __future__ import annotations

import re
from typing import Any

from nlu import system_entities
from nlu.data import TrainingData
from nlu.types import Entity

FORMAT = 1


def fold(text: str) -> str:
    """Lowercase with ё→е, keeping the length so offsets stay valid."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few letters lowercase to two ("İ"): those stay as they are
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return lowered.replace("ё", "е")


class EntityExtractor:
    def __init__(
        self,
        regexes: dict[str, list[str]],
        lookups: dict[str, list[str]],
        synonyms: dict[str, str],
    ) -> None:
        self.regexes = regexes
        self.lookups = lookups
        self.synonyms = synonyms
        # a match is reported as the table's own spelling unless a synonym says otherwise
        self._values = {fold(v).strip(): v for values in lookups.values() for v in values}
        self._values.update(synonyms)
        #: names the data defines itself; built-in entities of the same name are left out
        self._own_names = frozenset(regexes) | frozenset(lookups)
        self._patterns = [
            (name, re.compile(p, re.IGNORECASE)) for name, ps in regexes.items() for p in ps
        ]
        for name, values in lookups.items():
            # longest first so that "нижний новгород" wins over "новгород"
            alternatives = "|".join(re.escape(fold(v)) for v in sorted(values, key=len)[::-1])
            self._patterns.append((name, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")))

    @classmethod
    def from_data(cls, data: TrainingData) -> EntityExtractor:
        """Raises re.error for a bad regex (nlu.validate reports them with file:line first)."""
        regexes: dict[str, list[str]] = {}
        for entry in data.regexes:
            re.compile(entry.value)
            regexes.setdefault(entry.name, []).append(entry.value)
        synonyms = data.synonym_map()
        lookups: dict[str, set[str]] = {}
        for entry in data.lookups:
            lookups.setdefault(entry.name, set()).add(entry.value.strip())
        for example in data.examples:
            for entity in example.entities:
                table = lookups.setdefault(entity.entity, set())
                table.add(example.text[entity.start : entity.end])
                table.add(entity.value)
        for variant, canonical in synonyms.items():
            for table in lookups.values():
                if canonical in table:
                    table.add(variant)
        tables = {name: sorted(v for v in values if v) for name, values in lookups.items()}
        return cls(regexes, {k: v for k, v in tables.items() if v}, synonyms)

    def extract(self, text: str) -> tuple[Entity, ...]:
        folded = fold(text)
        found: list[Entity] = []
        for name, pattern in self._patterns:
            for match in pattern.finditer(folded):
                if match.end() > match.start():
                    surface = text[match.start() : match.end()]
                    value = self._values.get(fold(surface).strip(), surface)
                    found.append(Entity(name, value, match.start(), match.end()))
        # An amount's currency shares its span: it rides along with the amount it belongs to.
        currencies: list[Entity] = []
        for entity in system_entities.extract(folded):
            if entity.entity in self._own_names:
                continue
            (currencies if entity.entity == "currency" else found).append(entity)
        kept = _without_overlaps(found)
        if currencies:
            amounts = {(e.start, e.end) for e in kept if e.entity == "amount"}
            riders = [c for c in currencies if (c.start, c.end) in amounts]
            kept = tuple(sorted((*kept, *riders), key=lambda e: e.start))
        return kept

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "regexes": self.regexes,
            "lookups": self.lookups,
            "synonyms": self.synonyms,
        }

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> EntityExtractor:
        if blob.get("format") != FORMAT:
            raise ValueError("unknown entity extractor format")
        return cls(blob["regexes"], blob["lookups"], blob["synonyms"])


def _without_overlaps(entities: list[Entity]) -> tuple[Entity, ...]:
    """Longest match wins; ties go to the earlier one (regexes come before lookups)."""
    kept: list[Entity] = []
    for entity in sorted(entities, key=lambda e: (e.start - e.end, e.start)):
        if all(entity.end <= k.start or entity.start >= k.end for k in kept):
            kept.append(entity)
    return tuple(sorted(kept, key=lambda e: e.start))
