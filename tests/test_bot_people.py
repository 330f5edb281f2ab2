"""The bot knows people by Telegram user id (bot/people.py, bot/store.py): --friend names resolve
to one dataset person at start-up, everyone else has a scope of their own, and a state file from
before ids were kept is migrated without guessing who was in a group."""

from __future__ import annotations

import sqlite3

import pytest

from doppel.bot.people import Roster
from doppel.bot.store import ChatStore
from doppel.data.people import People
from doppel.errors import DoppelError

PEOPLE = People.of_manifest({"me": {"id": "tg:1", "name": "Alex"}, "speakers": {
    "tg:1": {"name": "Alex"}, "tg:2": {"name": "Sam Carter"}, "tg:3": {"name": "Sam Lee"},
    "tg:4": {"name": "Jo"}}})


def test_friends_resolve_to_one_person_and_strangers_keep_their_own_scope():
    roster = Roster.resolve({111: "Sam Carter", 222: "jo"}, PEOPLE, "Alex")
    assert roster.names() == {111: "Sam Carter", 222: "Jo"}  # the labels the twin knows
    assert roster.key(111, 111) == "tg:2" and roster.key(222, -5) == "tg:4"
    assert roster.key(333, 333) == "telegram-bot:333"  # not a friend: their Telegram id
    assert roster.keys({111: "Sam", 333: "Sam"}, -5) == {"tg:2", "telegram-bot:333"}
    with pytest.raises(DoppelError, match=r"--friend 5=Sam 'Sam' matches several people "
                                          r"\(Sam Carter, Sam Lee\)"):
        Roster.resolve({5: "Sam"}, PEOPLE, "Alex")
    with pytest.raises(DoppelError, match="--friend 5=Kim 'Kim' matches nobody in the data"):
        Roster.resolve({5: "Kim"}, PEOPLE, "Alex")
    with pytest.raises(DoppelError, match="is Alex, whom the twin plays"):
        Roster.resolve({5: "alex"}, PEOPLE, "Alex")


def test_members_are_kept_by_id_and_an_old_state_file_is_migrated(tmp_path):
    path = tmp_path / "bot.sqlite"
    db = sqlite3.connect(path)  # the shape before ids were kept
    db.executescript("""
        CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL,
            speaker TEXT NOT NULL, text TEXT NOT NULL, time REAL NOT NULL);
        CREATE TABLE refused (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL,
            time REAL NOT NULL);
        INSERT INTO messages (chat_id, speaker, text, time) VALUES (111, 'Sam', 'hi', 1),
            (-100, 'Jo', 'hey all', 2), (-100, 'Sam', 'yo', 3);
    """)
    db.commit()
    db.close()
    store = ChatStore(path, max_history=5)
    assert store.members(111) == {111: "earlier member"}  # a private chat is its user
    assert store.members(-100) == {0: "earlier member"}  # a group's earlier members: unknown
    roster = Roster.resolve({}, PEOPLE, "Alex")
    assert roster.keys(store.members(-100), -100) == {"telegram-bot:unknown-in--100"}
    assert store.history(111) == [("Sam", "hi")]
    store.add(-100, "Kim", "new here", 444)
    store.seen(-100, 555, "Lee")  # joined, never spoke
    assert store.members(-100) == {0: "earlier member", 444: "Kim", 555: "Lee"}
    assert store.reset(-100) == 3
    assert store.members(-100) == {444: "Kim", 555: "Lee"}  # a silent member stays
    store.close()
    ChatStore(path, max_history=5).close()  # opened again: nothing to migrate
