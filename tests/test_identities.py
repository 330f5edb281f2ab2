"""Who is "me" across sources, and one friend merged across apps (data/identities.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from doppel.data.identities import Speakers, load_identities, owner_ids, resolve_identities
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


def chat_names() -> Speakers:
    """Speakers of apps that know people only by name: each name is an id inside its chat
    (sources/ids.py), so the same name in two chats is two ids."""
    names = {"whatsapp:aaa/Alex": "Alex", "whatsapp:bbb/Alex": "Alex", "whatsapp:aaa/Sam": "Sam",
             "whatsapp:bbb/Sam": "Sam", "messenger:inbox/x_1/Alex": "Alex",
             "messenger:inbox/y_2/Alex": "Alex", "messenger:inbox/y_2/Kim": "Kim"}
    counts = Counter({sid: 10 for sid in names} | {"whatsapp:aaa/Sam": 90})
    sources = {sid: sid.split(":")[0] for sid in names}
    first = {"whatsapp:aaa/Sam": 2000.0, "whatsapp:bbb/Sam": 1000.0}  # bbb's Sam wrote first
    return Speakers(names, counts, sources, set(names), first)


def test_me_by_name_is_that_name_in_every_chat_and_other_names_stay_apart() -> None:
    found_speakers = chat_names()
    owners = [(sid, "messenger") for sid in owner_ids("messenger:Alex", "Alex", "messenger",
                                                      found_speakers)]
    assert [sid for sid, _ in owners] == ["messenger:inbox/x_1/Alex", "messenger:inbox/y_2/Alex"]
    found = resolve_identities(("Alex",), [], owners, found_speakers)
    assert set(found.final) == {"messenger:inbox/x_1/Alex", "messenger:inbox/y_2/Alex",
                                "whatsapp:aaa/Alex", "whatsapp:bbb/Alex"}
    assert set(found.final.values()) == {found.me}
    assert "whatsapp:aaa/Sam" not in found.final  # two Sams in two chats: two people


def test_identities_merge_names_into_the_earliest_id(tmp_path: Path) -> None:
    path = tmp_path / "people.yaml"
    path.write_text("- {name: Sam, whatsapp: Sam}\n", encoding="utf-8")
    found = resolve_identities(("Alex",), load_identities(path), [("messenger:Alex", "messenger")],
                               chat_names())
    # the id that wrote first, not the one with more messages: a newer export does not move it
    assert found.final["whatsapp:aaa/Sam"] == found.final["whatsapp:bbb/Sam"] == \
        "whatsapp:bbb/Sam"


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
