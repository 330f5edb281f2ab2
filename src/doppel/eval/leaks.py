"""Looking for masked canaries where they must not be: files (any bytes) and generated text.

Normalised, so a leak written differently is still found: a phone or card number matches its
digits in order with at most two separators (space, dash, dot, slash, brackets) between any two,
so "+44 7911 123456", "447911123456" and "07911-123-456"'s national digits all count; a phone
also matches its national number alone (without country code or trunk prefix); an email
matches case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from doppel.eval.canaries import MaskedCanary

_SEPARATORS = r"[\s\-./()]{0,2}"
CHUNK = 1 << 24  # files are read in 16 MB pieces (safetensors may be gigabytes)
OVERLAP = 1024  # longer than any needle, so a canary cut by a chunk edge is still found


def _digits_pattern(digits: str) -> str:
    return _SEPARATORS.join(digits)


def national_number(value: str) -> str | None:
    """A phone's national significant number (digits), when phonenumbers can parse it: in the
    first region where it is a valid number, else where it is a possible one."""
    import phonenumbers

    from doppel.data.masking import PHONE_REGIONS

    parsed = []
    for region in PHONE_REGIONS:
        try:
            parsed.append(phonenumbers.parse(value, region))
        except phonenumbers.NumberParseException:
            continue
    for check in (phonenumbers.is_valid_number, phonenumbers.is_possible_number):
        found = next((number for number in parsed if check(number)), None)
        if found is not None:
            return phonenumbers.national_significant_number(found)
    return None


def needle(canary: MaskedCanary) -> re.Pattern[str]:
    """One pattern that matches every normalised form of the canary."""
    if canary.kind == "email":
        return re.compile(re.escape(canary.value), re.IGNORECASE)
    forms = ["".join(ch for ch in canary.value if ch.isdigit())]
    if canary.kind == "phone":
        national = national_number(canary.value)
        if national and national not in forms:
            forms.append(national)
    return re.compile("|".join(_digits_pattern(digits) for digits in forms))


def found_in_text(canaries: Iterable[MaskedCanary], text: str) -> list[str]:
    """Ids of the canaries that appear in text."""
    return [c.id for c in canaries if needle(c).search(text)]


def _chunks(path: Path) -> Iterable[str]:
    """The file's bytes as text (undecodable bytes replaced), in overlapping pieces."""
    with path.open("rb") as handle:
        tail = b""
        while piece := handle.read(CHUNK):
            yield (tail + piece).decode("utf-8", errors="replace")
            tail = piece[-OVERLAP:]


def found_in_folder(canaries: Iterable[MaskedCanary], folder: Path) -> list[tuple[str, str]]:
    """(canary id, file relative to folder) for every canary in every file under folder."""
    patterns = {c.id: needle(c) for c in canaries}
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        hits: set[str] = set()
        for text in _chunks(path):
            hits |= {cid for cid, pattern in patterns.items() if cid not in hits
                     and pattern.search(text)}
        found += [(cid, str(path.relative_to(folder))) for cid in sorted(hits)]
    return found


def files_in(folder: Path) -> int:
    return sum(1 for p in Path(folder).rglob("*") if p.is_file())
