"""iMessage: the two real Messages databases, databases built in the macOS schema for what they
lack (chats, groups, edits, unsent, attachments, voice, old schemas), the typedstream lengths,
the bad inputs (locked, encrypted, not Messages, damaged, a cut blob) and a full prepare."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from builders import run_cli
from doppel.data.dataset import load_dataset
from doppel.sources import imessage, open_export
from doppel.sources.ids import key
from doppel.sources.typedstream import Truncated, body_text, encode
from imessage_db import MessagesDB
from test_reader_bad_input import fails

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "imessage"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is not present")
T0 = datetime(2024, 3, 12, 10, 0, tzinfo=UTC).timestamp()
PHONE = "+14155552671"


def spoken(path: Path) -> list[tuple]:
    reader = open_export(path)
    return [(m.chat.name, m.speaker, m.text, m.media) for m in reader.messages()
            if m.drop is None]


@needs_shared
def test_real_database_bodies_from_text_or_attributed_body() -> None:
    reader = open_export(SHARED / "imessage_chat.db")
    assert reader.source == "imessage" and reader.owner == ("imessage:me", "Me")
    got = list(reader.messages())
    assert len(got) == 23 and [m.drop for m in got].count("reaction") == 1
    assert all(m.drop is None for m in got[:22])
    first = got[0]
    assert (datetime.fromtimestamp(first.time, UTC).isoformat(), first.speaker, first.text) == (
        "2023-11-05T02:50:50.393148+00:00", "testemail@gmail.com", "Yeh")
    assert first.speaker_id.startswith("imessage:email-")  # the address is not in the id
    texts = [m.text for m in got]
    assert "Woaaaaaah" in texts and "shall be iphone" in texts  # NULL text: from the blob
    assert "No 💀 not worth" in texts
    long = texts[18]  # 128 bytes: the 0x81 u16 length form
    assert long == ("aaaaabbbbb" * 13)[:128] and len(long) == 128
    assert texts[16] == "John is the almighty"  # text wins over an edited-by-hand blob
    assert {m.speaker for m in got} == {"Me", "testemail@gmail.com"}


@needs_shared
def test_real_upgraded_database_with_unknown_handles() -> None:
    got = list(open_export(SHARED / "imessage_chat_upgrade_osx_11.db").messages())
    assert len(got) == 23
    assert got[0].chat.name == "test@gmail.com"  # from chat_handle_join
    assert {m.speaker for m in got} == {"Me", "handle 67", "handle trash"}


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 65536, 70001])
def test_typedstream_lengths_round_trip(size: int) -> None:
    text = ("é" * size)[: size // 2] + "x" * (size - 2 * (size // 2))  # multi-byte characters
    assert body_text(encode(text)) == text


def test_typedstream_cut_short_and_foreign() -> None:
    for blob in (encode("hello there")[:-35], encode("x" * 300)[:-200],
                 encode("y" * 70000)[:-40]):
        with pytest.raises(Truncated):
            body_text(blob)
    assert body_text(encode("mutable").replace(b"\x08NSString", b"\x0fNSMutableString")) == \
        "mutable"
    assert body_text(b"bplist00...") is None
    assert body_text(encode("hi").replace(b"NSString", b"NSNumber")) is None


def build(path: Path, old_schema: bool = False) -> Path:
    db = MessagesDB(path, old_schema=old_schema)
    sam, kim, lee = db.handle(PHONE), db.handle("kim@example.com"), db.handle("+447911123456")
    one = db.chat([sam])
    group = db.chat([kim, lee], name="Book club")
    db.message(one, T0, text="hey, free tonight?", handle=sam)
    db.message(one, T0 + 60, body="yes! 7pm?", mine=True, seconds=old_schema)
    db.message(one, T0 + 61, text="Loved “yes! 7pm?”", handle=sam, reaction=2001)
    db.message(one, T0 + 62, text="Loved “yes! 7pm?”", handle=sam)  # an Android phone's reaction
    db.message(one, T0 + 120, text="\ufffc", handle=sam, files=[("image/jpeg", "~/Library/"
               "Messages/Attachments/ab/11/A1/IMG_1.jpeg")])
    db.message(one, T0 + 130, text="\ufffc", mine=True, audio=True, files=[(
        "audio/x-caf", "~/Library/Messages/Attachments/cd/12/B2/Audio Message.caf")])
    db.message(group, T0 + 3600, text="chapter 3 by friday", handle=kim)
    db.message(group, T0 + 3601, text="", handle=lee, item=1)  # a rename
    db.message(group, T0 + 3660, text="sorry, typo", handle=lee,
               edits=["sorry, tpyo", "sorry, typo!"])
    db.message(group, T0 + 3700, text=None, mine=True, unsent=True)
    db.message(group, T0 + 3710, text="oops", mine=True, retracted=True)
    db.message(group, T0 + 3720, body="a" * 300 + " u16", mine=True)
    db.message(None, T0 + 7200, text="no chat lists me", handle=sam)
    db.close()
    return path


def test_built_database_chats_edits_attachments_and_voice(tmp_path: Path) -> None:
    path = build(tmp_path / "chat.db")
    reader = open_export(path)
    got = list(reader.messages())
    assert [(c.name, c.type) for c in reader.chats] == [
        (PHONE, "personal_chat"), ("Book club", "private_group"), (PHONE, "personal_chat")]
    assert [(m.chat.name, m.speaker, m.text, m.media) for m in got if m.drop is None] == [
        (PHONE, PHONE, "hey, free tonight?", None),
        (PHONE, "Me", "yes! 7pm?", None),
        (PHONE, PHONE, "", "[photo]"),
        (PHONE, "Me", "", "[voice]"),
        ("Book club", "kim@example.com", "chapter 3 by friday", None),
        ("Book club", "+447911123456", "sorry, typo!", None),  # the final version of the edit
        ("Book club", "Me", "a" * 300 + " u16", None),
        (PHONE, PHONE, "no chat lists me", None)]
    assert sorted(m.drop for m in got if m.drop) == ["reaction", "reaction", "service",
                                                      "unsent", "unsent"]
    voice = next(m for m in got if m.media == "[voice]")
    assert voice.media_path == "Attachments/cd/12/B2/Audio Message.caf"
    assert all(m.media_path is None for m in got if m is not voice)
    assert PHONE not in "".join(m.speaker_id or "" for m in got)


def test_old_schema_and_seconds_dates(tmp_path: Path) -> None:
    path = build(tmp_path / "sms.db", old_schema=True)
    got = list(open_export(path).messages())
    mine = next(m for m in got if m.text == "yes! 7pm?")
    assert mine.time == T0 + 60  # seconds since 2001, as before macOS 10.13
    assert imessage.apple_time(0) == 978307200.0 and imessage.apple_time("x") == 0.0
    assert "sorry, typo" in [m.text for m in got]  # no edit history in this schema: text wins


def test_not_a_messages_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    db.commit()
    db.close()
    fails(path, "not a Messages database", "chat.db")


def test_encrypted_or_damaged_database(tmp_path: Path) -> None:
    encrypted = tmp_path / "sms.db"
    encrypted.write_bytes(bytes(range(256)) * 64)  # what an encrypted backup's file looks like
    fails(encrypted, "encrypted", "decrypted first")
    cut = tmp_path / "chat.db"
    whole = build(tmp_path / "whole.db").read_bytes()
    cut.write_bytes(whole[:4096 * 3])
    fails(cut, str(cut))


def test_locked_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(tmp_path / "chat.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(imessage, "BUSY_SECONDS", 0.05)
    try:
        fails(path, "locked by another program", "quit Messages")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_blob_with_a_wrong_length_costs_at_most_its_message(tmp_path: Path, monkeypatch,
                                                              capsys) -> None:
    """Other apps write attributedBody blobs whose length says more than they hold: the text is
    read up to the next object's marker; a blob with nothing there drops only its message."""
    path = build(tmp_path / "chat.db")
    whole = encode("see you at 7")
    at = whole.index(b"\x84\x01\x2b") + 3
    longer = whole[:at] + b"\x81\xff\x7f" + whole[at + 1:]  # says 32,767 bytes
    db = sqlite3.connect(path)
    for old, blob in (("chapter 3 by friday", encode("chapter 3 by friday and more")[:-40]),
                      ("no chat lists me", longer), ("hey, free tonight?", whole[:at + 1])):
        db.execute("UPDATE message SET attributedBody = ?, text = NULL WHERE text = ?",
                   (blob, old))
    db.commit()
    db.close()
    reader = open_export(path)
    got = {m.id: m for m in reader.messages()}
    texts = [m.text for m in got.values()]
    assert "chapter 3 by friday" in texts and "see you at 7" in texts  # salvaged, both
    assert [m.drop for m in got.values() if m.text == "" and m.drop == "unreadable"] == [
        "unreadable"]
    assert reader.unknown == {"attributedBody with a wrong length": 2,
                              "attributedBody unreadable": 1}
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(path), "-o", str(out), "--groups",
                            "--keep-single-speaker", "-q"], monkeypatch, capsys)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["dropped"]["unreadable"] == 1


