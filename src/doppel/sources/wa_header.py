"""The date-time header that starts every WhatsApp message line, in every locale; the date order.

Shapes (shared/docs/other-sources-format.md): Android `12/03/2024, 10:15 - `, iOS
`[12/03/2024, 10:15:03] `, time first `[21:41:35, 3/27/22] ` (vi), dots in the time `[27/03/22
14.56.01] ` (id), no comma (nl, cs), 12-hour clocks with a marker before the time (ja, ko, zh)
or after it in any language ("PM", "p. m.", "م"), any Unicode digits, U+202F or U+00A0 for
spaces, Buddhist (2567 BE) and Japanese era (R6) years. Direction marks are gone before this runs
(textlines.py). Nothing in a line says whether 03/04 is day-first or month-first: DateOrder
decides from the whole file.
"""

from __future__ import annotations

import re
from datetime import date

from doppel.errors import DoppelError

ORDERS = ("dmy", "mdy", "ymd")
_S = "[ \u00a0\u202f]"
_LETTER = r"[^\W\d_]"
# AM, PM, a. m., p.m., م, nachm.; possessive: two letter runs side by side would otherwise try
# every split of a long run of letters (quadratic on a 1 MB line)
_MARK = rf"{_LETTER}++\.?(?:{_S}?{_LETTER}++\.?)?"
_DATE = (rf"(?P<a>[A-Za-z]?\d{{1,4}})[./-]{_S}?(?P<b>\d{{1,2}})[./-]{_S}?"
         rf"(?P<c>[A-Za-z]?\d{{1,4}})\.?(?:{_S}?BE)?")
_TIME = (rf"(?:(?P<pre>{_LETTER}{{1,4}}){_S}?)?(?P<h>\d{{1,2}})[:.](?P<mi>\d{{2}})"
         rf"(?:[:.](?P<s>\d{{2}}))?(?:{_S}?(?P<post>{_MARK}))?")
# after the time: "] " (iOS, sometimes "] - "), " - " (Android), or ": " (some locales)
DATE_FIRST = re.compile(rf"(?P<br>\[)?{_DATE}[,،]?{_S}?{_TIME}"
                        rf"(?(br)\]{_S}(?:-{_S})?|(?:{_S}?[-–]|:){_S})")
TIME_FIRST = re.compile(rf"\[{_TIME}[,،]?{_S}?{_DATE}\]{_S}")
FIELDS = ("a", "b", "c", "pre", "h", "mi", "s", "post")
# the same headers found anywhere in a block of lines, each with the rest of its line
SCAN_DATE_FIRST = re.compile(f"^{DATE_FIRST.pattern}(?P<rest>[^\n]*)", re.MULTILINE)
SCAN_TIME_FIRST = re.compile(f"^{TIME_FIRST.pattern}(?P<rest>[^\n]*)", re.MULTILINE)

# 12-hour markers, lower-cased without dots and spaces
_PM = frozenset({"pm", "م", "午後", "오후", "下午", "晚上", "ch", "nachm", "em", "du", "μμ", "ip",
                 "ب.ظ", "بظ", "gabi", "hapon", "pt", "ค่ำ", "หลังเที่ยง"})
_AM = frozenset({"am", "ص", "午前", "오전", "上午", "早上", "sa", "vorm", "fm", "de", "πμ", "ap",
                 "قظ", "umaga", "rt", "ก่อนเที่ยง"})
_NEUTRAL = frozenset({"klo", "kl", "um", "à", "в", "alle", "om", "às", "a las"})  # "at"
_ERAS = {"R": 2018, "H": 1988, "S": 1925, "T": 1911, "M": 1867}  # Japanese era year 1 - 1
_DOTS_AND_SPACES = re.compile(r"[.\s]")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def header(line: str, time_first: bool) -> re.Match[str] | None:
    return (TIME_FIRST if time_first else DATE_FIRST).match(line)


def year(text: str) -> int:
    """A year field: 2-digit (2000s), 4-digit, Buddhist (543 years ahead), Japanese era."""
    if text[0].isalpha():
        return _ERAS.get(text[0].upper(), 2018) + int(text[1:])
    value = int(text)
    if value < 100:
        return 2000 + value
    return value - 543 if value >= 2400 else value


def hour24(hour: int, pre: str | None, post: str | None) -> tuple[int, bool]:
    """(24-hour clock hour, whether the marker was understood)."""
    marker = pre or post
    if marker is None:
        return hour, True
    key = _DOTS_AND_SPACES.sub("", marker.lower())
    if key in _PM:
        return (hour % 12) + 12, True
    if key in _AM:
        return hour % 12, True
    return hour, marker.lower().strip(". ") in _NEUTRAL


def epoch_day(y: int, m: int, d: int) -> int | None:
    """Days since 1970-01-01, or None for an impossible date."""
    try:
        return date(y, m, d).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


class DateOrder:
    """Collects the date fields of every header, then tells day-first from month-first.

    A first field above 12 means day-first, a second above 12 month-first. When neither happens
    the order that keeps the chat in time order wins (a chat is written forwards); when both
    orders fit equally and read different dates, the user has to say (`--date-order`).
    """

    def __init__(self) -> None:
        self.max_a = self.max_b = 0
        self.year_first = False
        self.backwards = {"dmy": 0, "mdy": 0}
        self.differ = False
        self.dates = 0  # distinct dates seen, counted up to 2: one date reads the same either way
        self.example = ""
        self._last: tuple[str, str, str] | None = None
        self._prev: dict[str, tuple[int, int, int]] = {}

    def add(self, a: str, b: str, c: str) -> None:
        fields = (a, b, c)
        if fields == self._last:
            return
        self._last = fields
        if len(a) >= 3 or a[0].isalpha():
            self.year_first = True
            return
        try:
            first, second, y = int(a), int(b), year(c)
        except ValueError:
            return
        self.max_a, self.max_b = max(self.max_a, first), max(self.max_b, second)
        self.dates = min(self.dates + 1, 2)
        if first != second:
            self.differ = True
            self.example = self.example or f"{a}/{b}/{c}"
        for order, key in (("dmy", (y, second, first)), ("mdy", (y, first, second))):
            prev = self._prev.get(order)
            if prev is not None and key < prev:
                self.backwards[order] += 1
            self._prev[order] = key

    def decide(self, forced: str, label: str) -> str:
        if forced != "auto":
            return forced
        if self.year_first:
            return "ymd"
        day_first, month_first = self.max_a > 12, self.max_b > 12
        if day_first and month_first:
            raise DoppelError(f"the dates in {label} fit neither day-first nor month-first "
                              "order; pass --date-order dmy, mdy or ymd")
        if day_first or month_first:
            return "dmy" if day_first else "mdy"
        if not self.differ or self.dates < 2 or self.backwards["dmy"] < self.backwards["mdy"]:
            return "dmy"
        if self.backwards["mdy"] < self.backwards["dmy"]:
            return "mdy"
        raise DoppelError(f"cannot tell whether the dates in {label} are day-first or "
                          f"month-first ({self.example} fits both); pass --date-order dmy or "
                          "--date-order mdy")


def day_of(a: str, b: str, c: str, order: str) -> int | None:
    """The date fields read in `order` as days since 1970, or None if not a date."""
    try:
        if order == "ymd":
            return epoch_day(year(a), int(b), int(c))
        first, second, y = int(a), int(b), year(c)
    except (ValueError, IndexError):
        return None
    return epoch_day(y, second, first) if order == "dmy" else epoch_day(y, first, second)
