"""Who is who (sources/ids.py): chats and people are known by ids from the sources, unique across
every input of a dataset and stable across a newer export. Each test plants a secret with one
friend and checks it stays in that friend's chats: a leak would show as a shared chat id, one
speaker id for two people, or a secret inside another friend's conversations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_fakes import DAY, ME, ChatBuilder, FakeExport, export_file
from doppel.data.dataset import SCHEMA_VERSION, load_dataset
from doppel.data.options import PrepareOptions
from doppel.data.pipeline import prepare_dataset, prepare_from
from doppel.errors import DoppelError
from doppel.sources import imessage
from doppel.sources.ids import HEAD_ENTRIES
from imessage_db import MessagesDB

T0 = datetime(2024, 3, 12, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def _no_memory_index(monkeypatch):
    """These tests are about ids: no embedder, so prepare writes no memory index (faster)."""
    monkeypatch.setattr("doppel.memory.embedder.default_installed", lambda: False)


def prepare(paths: list[Path], out: Path, **options) -> dict:
    options.setdefault("keep_single_speaker", True)
    prepare_dataset(paths, out, PrepareOptions(**options), progress=False)
    return load_dataset(out).manifest


def where(out: Path, secret: str) -> set[tuple[str, frozenset[str]]]:
    """(chat id, who spoke in that conversation) of every conversation that holds `secret`."""
    found = set()
    for conversation in load_dataset(out).conversations():
        if any(secret in m.text for m in conversation.messages):
            found.add((conversation.chat_id,
                       frozenset(m.speaker_id for m in conversation.messages)))
    return found


def speaker_of(manifest: dict, name: str) -> list[str]:
    """The ids whose label is `name` or `name (n)`."""
    return [sid for sid, s in manifest["speakers"].items()
            if s["name"] == name or s["name"].startswith(f"{name} (")]


def messages_db(path: Path, friend: str, secret: str) -> Path:
    """A Messages database numbered like every other: handle 1, chat 1, messages from 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = MessagesDB(path)
    handle = db.handle(friend)
    chat = db.chat([handle])
    db.message(chat, T0, text=f"{secret}, keep it between us", handle=handle)
    db.message(chat, T0 + 60, text="of course", mine=True)
    db.message(chat, T0 + 90, text=f"{secret} from a handle the table lost", handle=7)
    db.message(None, T0 + 7200, text=f"{secret} outside any chat", handle=handle)
    db.message(None, T0 + 7260, text="noted", handle=handle, mine=True)
    db.close()
    return path


def test_two_messages_databases_with_the_same_row_ids_are_two_friends(tmp_path) -> None:
    mac = messages_db(tmp_path / "mac" / "chat.db", "jo@example.com", "JO-SECRET")
    phone = messages_db(tmp_path / "phone" / "sms.db", "+14155550123", "SAM-SECRET")
    out = tmp_path / "ds"
    manifest = prepare([mac, phone], out, groups=True)
    jo, sam = imessage.handle_speaker("jo@example.com")[0], imessage.handle_speaker(
        "+14155550123")[0]
    speakers = manifest["speakers"]
    assert jo in speakers and sam in speakers
    chats = [c["id"] for c in manifest["chats"]]
    assert len(chats) == len(set(chats)) == 4  # a chat and a chat-less thread per database
    assert not set(speakers[jo]["chats"]) & set(speakers[sam]["chats"])
    # the handle row missing in both databases (the same ROWID 7) is two people, too
    lost = [sid for sid in speakers if sid.endswith(":handle-7")]
    assert len(lost) == 2 and len({tuple(speakers[sid]["chats"]) for sid in lost}) == 2
    for secret, friend, other in (("JO-SECRET", jo, sam), ("SAM-SECRET", sam, jo)):
        found = where(out, secret)
        assert len(found) == 2  # its chat, and the thread outside any chat
        for chat_id, voices in found:
            assert chat_id in speakers[friend]["chats"] and chat_id not in speakers[other]["chats"]
            assert other not in voices