def test_prepare_masks_phone_handles_and_merges_with_identities(tmp_path, monkeypatch,
                                                                capsys) -> None:
    path = build(tmp_path / "chat.db")
    code, stdout, err = run_cli(["prepare", str(path), "--list-speakers"], monkeypatch, capsys)
    assert code == 0, err
    assert f"{PHONE}\t3\timessage" in stdout and "Me\t3\timessage" in stdout
    whatsapp = tmp_path / "WhatsApp Chat with Sam.txt"
    whatsapp.write_text("14/03/2024, 10:00 - Sam: hey, still on for tonight?\n"
                        "14/03/2024, 10:02 - Alex: yes!\n", encoding="utf-8")
    people = tmp_path / "people.yaml"
    people.write_text(f"- name: Alex\n  me: true\n  imessage: Me\n  whatsapp: Alex\n"
                      f"- name: Sam\n  imessage: '{PHONE}'\n  whatsapp: Sam\n",  # the number
                      encoding="utf-8")
    out = tmp_path / "ds"
    code, stdout, err = run_cli(["prepare", str(path), str(whatsapp), "-o", str(out),
                                 "--identities", str(people), "--groups", "--keep-single-speaker",
                                 "-q"],
                                monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    assert dataset.me_name == "Alex" and "Sam" in dataset.speakers.values()
    sam = imessage.handle_speaker(PHONE)[0]  # Sam's iMessage and WhatsApp turns are one speaker
    chats = {c["name"] if c["source"] == "whatsapp" else c["id"]: c["id"]
             for c in dataset.manifest["chats"]}
    # the one-to-one chat by its guid, the chat-less thread by Sam's handle, both on any device
    assert sorted(dataset.manifest["speakers"][sam]["chats"]) == sorted([
        f"imessage:chat-{key([f'iMessage;-;{PHONE}'])}", f"imessage:handle:{sam[9:]}",
        chats["Sam"]])
    sources = dataset.manifest["counts"]["sources"]
    assert sources["imessage"]["messages_kept"] > 0 and sources["whatsapp"]["messages_kept"] > 0
    written = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*")
                      if p.is_file() and p.suffix in (".json", ".jsonl", ".md"))
    assert "5552671" not in written and "7911123456" not in written
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert "sorry, typo!" in texts and "[voice]" in texts


