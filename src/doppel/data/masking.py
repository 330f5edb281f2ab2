"""Privacy masking: phones, emails, card numbers (and URLs if asked) become typed placeholders.

Chat exports hold friends' phone numbers and cards; a model trained on them could recite them.
The common message has no digits, '@' or '://', so it leaves after three cheap checks; only
texts with at least 7 digits pay for `phonenumbers` (about half a millisecond each).
"""

from __future__ import annotations

import re
from collections import Counter

import phonenumbers
from phonenumbers import Leniency

PLACEHOLDERS = {"phone": "[phone]", "email": "[email]", "card": "[card]", "url": "[url]"}
# the export's own entity types -> our placeholder types
ENTITY_TYPES = {"phone": "phone", "email": "email", "bank_card": "card"}
# regions tried for numbers written without a country code (None: only "+..." numbers)
PHONE_REGIONS: tuple[str | None, ...] = (None, "US", "GB", "RU", "DE")
MIN_PHONE_DIGITS = 7

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+")
_URL_TAIL = ".,;:!?)]}»"
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _replace_spans(
    text: str, spans: list[tuple[int, int]], placeholder: str, counts: Counter[str], kind: str
) -> str:
    """Replace spans (overlapping ones merged: regions may find one number twice), counting them."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if merged:
        counts[kind] += len(merged)
    for start, end in reversed(merged):
        text = text[:start] + placeholder + text[end:]
    return text


class Masker:
    """Masks one text at a time and keeps the counts per placeholder type."""

    def __init__(self, *, urls: bool = False, regions: tuple[str | None, ...] = PHONE_REGIONS):
        self.urls = urls
        self.regions = regions
        self.counts: Counter[str] = Counter()
        self.kinds = ("phone", "email", "card", "url") if urls else ("phone", "email", "card")
        # `mask` leaves a text without entities and without any of these unchanged
        self.trigger = re.compile(r"\d|@|://|www\." if urls else r"\d|@")

    def mask(self, text: str, entities: list[tuple[str, str]] | None = None) -> str:
        """Return `text` with PII replaced by placeholders (entities from the export first)."""
        if entities:
            text = self._mask_entities(text, entities)
        if self.urls and ("://" in text or "www." in text):
            text = self._mask_urls(text)
        if "@" in text:
            text = self._sub(_EMAIL, text, "email")
        if _DIGIT.search(text) is not None and len(_DIGIT.findall(text)) >= MIN_PHONE_DIGITS:
            text = self._mask_cards(text)
            text = self._mask_phones(text)
        return text

    def _mask_entities(self, text: str, entities: list[tuple[str, str]]) -> str:
        for kind, value in entities:
            kind = ENTITY_TYPES.get(kind)
            if kind and value and value in text:
                self.counts[kind] += text.count(value)
                text = text.replace(value, PLACEHOLDERS[kind])
        return text

    def _sub(self, pattern: re.Pattern[str], text: str, kind: str) -> str:
        text, found = pattern.subn(PLACEHOLDERS[kind], text)
        self.counts[kind] += found
        return text

    def _mask_urls(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            url = match.group(0)
            kept = url.rstrip(_URL_TAIL)
            self.counts["url"] += 1
            return PLACEHOLDERS["url"] + url[len(kept):]

        return _URL.sub(replace, text)

    def _mask_cards(self, text: str) -> str:
        spans = []
        for match in _CARD.finditer(text):
            digits = match.group(0).replace(" ", "").replace("-", "")
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                spans.append(match.span())
        return _replace_spans(text, spans, PLACEHOLDERS["card"], self.counts, "card")

    def _mask_phones(self, text: str) -> str:
        if len(_DIGIT.findall(text)) < MIN_PHONE_DIGITS:  # cards may have taken the digits
            return text
        found: set[tuple[int, int]] = set()
        for region in self.regions:
            if region is None and "+" not in text:  # without a region only "+..." numbers match
                continue
            # "+" and a country code make a phone number even when unallocated (the privacy
            # canary "+44 7911 482730" is not VALID); a bare digit run must be a real number
            leniency = Leniency.POSSIBLE if region is None else Leniency.VALID
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
                found.add((match.start, match.end))
        if not found:
            return text
        return _replace_spans(text, list(found), PLACEHOLDERS["phone"], self.counts, "phone")