def test_a_newer_copy_of_a_messages_database_keeps_its_ids(tmp_path) -> None:
    path = messages_db(tmp_path / "a" / "chat.db", "jo@example.com", "JO-SECRET")
    first = prepare([path], tmp_path / "one")
    copy = tmp_path / "b" / "chat.db"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())  # the same database, elsewhere
    again = prepare([copy], tmp_path / "two")
    assert [c["id"] for c in first["chats"]] == [c["id"] for c in again["chats"]]
    assert first["speakers"].keys() == again["speakers"].keys()


def line_group(path: Path, members: list[str], secret: str) -> Path:
    """A LINE export of a group titled "Family"; the first member is the user, the second has
    the secret."""
    me, friend, *rest = members
    lines = ["[LINE] Chat history with Family", "Saved on: 3/14/2024, 21:05", "",
             "Tue, 3/12/2024", f"10:15\t{friend}\t{secret}, don't tell the others",
             f"10:16\t{me}\tpromise"]
    lines += [f"10:{20 + n}\t{who}\thi all" for n, who in enumerate(rest)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_two_line_groups_with_one_title_and_different_members_are_two_chats(tmp_path) -> None:
    a = line_group(tmp_path / "a.txt", ["Alex", "Jo", "Sam", "Kim"], "JO-SECRET")
    b = line_group(tmp_path / "b.txt", ["Alex", "Mia", "Sam", "Lee"], "MIA-SECRET")
    out = tmp_path / "ds"
    manifest = prepare([a, b], out, me=("Alex",), groups=True)
    chats = {c["id"]: c["name"] for c in manifest["chats"]}
    assert list(chats.values()) == ["Family", "Family"] and len(chats) == 2
    (jo,), (mia,) = speaker_of(manifest, "Jo"), speaker_of(manifest, "Mia")
    (jo_chat,), (mia_chat,) = manifest["speakers"][jo]["chats"], manifest["speakers"][mia]["chats"]
    assert jo_chat != mia_chat
    assert {chat for chat, _ in where(out, "JO-SECRET")} == {jo_chat}
    assert {chat for chat, _ in where(out, "MIA-SECRET")} == {mia_chat}
    # the user is one person in both (--me Alex); the two Sams are two people: a name is an id
    # only inside its chat
    assert manifest["speakers"][manifest["me"]["id"]]["chats"] == sorted(chats)
    sams = speaker_of(manifest, "Sam")
    assert len(sams) == 2 and {manifest["speakers"][s]["name"] for s in sams} == {"Sam",
                                                                                  "Sam (2)"}
    assert all(len(manifest["speakers"][s]["chats"]) == 1 for s in sams)


def test_identities_is_the_one_way_two_names_become_one_person(tmp_path) -> None:
    a = line_group(tmp_path / "a.txt", ["Alex", "Jo", "Sam"], "JO-SECRET")
    b = line_group(tmp_path / "b.txt", ["Alex", "Mia", "Sam"], "MIA-SECRET")
    people = tmp_path / "people.yaml"
    people.write_text("- name: Sam\n  line: Sam\n", encoding="utf-8")
    manifest = prepare([a, b], tmp_path / "ds", me=("Alex",), groups=True, identities=people)
    (sam,) = speaker_of(manifest, "Sam")
    row = manifest["speakers"][sam]
    assert len(row["chats"]) == 2 and row["name"] == "Sam" and "Sam" in row["aliases"]
    assert len([a for a in row["aliases"] if a.startswith("line:")]) == 2  # the ids it merged


def chatlab_private(path: Path, sam_id: str, secret: str, group_id: str | None = None) -> Path:
    meta = {"name": "Sam", "platform": "qq", "type": "group" if group_id else "private"}
    if group_id:
        meta["groupId"] = group_id
    rows = [{"_type": "header", "chatlab": {"version": "0.0.1", "exportedAt": 1709287200},
             "meta": meta},
            {"_type": "message", "sender": sam_id, "accountName": "Sam",
             "timestamp": 1709287200, "type": 0, "content": secret},
            {"_type": "message", "sender": "10001", "accountName": "Alex",
             "timestamp": 1709287230, "type": 0, "content": "ok"}]
    # a comment line first, as tests/fixtures/chatlab/qq-private.jsonl has (without it the
    # reader takes this JSONL for JSON: its header line starts like a ChatLab JSON file)
    text = "\n".join(["# ChatLab JSONL", *(json.dumps(row) for row in rows)])
    path.write_text(text + "\n", encoding="utf-8")
    return path


def test_chatlab_chats_without_ids_beside_one_with_them_are_separate(tmp_path) -> None:
    files = [chatlab_private(tmp_path / "a.jsonl", "20001", "SAM-A-SECRET"),
             chatlab_private(tmp_path / "b.jsonl", "20002", "SAM-B-SECRET"),
             chatlab_private(tmp_path / "c.jsonl", "20003", "GROUP-SECRET", group_id="Sam")]
    out = tmp_path / "ds"
    manifest = prepare(files, out, me=("Alex",), groups=True)
    chats = [c["id"] for c in manifest["chats"]]
    assert len(set(chats)) == 3 and "qq:Sam" in chats  # the group's own id; the others hashed
    for secret, sender in (("SAM-A-SECRET", "qq:20001"), ("SAM-B-SECRET", "qq:20002"),
                           ("GROUP-SECRET", "qq:20003")):
        (chat,) = manifest["speakers"][sender]["chats"]
        assert {found for found, _ in where(out, secret)} == {chat}


def test_a_newer_text_export_of_the_same_chat_keeps_its_ids(tmp_path) -> None:
    lines = [f"12/03/2024, 10:0{n} - {'Sam' if n % 2 else 'Alex'}: message {n}"
             for n in range(HEAD_ENTRIES + 1)]
    old = tmp_path / "old" / "WhatsApp Chat with Sam.txt"
    new = tmp_path / "new" / "chat.txt"  # renamed, elsewhere, and longer
    for path, body in ((old, lines), (new, [*lines, "14/03/2024, 09:00 - Sam: see you"])):
        path.parent.mkdir()
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
    first = prepare([old], tmp_path / "one", me=("Alex",))
    again = prepare([new], tmp_path / "two", me=("Alex",))
    assert [c["id"] for c in first["chats"]] == [c["id"] for c in again["chats"]]
    assert first["speakers"].keys() == again["speakers"].keys()


SAM_A, SAM_B = ("user2", "Sam"), ("user3", "Sam")


def two_sams(path: Path, a_rounds: int, b_rounds: int, name_b: str = "Sam"):
    """An export where Sam A wrote first and Sam B later; `*_rounds` sets who wrote more."""
    records: list = []
    ChatBuilder(records, "user2", "Sam").exchange(SAM_A, a_rounds)
    ChatBuilder(records, "user3", name_b, start=records[0].time + 2 * DAY).exchange(
        (SAM_B[0], name_b), b_rounds)
    return FakeExport(records, path=path)


def test_a_newer_export_that_reorders_two_same_named_friends_keeps_their_labels(tmp_path):
    path, out = export_file(tmp_path), tmp_path / "ds"
    prepare_from(two_sams(path, 5, 2), path, out, PrepareOptions(), progress=False)
    before = load_dataset(out).speakers
    assert before == {"user1": "Alex", "user2": "Sam", "user3": "Sam (2)"}
    # a newer export: Sam B now wrote more than Sam A (the old order by count would swap them)
    prepare_from(two_sams(path, 5, 12), path, out, PrepareOptions(force=True), progress=False)
    after = load_dataset(out)
    assert after.speakers == before
    assert after.manifest["speakers"]["user3"]["messages"] > after.manifest["speakers"][
        "user2"]["messages"]
    assert not [w for w in after.manifest["warnings"] if "label" in w]
    labels = {(m.speaker_id, m.speaker) for c in after.conversations() for m in c.messages}
    assert labels == {("user1", "Alex"), ("user2", "Sam"), ("user3", "Sam (2)")}
    # into a new folder too (no earlier labels to keep): who wrote first, not who wrote more
    fresh = tmp_path / "fresh"
    prepare_from(two_sams(path, 5, 12), path, fresh, PrepareOptions(), progress=False)
    assert load_dataset(fresh).speakers == before


def test_a_label_that_keeps_its_person_even_when_the_other_leaves(tmp_path):
    path, out = export_file(tmp_path), tmp_path / "ds"
    prepare_from(two_sams(path, 5, 2), path, out, PrepareOptions(), progress=False)
    records: list = []  # Sam A's chat is gone from the newer export: Sam B stays "Sam (2)"
    ChatBuilder(records, "user3", "Sam").exchange(SAM_B, 3)
    prepare_from(FakeExport(records, path=path), path, out, PrepareOptions(force=True),
                 progress=False)
    assert load_dataset(out).speakers == {"user1": "Alex", "user3": "Sam (2)"}


def test_a_label_that_changes_is_reported(tmp_path):
    path, out = export_file(tmp_path), tmp_path / "ds"
    prepare_from(two_sams(path, 5, 2), path, out, PrepareOptions(), progress=False)
    # Sam B renamed themselves: their label follows the name, and the report says so
    prepare_from(two_sams(path, 5, 2, name_b="Samuel"), path, out, PrepareOptions(force=True),
                 progress=False)
    dataset = load_dataset(out)
    assert dataset.speakers["user3"] == "Samuel"
    changed = [w for w in dataset.manifest["warnings"] if "user3" in w]
    assert changed == ["speaker user3 is now labelled 'Samuel' (was 'Sam (2)' in the dataset "
                       "this one replaced)"]
    assert f"Warning: {changed[0]}." in (out / "report.md").read_text(encoding="utf-8")


def test_the_manifest_says_what_resolves_a_person(tmp_path):
    path, out = export_file(tmp_path), tmp_path / "ds"
    prepare_from(two_sams(path, 5, 2), path, out, PrepareOptions(), progress=False)
    speakers = load_dataset(out).manifest["speakers"]
    assert speakers["user3"]["aliases"] == ["Sam", "user3"]
    assert speakers["user2"]["first"] < speakers["user3"]["first"]
    assert speakers[ME[0]]["chats"] == ["user2", "user3"]


def test_a_dataset_of_the_previous_schema_says_to_prepare_again(tmp_path):
    path, out = export_file(tmp_path), tmp_path / "ds"
    prepare_from(two_sams(path, 5, 2), path, out, PrepareOptions(), progress=False)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["schema_version"] == SCHEMA_VERSION == 2
    (out / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    with pytest.raises(DoppelError) as error:
        load_dataset(out)
    assert "\n" not in str(error.value) and "by name" in str(error.value)
    assert "run `doppel prepare` again" in str(error.value)
    from doppel.memory import open_index  # chat, serve and the bot read memory through it

    with pytest.raises(DoppelError, match="prepare` again"):
        open_index(out, build_if_missing=False)


def test_meta_threads_know_people_by_name_only_inside_each_thread(tmp_path):
    inbox = tmp_path / "messages" / "inbox"
    for folder, friend, secret in (("sam_1", "Sam", "SAM-ONE-SECRET"),
                                   ("sam_2", "Sam", "SAM-TWO-SECRET"), ("kim_3", "Kim", "hi")):
        (inbox / folder).mkdir(parents=True)
        (inbox / folder / "message_1.json").write_text(json.dumps({
            "participants": [{"name": friend}, {"name": "Alex"}], "thread_type": "Regular",
            "thread_path": f"inbox/{folder}", "messages": [  # newest first, as Meta writes
                {"sender_name": "Alex", "timestamp_ms": 1_700_000_060_000, "content": "ok"},
                {"sender_name": friend, "timestamp_ms": 1_700_000_000_000, "content": secret}]}))
    out = tmp_path / "ds"
    manifest = prepare([tmp_path], out)  # the owner: the one name in every thread
    me = manifest["speakers"][manifest["me"]["id"]]
    assert me["name"] == "Alex" and me["chats"] == [
        "messenger:kim_3", "messenger:sam_1", "messenger:sam_2"]
    sams = speaker_of(manifest, "Sam")
    assert len(sams) == 2
    for secret, chat in (("SAM-ONE-SECRET", "messenger:sam_1"),
                         ("SAM-TWO-SECRET", "messenger:sam_2")):
        ((found, voices),) = where(out, secret)
        assert found == chat and len(voices - {manifest["me"]["id"]}) == 1
    inner = prepare([inbox], tmp_path / "inner")  # the same export passed by its inbox folder
    assert inner["speakers"].keys() == manifest["speakers"].keys()