def test_a_chat_named_by_a_number_is_masked_yet_selectable(tmp_path, monkeypatch,
                                                           capsys) -> None:
    path = build(tmp_path / "chat.db")
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(path), "-o", str(out), "--include", PHONE,
                            "--keep-single-speaker", "-q"], monkeypatch, capsys)
    assert code == 0, err
    manifest = load_dataset(out).manifest
    assert not [w for w in manifest.get("warnings", []) if "--include" in w]
    assert {c["name"] for c in manifest["chats"]} == {"[phone]", "Book club"}
    assert manifest["counts"]["chats_skipped"] == {"not_included": 1}


def test_the_benchmark_database_reads_whole(tmp_path: Path, monkeypatch) -> None:
    """bench/synth_imessage.py (the 1M-message benchmark's database) stays runnable and real."""
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    from synth_imessage import write_export

    path = tmp_path / "chat.db"
    write_export(path, 2000)
    reader = open_export(path)
    got = list(reader.messages())
    assert len(got) == 2000 and len(reader.chats) == 40 and "synth_imessage" in sys.modules
    assert sum(m.drop == "reaction" for m in got) > 40
    assert {m.media for m in got} >= {None, "[photo]", "[voice]"}
    assert all(m.text or m.media or m.drop for m in got)
    times = [m.time for m in got if m.chat is reader.chats[0]]
    assert times == sorted(times)


