"""The bundled sample export: deterministic, in Telegram's exact format, every feature present,
and each person's style measurably their own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from builders import run_cli
from doppel.sample import write_sample_export

CYRILLIC = re.compile("[а-яА-ЯёЁ]")
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")


def joined(text) -> str:
    return text if isinstance(text, str) else "".join(
        p if isinstance(p, str) else p["text"] for p in text)


def luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    return len(digits) >= 13 and total % 10 == 0


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    return write_sample_export(tmp_path_factory.mktemp("sample") / "DataExport_2024-06-30")


@pytest.fixture(scope="module")
def export(written) -> dict:
    return json.loads(written.read_text(encoding="utf-8"))  # the strict standard parser


@pytest.fixture(scope="module")
def messages(export) -> list[tuple[dict, dict]]:
    return [(chat, m) for chat in export["chats"]["list"] for m in chat["messages"]]


@pytest.fixture(scope="module")
def by_person(messages) -> dict[str, list[str]]:
    """Each sender's non-empty own texts (forwards left out)."""
    out: dict[str, list[str]] = defaultdict(list)
    for _, m in messages:
        if m["type"] == "message" and "forwarded_from" not in m and joined(m["text"]):
            out[m["from"]].append(joined(m["text"]))
    return out


def test_same_seed_same_bytes_other_seed_differs(written, tmp_path):
    again = write_sample_export(tmp_path / "again", seed=0)
    other = write_sample_export(tmp_path / "other", seed=1)
    assert again.name == "result.json" and again.parent == tmp_path / "again"
    assert again.read_bytes() == written.read_bytes()
    assert other.read_bytes() != written.read_bytes()


def test_same_bytes_in_another_process(written, tmp_path):
    """No dependence on string hashing (set order) or the clock: another process, same bytes."""
    code = ("import sys; from doppel.sample import write_sample_export; "
            "write_sample_export(sys.argv[1])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x")], check=True, env=env)
    assert (tmp_path / "x" / "result.json").read_bytes() == written.read_bytes()


def test_full_account_layout_and_counts(export, messages):
    assert list(export) == ["about", "personal_information", "contacts", "frequent_contacts",
                            "chats", "left_chats"]
    me = export["personal_information"]
    assert set(me) == {"user_id", "first_name", "last_name", "phone_number", "username", "bio"}
    chats = export["chats"]["list"]
    types = Counter(c["type"] for c in chats)
    assert types == {"personal_chat": 5, "private_group": 1}
    people = {m["from_id"] for _, m in messages if m["type"] == "message"}
    assert f"user{me['user_id']}" in people and len(people) >= 6
    group = next(c for c in chats if c["type"] == "private_group")
    assert len({m.get("from_id") for m in group["messages"]}) >= 4
    total = sum(m["type"] == "message" for _, m in messages)
    assert 3000 <= total <= 8000
    stamps = sorted(int(m["date_unixtime"]) for _, m in messages)
    assert (stamps[-1] - stamps[0]) / 86400 > 150
    assert len({m["date"][:7] for _, m in messages}) >= 5


def test_message_fields_match_the_modern_exporter(export, messages):
    for chat in export["chats"]["list"]:
        ids = [m["id"] for m in chat["messages"]]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        if chat["type"] == "personal_chat":
            assert " " not in chat["name"]  # personal chats carry the first name only
    for _, m in messages:
        assert list(m)[:4] == ["id", "type", "date", "date_unixtime"]
        assert isinstance(m["date_unixtime"], str)
        local = datetime.fromisoformat(m["date"]).timestamp() - datetime(1970, 1, 1).timestamp()
        assert local - int(m["date_unixtime"]) == 3600  # naive local time of a UTC+1 PC
        sender = m.get("from_id") or m["actor_id"]
        assert re.fullmatch(r"user\d+", sender)
        assert joined(m["text"]) == "".join(e["text"] for e in m["text_entities"])
        assert list(m)[-2:] == ["text", "text_entities"]
        if isinstance(m["text"], list):
            assert any(isinstance(p, dict) for p in m["text"])


def test_every_feature_is_present(export, messages):
    seen: Counter[str] = Counter()
    ids = {(chat["id"], m["id"]) for chat, m in messages}
    for chat, m in messages:
        text = joined(m["text"])
        if "reply_to_message_id" in m:
            seen["reply"] += 1
            assert (chat["id"], m["reply_to_message_id"]) in ids
        if m.get("media_type") == "sticker" and m.get("sticker_emoji"):
            seen["sticker"] += 1
        if "photo" in m:
            seen["photo captioned" if text else "photo bare"] += 1
        if m.get("media_type") == "voice_message" and m["duration_seconds"] > 0:
            seen["voice"] += 1
        seen["forward"] += "forwarded_from" in m
        seen["via_bot"] += m.get("via_bot") == "@gif"
        seen["edited"] += "edited" in m and "edited_unixtime" in m
        if m.get("action") == "phone_call" and m.get("duration_seconds"):
            seen["call"] += 1
        if m.get("action") == "pin_message":
            seen["pin"] += 1
            assert (chat["id"], m["message_id"]) in ids
        for entity in m["text_entities"]:
            seen[entity["type"]] += 1
        seen["plain email"] += isinstance(m["text"], str) and "@example." in text
        seen["plain phone"] += isinstance(m["text"], str) and bool(re.search(r"555-01\d\d", text))
        seen["card"] += any(e["type"] == "bank_card" and luhn(e["text"])
                            for e in m["text_entities"])
    wanted = ["reply", "sticker", "photo captioned", "photo bare", "voice", "forward", "via_bot",
              "edited", "call", "pin", "bold", "italic", "link", "text_link", "mention",
              "hashtag", "code", "phone", "email", "plain email", "plain phone"]
    assert [f for f in wanted if not seen[f]] == []
    assert seen["card"] == 1


