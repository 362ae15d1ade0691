"""Readings of a Latin-letter word as Russian: the wrong keyboard layout and transliteration.

Both functions only propose candidates, most likely first; `nlu.normalize` keeps the first one
the Russian dictionary knows.
"""

from __future__ import annotations

from collections.abc import Iterator

# The ЙЦУКЕН layout over QWERTY keys, lowercase and shifted (the text is lowercased before).
_LAYOUT = str.maketrans(
    "qwertyuiop[]asdfghjkl;'zxcvbnm,.`{}:\"<>~/",
    "йцукенгшщзхъфывапролджэячсмитьбюёхъжэбюе.",
)
_LAYOUT_KEYS = frozenset("qwertyuiop[]asdfghjkl;'zxcvbnm,.`{}:\"<>~/")

# Longest spellings first; each maps to its readings, most common first. ё is folded into е.
_TRANSLIT: dict[str, tuple[str, ...]] = {
    "shch": ("щ",),
    "sch": ("щ",),
    "tch": ("ч",),
    "zh": ("ж",),
    "kh": ("х",),
    "ch": ("ч",),
    "sh": ("ш",),
    "ts": ("ц", "тс"),
    "tz": ("ц",),
    "ph": ("ф",),
    "yu": ("ю",),
    "ju": ("ю",),
    "iu": ("ю", "иу"),
    "ya": ("я",),
    "ja": ("я",),
    "ia": ("я", "ия"),
    "yo": ("е",),
    "jo": ("е",),
    "ye": ("е",),
    "je": ("е",),
    "ii": ("ий", "ии"),
    "yi": ("ый", "ий"),
    "iy": ("ий",),
    "a": ("а",),
    "b": ("б",),
    "c": ("ц", "к", "с"),
    "d": ("д",),
    "e": ("е", "э"),
    "f": ("ф",),
    "g": ("г",),
    "h": ("х",),
    "i": ("и",),
    "j": ("й", "ж"),
    "k": ("к",),
    "l": ("л",),
    "m": ("м",),
    "n": ("н",),
    "o": ("о",),
    "p": ("п",),
    "q": ("к",),
    "r": ("р",),
    "s": ("с",),
    "t": ("т",),
    "u": ("у",),
    "v": ("в",),
    "w": ("в", "ш"),
    "x": ("кс", "х"),
    "y": ("ы", "й", "у"),
    "z": ("з",),
    "'": ("ь",),
}
_LONGEST = max(len(k) for k in _TRANSLIT)
_CONSONANTS = frozenset("бвгджзклмнпрстфхцчшщ")
_MAX_CANDIDATES = 96
_SOFT_SIGN_BASES = 6  # how many plain readings also get a ь tried after one consonant
#: Longer letter runs are not words ("aaaa…" pasted 1,000 times, a URL, a hash): they get no
#: readings at all. Russian words this long are rare, and typed in Latin letters rarer still;
#: the cap keeps the work on one chunk small whatever a customer sends.
MAX_WORD = 40


def layout_candidates(chunk: str) -> Iterator[str]:
    """The chunk as if typed on the Russian layout ("ghbdtn" → "привет").

    A trailing "," or "." is tried both as a letter (б, ю) and as punctuation.
    """
    if len(chunk) > MAX_WORD or not chunk.isascii() or not any(c.isalpha() for c in chunk):
        return
    body = chunk.rstrip("!?")
    tail = chunk[len(body) :]
    if not all(c in _LAYOUT_KEYS or c.isdigit() for c in body):
        return
    yield body.translate(_LAYOUT) + tail
    stripped = body.rstrip(",.")
    if stripped and stripped != body:
        yield stripped.translate(_LAYOUT) + body[len(stripped) :] + tail


def translit_candidates(word: str) -> Iterator[str]:
    """Cyrillic readings of a transliterated word ("zakaz" → "заказ"), likeliest first.

    Transliterators often drop the soft sign ("skolko"), so readings with one ь added after a
    consonant follow the plain ones. A word over `MAX_WORD` letters has none.
    """
    if len(word) > MAX_WORD:
        return
    plain = []
    for count, candidate in enumerate(_readings(word)):
        if count >= _MAX_CANDIDATES:
            return
        plain.append(candidate)
        yield candidate
    for candidate in plain[:_SOFT_SIGN_BASES]:
        for index in range(1, len(candidate) + 1):
            if candidate[index - 1] in _CONSONANTS and (
                index == len(candidate) or candidate[index] in _CONSONANTS
            ):
                yield candidate[:index] + "ь" + candidate[index:]


def _readings(word: str) -> Iterator[str]:
    """Every reading of the whole word, in the order of a depth-first walk that tries the
    longest spelling and the likeliest reading first.

    Iterative (an explicit stack, not one Python frame per letter), and a position is stepped
    onto only if the rest of the word from it can be read at all: every candidate then costs
    O(len(word)) steps, never a search through dead ends.
    """
    size = len(word)
    if size == 0:
        yield ""
        return
    # readable[i]: word[i:] splits into known spellings (computed from the end, linear)
    readable = [False] * size + [True]
    for start in range(size - 1, -1, -1):
        readable[start] = any(
            readable[start + length] and word[start : start + length] in _TRANSLIT
            for length in range(1, min(_LONGEST, size - start) + 1)
        )
    if not readable[0]:
        return

    def steps(start: int) -> Iterator[tuple[int, str]]:
        for length in range(min(_LONGEST, size - start), 0, -1):
            readings = _TRANSLIT.get(word[start : start + length])
            if readings is not None and readable[start + length]:
                for reading in readings:
                    yield start + length, reading

    parts: list[str] = []  # the readings chosen so far; one fewer than the open levels
    stack = [steps(0)]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            if parts:
                parts.pop()
            continue
        end, reading = step
        if end == size:
            yield "".join(parts) + reading
        else:
            parts.append(reading)
            stack.append(steps(end))