def _wal_database(folder: Path, shm: bool) -> Path:
    """A database whose three newest messages are only in its -wal (not checkpointed), copied
    with its -wal (and -shm when `shm`) while the writer still holds it."""
    import shutil

    writer = folder / "writer"
    writer.mkdir()
    db = MessagesDB(writer / "chat.db")
    db.db.execute("PRAGMA journal_mode=WAL")
    sam = db.handle(PHONE)
    one = db.chat([sam])
    for n in range(5):
        db.message(one, T0 + n, text=f"old {n}", handle=sam)
    db.db.commit()
    db.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.db.execute("PRAGMA wal_autocheckpoint=0")
    for n in range(3):
        db.message(one, T0 + 100 + n, text=f"new {n}", handle=sam)
    db.db.commit()
    copy = folder / "readonly"
    copy.mkdir()
    for suffix in ("", "-wal", "-shm")[:3 if shm else 2]:
        shutil.copyfile(writer / f"chat.db{suffix}", copy / f"chat.db{suffix}")
    db.close()
    for file in copy.iterdir():
        file.chmod(0o444)
    copy.chmod(0o555)
    return copy / "chat.db"


def _read_texts(path: Path) -> tuple[list[str], int, list[str]]:
    """(texts, the private copy's mode or 0, temporary copies left after the reader)."""
    import gc
    import tempfile

    reader = open_export(path)
    texts = [m.text for m in reader.messages()]
    copy = getattr(reader, "_copy", None)
    mode = Path(copy.name).stat().st_mode & 0o777 if copy else 0
    del reader, copy
    gc.collect()
    left = [p.name for p in Path(tempfile.gettempdir()).glob("doppel-imessage-*")]
    return texts, mode, left


@pytest.mark.parametrize("shm", [False, True])
def test_a_read_only_folder_still_reads_the_wal(shm: bool) -> None:
    """SQLite cannot read a -wal in a folder where it cannot make the -shm file; the reader
    reads a private copy (owner-only, removed after) instead of the old immutable=1 fallback
    that skipped the newest messages. With the -shm there, SQLite reads the folder itself."""
    import os
    import pickle
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="wal-test-"))  # tmp_path's parents are root-only
    try:
        folder.chmod(0o755)
        path = _wal_database(folder, shm)
        frozen = sqlite3.connect(path.as_uri() + "?mode=ro&immutable=1", uri=True)
        assert frozen.execute("SELECT count(*) FROM message").fetchone()[0] == 5  # the old way
        frozen.close()
        if os.geteuid() != 0:
            texts, mode, left = _read_texts(path)
        else:  # root writes anywhere: read as nobody, for whom the folder is read-only
            read_end, write_end = os.pipe()
            child = os.fork()
            if child == 0:  # pragma: no cover - the child process
                os.close(read_end)
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    result: object = _read_texts(path)
                except BaseException as error:  # report anything to the parent
                    result = repr(error)
                with os.fdopen(write_end, "wb") as out:
                    pickle.dump(result, out)
                os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end, "rb") as got:
                result = pickle.load(got)
            os.waitpid(child, 0)
            assert isinstance(result, tuple), result
            texts, mode, left = result
        assert texts == [*(f"old {n}" for n in range(5)), *(f"new {n}" for n in range(3))]
        assert mode == (0 if shm else 0o700) and not left
    finally:
        for file in folder.rglob("*"):
            file.parent.chmod(0o755)
        import shutil

        shutil.rmtree(folder)
