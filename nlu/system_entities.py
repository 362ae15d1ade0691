"""Entities every support bot needs, built in: phone, email, date, amount (and its currency).

Customers give these in a hundred spellings ("8 916 123-45-67", "+7(916)1234567"; "завтра",
"12 марта", "12.03"; "1 500 руб", "2к", "$20"), and a flow wants one canonical value to store
and check: `+79161234567`, `ivan@mail.ru`, `2026-03-12`, `1500` with `currency` `RUB`. Regexes
in the NLU data could find the spellings but not normalise them, so these are code, like
Rasa's Duckling dimensions, and need no configuration. Training data that defines an entity of
the same name (a regex, a lookup or an annotation) takes that name over: its own values win.

Relative dates ("завтра", "в пятницу") count from `today()`, the date of the bot's host,
which a deployment sets to the team's time zone (TZ); a weekday means the next one to come.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta

from nlu.types import Entity

NAMES = frozenset({"phone", "email", "date", "amount", "currency"})

today: Callable[[], date] = date.today

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?!\w)")
# Russian numbers: +7 or 8, then ten digits in any grouping; other countries: + and 8-15 digits.
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+7|8)[\s-]*\(?\d{3}\)?(?:[\s-]*\d){7}|\+\d(?:[\s().-]*\d){7,14})(?!\w)"
)
_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CURRENCIES = {
    "RUB": r"₽|руб(?:л(?:ей|я|ь)?)?\.?|р\.?|rub|rur",
    "USD": r"\$|долл(?:ар(?:ов|а)?)?\.?|бакс(?:ов|а)?|usd|dollars?",
    "EUR": r"€|евро|eur|euros?",
}
_SIGNS = {"$": "USD", "€": "EUR", "₽": "RUB"}
# A bare number is not an amount: it needs a currency sign or word, or a scale ("2к", "3 тыс").
_AMOUNT = re.compile(
    r"(?<![\w.,$€₽])(?P<sign>[$€₽])?\s?"
    rf"(?P<number>{_NUMBER})"
    r"(?:(?P<k>к|k)|\s?(?P<thousands>тыс(?:яч[аи]?)?\.?|thousand))?"
    r"(?:\s?(?:" + "|".join(f"(?P<{code}>{p})" for code, p in _CURRENCIES.items()) + "))?"
    r"(?!\w)"
)
_MONTHS = {
    "янв": 1, "фев": 2, "мар": 3, "апр": 4, "мая": 5, "май": 5, "мае": 5, "июн": 6,
    "июл": 7, "авг": 8, "сен": 9, "окт": 10, "ноя": 11, "дек": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_WORD = "(?P<{}>" + "|".join(_MONTHS) + r")[^\W\d_]*\.?"
_RELATIVE = {
    "позавчера": -2, "вчера": -1, "сегодня": 0, "завтра": 1, "послезавтра": 2,
    "yesterday": -1, "today": 0, "tomorrow": 1,
}  # fmt: skip
_WEEKDAYS = {
    "понедельник": 0, "вторник": 1, "сред": 2, "четверг": 3, "пятниц": 4, "суббот": 5,
    "воскресень": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
    "saturday": 5, "sunday": 6,
}  # fmt: skip
_DATE = re.compile(
    r"(?<![\w.,])(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<dd>\d{1,2})[./](?P<dm>\d{1,2})(?:[./](?P<dy>\d{4}|\d{2}))?"
    r"|(?P<td>\d{1,2})\s+" + _MONTH_WORD.format("tm") + r"(?:\s+(?P<ty>\d{4}))?"
    r"|" + _MONTH_WORD.format("em") + r"\s+(?P<ed>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<ey>\d{4}))?"
    r"|(?P<relative>" + "|".join(sorted(_RELATIVE, key=len, reverse=True)) + ")"
    # a weekday only after a preposition: "среда" alone is as often an environment as a day
    r"|(?:во?|on|next|by)\s+(?P<weekday>" + "|".join(_WEEKDAYS) + r")[^\W\d_]*"
    r")(?!\w|[./]\d)"
)


def extract(folded: str) -> Iterator[Entity]:
    """Every built-in entity in `folded` (the text lowercased with ё→е: offsets are the same)."""
    for match in _EMAIL.finditer(folded):
        yield Entity("email", match.group(), match.start(), match.end())
    for match in _PHONE.finditer(folded):
        digits = re.sub(r"\D", "", match.group())
        if match.group().startswith("8") or (digits.startswith("7") and len(digits) == 11):
            digits = "7" + digits[-10:]
        yield Entity("phone", f"+{digits}", match.start(), match.end())
    for match in _AMOUNT.finditer(folded):
        yield from _amount(match)
    for match in _DATE.finditer(folded):
        value = _date(match)
        if value is not None:
            yield Entity("date", value.isoformat(), match.start(), match.end())


def _amount(match: re.Match[str]) -> Iterator[Entity]:
    code = _SIGNS.get(match["sign"] or "") or next((c for c in _CURRENCIES if match[c]), None)
    scaled = match["k"] or match["thousands"]
    if code is None and not scaled:
        return
    number = float(re.sub(r"[ \u00a0\u202f]", "", match["number"]).replace(",", "."))
    value = f"{number * (1000 if scaled else 1):.2f}".rstrip("0").rstrip(".")
    start = match.start("sign") if match["sign"] else match.start("number")
    yield Entity("amount", value, start, match.end())
    if code:
        yield Entity("currency", code, start, match.end())


def _date(match: re.Match[str]) -> date | None:
    now = today()
    try:
        if match["iy"]:
            return date(int(match["iy"]), int(match["im"]), int(match["id"]))
        if match["dd"]:
            if match["dy"] is None and len(match["dm"]) == 1:
                return None  # "1.5" is a number, "01.05" and "1.05.26" are dates
            return _day(now, int(match["dd"]), int(match["dm"]), match["dy"])
        if match["td"]:
            return _day(now, int(match["td"]), _MONTHS[match["tm"]], match["ty"])
        if match["em"]:
            return _day(now, int(match["ed"]), _MONTHS[match["em"]], match["ey"])
    except ValueError:  # 31.02, 13.13: numbers that only look like a date
        return None
    if match["relative"]:
        return now + timedelta(days=_RELATIVE[match["relative"]])
    weekday = next(v for k, v in _WEEKDAYS.items() if match["weekday"].startswith(k))
    return now + timedelta(days=(weekday - now.weekday() - 1) % 7 + 1)


def _day(now: date, day: int, month: int, year: str | None) -> date:
    """A date without a year is the next one to come (yesterday's date means next year's)."""
    if year is not None:
        return date(int(year) + (2000 if len(year) == 2 else 0), month, day)
    candidate = date(now.year, month, day)
    return candidate if candidate >= now - timedelta(days=1) else date(now.year + 1, month, day)
