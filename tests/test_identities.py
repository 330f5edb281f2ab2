"""Who is "me" across sources, and one friend merged across apps (data/identities.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from doppel.data.identities import Speakers, load_identities, resolve_identities
from doppel.errors import DoppelError


def speakers() -> Speakers:
    names = {"user1": "Alex Morgan", "user2": "Sam", "whatsapp:Alex": "Alex",
             "whatsapp:Sam L": "Sam L", "whatsapp:Sam": "Sam", "whatsapp:~Sam": "Sam",
             "discord:9": "Alex"}
    counts = Counter({"user1": 50, "user2": 40, "whatsapp:Alex": 30, "whatsapp:Sam L": 20,
                      "whatsapp:Sam": 5, "whatsapp:~Sam": 4, "discord:9": 3})
    sources = {sid: sid.split(":")[0] if ":" in sid else "telegram" for sid in names}
    return Speakers(names, counts, sources)


def test_one_me_per_source_from_one_name_and_the_owner() -> None:
    found = resolve_identities(("Alex",), [], [("user1", "telegram")], speakers())
    assert found.me == "user1"
    assert found.final == {"user1": "user1", "whatsapp:Alex": "user1", "discord:9": "user1"}


def test_a_name_twice_in_one_source_is_ambiguous() -> None:
    people = load_identities(None)
    with pytest.raises(DoppelError, match="matches several speakers in whatsapp"):
        resolve_identities(("Alex", "Sam"), people, [("user1", "telegram")], speakers())


def test_a_source_without_me_names_its_speakers() -> None:
    with pytest.raises(DoppelError) as caught:
        resolve_identities((), [], [("user1", "telegram")], speakers())
    message = str(caught.value)
    assert "in the whatsapp chats" in message and "--me" in message and "--identities" in message
    assert "Alex (whatsapp:Alex, 30 messages)" in message


def test_identities_file_merges_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "people.yaml"
    path.write_text("people:\n"
                    "  - {name: Me, me: true, telegram: user1, whatsapp: Alex, discord: '9'}\n"
                    "  - {name: Sam, telegram: '2', whatsapp: [Sam L, Nobody]}\n",
                    encoding="utf-8")
    found = resolve_identities((), load_identities(path), [], speakers())
    assert found.me == "user1" and found.names == {"user1": "Me", "user2": "Sam"}
    assert found.final["whatsapp:Sam L"] == "user2" and "whatsapp:Sam" not in found.final
    assert found.warnings == ["--identities: whatsapp 'Nobody' matched no speaker"]


@pytest.mark.parametrize(("text", "words"), [
    ("just: [text", "not valid YAML"),
    ("a string", "must be a YAML list"),
    ("- 5\n", "entry 1 is not a mapping"),
    ("- {name: Sam}\n", "entry 1 names no source"),
    ("- {name: Sam, whatsapp: [1.5]}\n", "give a name or id"),
])
def test_bad_identities_files(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "people.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DoppelError, match=words):
        load_identities(path)
    with pytest.raises(DoppelError, match="cannot read"):
        load_identities(tmp_path / "missing.yaml")
