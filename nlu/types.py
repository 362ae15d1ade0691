"""The NLU's public vocabulary: what a parse returns and what every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: The intent name a parse reports when no intent is confident enough. Test sets may also
#: label examples with it to measure out-of-scope recall.
OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Entity:
    """A value found in the text by a regex or a lookup table (synonyms already applied)."""

    entity: str
    value: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ParseResult:
    text: str
    intent: str
    confidence: float
    ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = field(default_factory=tuple)

    @property
    def in_scope(self) -> bool:
        return self.intent != OUT_OF_SCOPE

    @property
    def top_guess(self) -> IntentScore | None:
        """The best intent even when the parse itself is out of scope (for the trainers' inbox)."""
        return self.ranking[0] if self.ranking else None


class NLUBackend(Protocol):
    """Anything that turns a customer's text into an intent: the embedded model or Rasa."""

    name: str

    async def parse(self, text: str) -> ParseResult: ...

    def known_intents(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of a data check, pointing at the file and line a trainer has to open."""

    file: str
    line: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"