def test_two_languages_and_alex_answers_dima_in_russian(messages):
    dima = [m for chat, m in messages if chat["name"] == "Dima" and m["type"] == "message"
            and joined(m["text"])]
    for sender in ("Dima Volkov", "Alex Morgan"):
        texts = [joined(m["text"]) for m in dima if m["from"] == sender]
        assert sum(bool(CYRILLIC.search(t)) for t in texts) > 0.9 * len(texts) > 100
    english = [joined(m["text"]) for chat, m in messages if chat["name"] == "Sam"
               and m.get("from") == "Alex Morgan"]
    assert not any(CYRILLIC.search(t) for t in english)


def test_styles_are_measurably_distinct(by_person):
    def lower(name):
        texts = by_person[name]
        return sum(t == t.lower() for t in texts) / len(texts)

    def mean_len(name):
        return sum(map(len, by_person[name])) / len(by_person[name])

    def mean_words(name):
        return sum(len(t.split()) for t in by_person[name]) / len(by_person[name])

    def share(name, test):
        return sum(map(test, by_person[name])) / len(by_person[name])

    assert lower("Alex Morgan") > 0.97 and lower("Sam Carter") < 0.05
    assert mean_len("Sam Carter") > 2.5 * mean_len("Alex Morgan") and mean_len("Alex Morgan") < 30
    assert share("Alex Morgan", lambda t: t.endswith(".")) < 0.02
    assert share("Sam Carter", lambda t: t[-1] in ".?!") > 0.95
    assert share("Jake Rivera", lambda t: t == t.upper() and ("!!" in t or "??" in t)) > 0.9
    assert share("Nora Lind", lambda t: t.endswith((".", "?"))) > 0.95
    assert mean_words("Nora Lind") < 3 and mean_words("Nora Lind") < 0.6 * mean_words("Alex Morgan")
    assert share("Priya Shah", lambda t: bool(EMOJI.search(t))) > 0.9
    assert share("Sam Carter", lambda t: bool(EMOJI.search(t))) == 0
    for name, texts in by_person.items():
        assert len(set(texts)) / len(texts) > 0.55, name  # varied, not a few repeated lines


def test_alex_answers_hey_and_whats_up_his_own_way(messages):
    """The demo says "hey" / "what's up?" to the model-as-Alex: the data must show his answers."""
    hey, whats_up = [], []
    previous = None
    for _, m in messages:
        if m["type"] != "message":
            continue
        if previous is not None and previous["from"] != "Alex Morgan" and m["from"] == (
                "Alex Morgan"):
            said = joined(previous["text"]).lower()
            if re.search(r"what'?s up|how are you", said):
                whats_up.append(joined(m["text"]))
            elif re.fullmatch(r"(hey|hi|hello|yo+)\W*( alex\W*)?", said):
                hey.append(joined(m["text"]))
        previous = m
    assert len(hey) > 30 and len(whats_up) > 30
    assert sum(t.startswith(("heyy", "hii", "yo")) for t in hey) > 0.6 * len(hey)
    assert sum(t.startswith(("not much", "nm")) for t in whats_up) > 0.5 * len(whats_up)


def test_the_reader_takes_every_message(written, export):
    from doppel.sources.telegram import TelegramExport

    reader = TelegramExport(written.parent)
    read = list(reader.messages())
    assert reader.layout == "full" and not reader.unknown
    me = export["personal_information"]
    assert reader.owner == (f"user{me['user_id']}", f"{me['first_name']} {me['last_name']}")
    assert len(reader.chats) == 6
    assert {m.drop for m in read} <= {None, "service", "forward", "via_bot"}
    kept = [m for m in read if m.drop is None]
    assert len(kept) > 3000
    assert Counter(kind for m in read for kind, _ in m.pii) >= Counter(
        phone=2, email=1, bank_card=1)


def test_cli_writes_and_refuses_to_overwrite(written, tmp_path, monkeypatch, capsys):
    target = tmp_path / "sample"
    code, out, _ = run_cli(["sample-export", str(target)], monkeypatch, capsys)
    assert code == 0 and "6 chats" in out and "6 people" in out and "messages" in out
    assert (target / "result.json").read_bytes() == written.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # no temporary left behind

    code, _, err = run_cli(["sample-export", str(target), "--seed", "1"], monkeypatch, capsys)
    assert code == 2 and "already exists" in err and "--force" in err
    assert (target / "result.json").read_bytes() == written.read_bytes()

    code, _, _ = run_cli(["sample-export", str(target), "--seed", "1", "--force"],
                         monkeypatch, capsys)
    assert code == 0 and (target / "result.json").read_bytes() != written.read_bytes()
