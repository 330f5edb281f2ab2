"""Privacy canaries: what was planted in an export, as the JSON file `doppel eval --canaries` reads.

A canary is a fake secret put into a copy of an export before `doppel prepare` (eval/planting.py
plants the default set into a Telegram export; a user may write their own file). Two kinds:
- masked canaries (phones, emails, card numbers): prepare must mask them, so none may appear in
  the dataset folder, the run folder or any generation (eval/leaks.py looks for them);
- one unmasked secret sentence ("my locker code is 4 8 1 5 9 2") repeated in the user's
  messages: its exposure (eval/exposure.py) says how much a run memorised it.

The file (schema "doppel-canaries/1"):

    {"schema": "doppel-canaries/1",
     "masked": [{"id": "phone-1", "kind": "phone", "value": "+44 7911 123456",
                 "speaker": "Alex Morgan", "history": [["Sam Carter", "what's your number?"]]}],
     "secret": {"template": "my locker code is {}", "value": "4 8 1 5 9 2",
                "speaker": "Alex Morgan", "history": [["Sam Carter", "locker code again?"]],
                "occurrences": 6, "candidates": 1000, "seed": 0}}

`history` is the text that preceded the canary in the export ([speaker, text], oldest first): the
prompt of the generations probed for it. A secret's candidates have its value's shape: each digit
replaced by a random digit, each letter by a random letter, everything else kept.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from doppel.errors import DoppelError

SCHEMA = "doppel-canaries/1"
Kind = Literal["phone", "email", "card"]


@dataclass(frozen=True)
class MaskedCanary:
    id: str
    kind: Kind
    value: str  # as written in the export
    speaker: str
    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Secret:
    template: str  # the sentence, "{}" where the value goes
    value: str
    speaker: str
    history: tuple[tuple[str, str], ...] = ()
    occurrences: int = 1  # times it was planted in the export
    candidates: int = 1000  # R: random values of the same shape it is ranked among
    seed: int = 0

    @property
    def text(self) -> str:
        return self.template.format(self.value)

    def alternatives(self) -> list[str]:
        """R distinct random values of the value's shape, none equal to it (seeded)."""
        rng = random.Random(f"{self.seed}:{self.value}")
        found: dict[str, None] = {}
        while len(found) < self.candidates:
            other = "".join(_like(char, rng) for char in self.value)
            if other != self.value:
                found[other] = None
        return list(found)

    def shape_size(self) -> int:
        """How many values share this shape."""
        size = 1
        for char in self.value:
            size *= 10 if char.isdigit() else 26 if char.isascii() and char.isalpha() else 1
        return size


def _like(char: str, rng: random.Random) -> str:
    if char.isdigit():
        return rng.choice(string.digits)
    if char.isascii() and char.isalpha():
        return rng.choice(string.ascii_lowercase if char.islower() else string.ascii_uppercase)
    return char


@dataclass(frozen=True)
class CanarySet:
    masked: tuple[MaskedCanary, ...] = ()
    secret: Secret | None = None
    schema: str = SCHEMA
    path: str = field(default="", compare=False)

    def to_json(self) -> dict:
        data = _adapter().dump_python(self, mode="json")
        data.pop("path")
        return data


@cache
def _adapter():
    from pydantic import TypeAdapter

    return TypeAdapter(CanarySet)


def write_canaries(path: Path, canaries: CanarySet) -> None:
    from doppel.atomic import atomic_file

    with atomic_file(Path(path)) as out:
        json.dump(canaries.to_json(), out, indent=1, ensure_ascii=False)


def read_canaries(path: Path) -> CanarySet:
    """The canaries file, checked: any problem is one line naming the file."""
    from pydantic import ValidationError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DoppelError(f"cannot read canaries file {path}: {error}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise DoppelError(f"{path} is not a canaries file: it needs \"schema\": \"{SCHEMA}\" "
                          "(see `doppel eval --help`)")
    try:
        canaries = _adapter().validate_python({**data, "path": str(path)})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise DoppelError(f"{path} is not a canaries file: {first['msg']} at {where}") from None
    _check(canaries, path)
    return canaries


def _check(canaries: CanarySet, path: Path) -> None:
    if not canaries.masked and canaries.secret is None:
        raise DoppelError(f"{path} plants nothing: give \"masked\" canaries or a \"secret\"")
    for canary in canaries.masked:
        if not canary.value.strip():
            raise DoppelError(f"{path}: canary {canary.id!r} has an empty value")
    secret = canaries.secret
    if secret is None:
        return
    if "{}" not in secret.template:
        raise DoppelError(f"{path}: the secret's template needs {{}} where the value goes")
    if secret.candidates < 1 or secret.shape_size() < 2 * (secret.candidates + 1):
        raise DoppelError(f"{path}: the secret {secret.value!r} has too few values of its shape "
                          f"for {secret.candidates} candidates; use more digits or letters")
