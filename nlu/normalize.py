"""Turn a customer's message into tokens and lemmas the classifier can compare.

Customers write the way they talk: any case, ё or е, emoji, Russian typed in Latin letters
("gde moi zakaz") or with the keyboard left in the English layout ("ghbdtn"). Latin words are
mapped back to Cyrillic one at a time and only when the result is a word the Russian dictionary
knows; short words ("v", "i", "ne") only once the message is evidently Russian, because alone
they are just as likely English.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata

import pymorphy3

from nlu.translit import MAX_WORD, layout_candidates, translit_candidates

_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_CYRILLIC = re.compile(r"[а-я]")
_LATIN = re.compile(r"[a-z]")
# Latin letters that look like Cyrillic ones, for words typed with a mixed keyboard ("зaкaз").
_HOMOGLYPHS = str.maketrans("aeopcxykmt", "аеорсхукмт")
_MIN_ALONE = 3  # shorter Latin words are mapped only inside an evidently Russian message
# Dictionary marks for distorted, erroneous spellings, initials and abbreviations.
_DUBIOUS = frozenset({"Dist", "Erro", "Init", "Abbr"})
NUMBER = "0"  # every digit run becomes this token: order numbers are not intent words
#: Only the start of a text is analysed. An intent is stated in the first sentence or two
#: (the longest training examples are well under this), and everything after it only costs
#: time: a pasted log or a 1,000,000-character message would take seconds to normalise,
#: holding the worker's shard, for no better answer.
MAX_ANALYZED = 1000


def _dictionary_version() -> str:
    try:
        return metadata.version("pymorphy3-dicts-ru")
    except metadata.PackageNotFoundError:
        return "unknown"


#: Lemmas change with the dictionary, so it is part of the training data fingerprint.
DICTIONARY_VERSION = _dictionary_version()


@dataclass(frozen=True, slots=True)
class Normalized:
    tokens: tuple[str, ...]
    lemmas: tuple[str, ...]
    #: the Latin words that were read as Russian: kept as extra features, because the reading
    #: is a guess and the same words may be English ("my order" also reads as "мы ордер")
    originals: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@cache
def morph() -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=100_000)
def lemma(token: str) -> str:
    if len(token) > MAX_WORD or not _CYRILLIC.search(token):  # a letter run, not a word
        return token
    return str(morph().parse(token)[0].normal_form).replace("ё", "е")


@lru_cache(maxsize=100_000)
def is_russian_word(word: str) -> bool:
    """In the dictionary as a regular word (not only as a distorted spelling like "ето")."""
    if not word or _CYRILLIC.fullmatch(word[0]) is None or not morph().word_is_known(word):
        return False
    return any(p.is_known and not (p.tag.grammemes & _DUBIOUS) for p in morph().parse(word))


def normalize(text: str, *, latin_to_cyrillic: bool = True) -> str:
    """The normalised text: "Где МОЙ заказ?! 😡" → "где мой заказ 😡"."""
    return analyze(text, latin_to_cyrillic=latin_to_cyrillic).text


def analyze(text: str, *, latin_to_cyrillic: bool = True) -> Normalized:
    """Tokens and lemmas of the text's first `MAX_ANALYZED` characters."""
    chunks = _clean(text[:MAX_ANALYZED]).split()
    originals: list[str] = []
    if latin_to_cyrillic:
        mapped = _map_latin(chunks)
        for chunk, new in zip(chunks, mapped, strict=True):
            if new != chunk:
                originals.extend(_split(chunk))
        chunks = mapped
    tokens = [token for chunk in chunks for token in _split(chunk)]
    return Normalized(tuple(tokens), tuple(lemma(t) for t in tokens), tuple(originals))


def _clean(text: str) -> str:
    # "№" first: NFKC would turn it into "No", a Latin word
    return unicodedata.normalize("NFKC", text.replace("№", " ")).lower().replace("ё", "е")


def _split(chunk: str) -> list[str]:
    """Words and digit runs, plus pictographs (emoji carry mood); other punctuation goes."""
    tokens: list[str] = []
    start = 0
    for index, char in enumerate(chunk):
        if unicodedata.category(char) == "So":
            tokens.extend(_words(chunk[start:index]))
            tokens.append(char)
            start = index + 1
    tokens.extend(_words(chunk[start:]))
    return tokens


def _words(part: str) -> list[str]:
    words = []
    for word in _TOKEN.findall(part):
        if word.isdigit():
            words.append(NUMBER)
        elif _CYRILLIC.search(word) and _LATIN.search(word):
            words.append(word.translate(_HOMOGLYPHS))
        else:
            words.append(word)
    return words


def _map_latin(chunks: list[str]) -> list[str]:
    """Long words decide whether the message is Russian and typed how; short ones follow."""
    russian = any(_CYRILLIC.search(chunk) for chunk in chunks)
    readings: dict[int, tuple[str | None, str | None]] = {}
    short: list[int] = []
    for index, chunk in enumerate(chunks):
        if _LATIN.search(chunk) is None or _CYRILLIC.search(chunk) is not None:
            continue
        if sum(c.isalpha() for c in chunk) < _MIN_ALONE:
            short.append(index)
        else:
            readings[index] = _readings(chunk)
    votes = [
        layout is not None
        for layout, translit in readings.values()
        if (layout is None) != (translit is None)
    ]
    prefer_layout = sum(votes) * 2 > len(votes)
    result = list(chunks)
    for index, (layout, translit) in readings.items():
        chosen = (layout or translit) if prefer_layout else (translit or layout)
        if chosen is not None:
            result[index] = chosen
            russian = True
    if russian:
        for index in short:
            layout, translit = _readings(chunks[index])
            chosen = (layout or translit) if prefer_layout else (translit or layout)
            result[index] = chosen or chunks[index]
    return result


@lru_cache(maxsize=50_000)
def _readings(chunk: str) -> tuple[str | None, str | None]:
    """The chunk read in the Russian layout and as transliteration, where made of known words."""
    layout = next((c for c in layout_candidates(chunk) if _all_known(c)), None)
    word = "".join(ch for ch in chunk if ch.isalpha() or ch == "'")
    translit = None
    if word.isascii() and word in chunk:
        reading = next((c for c in translit_candidates(word) if is_russian_word(c)), None)
        if reading is not None:
            # keep the punctuation around the word: "zakaz?" → "заказ?"
            translit = chunk.replace(word, reading, 1)
    return layout, translit


def _all_known(text: str) -> bool:
    words = [w for w in _TOKEN.findall(text) if not w.isdigit()]
    return bool(words) and all(is_russian_word(w) for w in words)
