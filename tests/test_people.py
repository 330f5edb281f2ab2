"""One way to name a person (data/people.py): an id, the label, the label ignoring case, an
alias, a unique first name; nobody or several is one line that names candidates."""

from __future__ import annotations

import pytest

from doppel.data.people import People
from doppel.errors import DoppelError

MANIFEST = {
    "me": {"id": "tg:1", "name": "Alex"},
    "speakers": {
        "tg:1": {"name": "Alex", "messages": 9, "chats": []},
        "tg:2": {"name": "Sam Carter", "messages": 5, "chats": [],
                 "aliases": ["whatsapp:Sammy C", "Sammy C"]},
        "tg:3": {"name": "Sam", "messages": 4, "chats": []},
        "wa:4": {"name": "Sam (2)", "messages": 3, "chats": []},
        "tg:5": {"name": "Nora Lind", "messages": 2, "chats": []},
    },
}


@pytest.fixture
def people() -> People:
    return People.of_manifest(MANIFEST)


def test_each_tier_names_one_person(people):
    assert people.resolve("tg:2") == "tg:2"  # an id
    assert people.resolve("Sam") == "tg:3"  # the exact label beats the first name of others
    assert people.resolve("Sam (2)") == "wa:4"
    assert people.resolve("sam carter") == "tg:2"  # the label ignoring case
    assert people.resolve("Sammy C") == "tg:2" and people.resolve("sammy c") == "tg:2"  # alias
    assert people.resolve("nora") == "tg:5"  # a first name only one person has
    assert people.resolve("  Nora Lind ") == "tg:5"
    assert people.me == "tg:1" and people.label("tg:2") == "Sam Carter"


def test_nobody_or_several_is_one_line_naming_candidates():
    people = People.of_manifest({"me": {"id": "1", "name": "Alex"}, "speakers": {
        "1": {"name": "Alex"}, "2": {"name": "Sam Carter"}, "3": {"name": "Sam Lee"}}})
    with pytest.raises(DoppelError, match=r"--me 'sam' matches several people \(Sam Carter, "
                                          r"Sam Lee\); give the full name or the id") as several:
        people.resolve("sam", "--me")
    assert "\n" not in str(several.value)
    with pytest.raises(DoppelError, match=r"judge 'Bob' matches nobody in the data; known: "
                                          r"Alex, Sam Carter, Sam Lee"):
        people.resolve("Bob", "judge")
    assert people.lookup("sam") is None and people.lookup("Bob") is None
    assert people.lookup("") is None


def test_two_people_with_one_label_are_told_apart_by_id():
    people = People.of_manifest({"me": {"id": "1", "name": "Alex"}, "speakers": {
        "1": {"name": "Alex"}, "a:2": {"name": "Jo"}, "b:2": {"name": "Jo"}}})
    with pytest.raises(DoppelError, match=r"several people \(Jo \[a:2\], Jo \[b:2\]\)"):
        people.resolve("Jo")
    assert people.resolve("b:2") == "b:2"


def test_a_run_without_its_dataset_knows_labels_only():
    people = People.of_names(["Alex", "Sam Carter"])
    assert people.resolve("sam") == "Sam Carter" and people.label("Sam Carter") == "Sam Carter"
