"""Attacks on who may read what, as a confused user or a hostile page would try them. Each plants
a secret that must not cross and checks, as a control, that it is found where it belongs: a
leak shows as the other person's secret in a chat, a memory, a reply or a judge's items.

- chats the user began with one broadcast (the same first lines in two exports) stay two chats;
- a name that is also another person's id, or typed in another Unicode form, never silently
  names the wrong person;
- a friend labelled "Me" is not the owner to the blind test;
- a keyless server refuses odd Host headers and names it cannot read, and stays free, one bad
  request at a time or many at once; a memory search with an undecodable byte runs.
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path

import httpx
import pytest

from doppel.blindtest.items import held_out_points, judge_person
from doppel.data.dataset import load_dataset
from doppel.data.people import People
from doppel.errors import DoppelError
from doppel.infer.echo import EchoBackend
from doppel.infer.hosts import host_name, is_loopback
from doppel.infer.options import ApiOptions
from doppel.infer.recall import Recall
from doppel.infer.server import create_app, run_in_thread
from doppel.sources.ids import HEAD_ENTRIES
from memory_builders import SECRET, write_memory_dataset
from test_ids import prepare, where
from test_memory_use import QUESTION, Parrot, _ask

Q = QUESTION


# --- chats begun with one broadcast ---------------------------------------------------------
def whatsapp_broadcast(path: Path, friend: str, secret: str, more: int = 0) -> Path:
    """A WhatsApp chat the user opened with a broadcast: its first HEAD_ENTRIES lines are the
    same minutes and words in every chat the broadcast went to; then the friend's secret."""
    lines = ["12/03/2024, 09:00 - Messages and calls are end-to-end encrypted."]
    lines += [f"12/03/2024, 09:{n + 1:02d} - Alex: happy new year, part {n}"
              for n in range(HEAD_ENTRIES)]
    lines += [f"12/03/2024, 10:00 - {friend}: {secret}, keep it between us",
              "12/03/2024, 10:01 - Alex: sure"]
    lines += [f"13/03/2024, 10:{n:02d} - {friend}: later {n}" for n in range(more)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def line_broadcast(path: Path, friend: str, secret: str) -> Path:
    lines = [f"[LINE] Chat history with {friend}", "Saved on: 3/14/2024, 21:05", "",
             "Tue, 3/12/2024"]
    lines += [f"09:{n:02d}\tAlex\thappy new year, part {n}" for n in range(HEAD_ENTRIES)]
    lines += [f"10:15\t{friend}\t{secret}, keep it between us", "10:16\tAlex\tsure"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def chatlab_broadcast(path: Path, friend_id: str, secret: str) -> Path:
    """A ChatLab private chat without a groupId, titled alike, begun with the same broadcast."""
    rows = [{"_type": "header", "chatlab": {"version": "0.0.1", "exportedAt": 1709287200},
             "meta": {"name": "New year", "platform": "qq", "type": "private"}}]
    rows += [{"_type": "message", "sender": "10001", "accountName": "Alex",
              "timestamp": 1709287200 + 60 * n, "type": 0, "content": f"happy new year {n}"}
             for n in range(HEAD_ENTRIES)]
    rows += [{"_type": "message", "sender": friend_id, "accountName": "Sam",
              "timestamp": 1709290000, "type": 0, "content": f"{secret}, keep it between us"},
             {"_type": "message", "sender": "10001", "accountName": "Alex",
              "timestamp": 1709290030, "type": 0, "content": "sure"}]
    path.write_text("\n".join(["# ChatLab JSONL", *(json.dumps(r) for r in rows)]) + "\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("source", ["whatsapp", "line", "chatlab"])
def test_two_chats_begun_with_one_broadcast_are_two_chats(source, tmp_path):
    """The first HEAD_ENTRIES lines alone named both chats alike, so Sam and Jo became members of
    one chat and each read the other's secret; the head now reads on to the first reply."""
    if source == "whatsapp":
        a = whatsapp_broadcast(tmp_path / "a" / "WhatsApp Chat with Sam.txt", "Sam", "SAM-SECRET")
        b = whatsapp_broadcast(tmp_path / "b" / "WhatsApp Chat with Jo.txt", "Jo", "JO-SECRET")
    elif source == "line":
        a = line_broadcast(tmp_path / "a.txt", "Sam", "SAM-SECRET")
        b = line_broadcast(tmp_path / "b.txt", "Jo", "JO-SECRET")
    else:
        a = chatlab_broadcast(tmp_path / "a.jsonl", "20001", "SAM-SECRET")
        b = chatlab_broadcast(tmp_path / "b.jsonl", "20002", "JO-SECRET")
    out = tmp_path / "ds"
    manifest = prepare([a, b], out, me=("Alex",))
    assert len({c["id"] for c in manifest["chats"]}) == 2, manifest["chats"]
    me = manifest["me"]["id"]
    friends = [sid for sid in manifest["speakers"] if sid != me]
    assert len(friends) == 2
    for secret in ("SAM-SECRET", "JO-SECRET"):
        (found,) = where(out, secret)  # the control: the secret is there, in one chat
        chat, _ = found
        members = [sid for sid in friends if chat in manifest["speakers"][sid]["chats"]]
        assert len(members) == 1, (secret, members)  # one friend's chat, never both
        assert all(chat not in manifest["speakers"][sid]["chats"]
                   for sid in friends if sid not in members)


def test_a_newer_export_of_a_chat_begun_with_a_broadcast_keeps_its_id(tmp_path):
    """Reading on to the first reply keeps the rule: a newer, longer export starts alike."""
    old = whatsapp_broadcast(tmp_path / "old" / "chat.txt", "Sam", "SAM-SECRET")
    new = whatsapp_broadcast(tmp_path / "new" / "WhatsApp Chat with Sam.txt", "Sam",
                             "SAM-SECRET", more=5)
    first = prepare([old], tmp_path / "one", me=("Alex",))
    again = prepare([new], tmp_path / "two", me=("Alex",))
    assert [c["id"] for c in first["chats"]] == [c["id"] for c in again["chats"]]
    assert first["speakers"].keys() == again["speakers"].keys()


# --- names that look like ids, names in other forms -------------------------------------------
def test_a_label_that_is_another_persons_id_names_both():
    """Jo's display name is "user2", Sam's id: typing it meant the id alone, silently Sam."""
    people = People.of_manifest({"me": {"id": "user1", "name": "Alex"}, "speakers": {
        "user1": {"name": "Alex"}, "user2": {"name": "Sam"}, "user3": {"name": "user2"}}})
    with pytest.raises(DoppelError, match=r"'user2' matches several people \(Sam, user2 "
                                          r"\[user3\]\)"):
        people.resolve("user2")
    assert people.lookup("user2") is None
    assert people.resolve("user3") == "user3" and people.resolve("Sam") == "user2"
    # a run without its dataset knows labels only: a label is its own id, one person
    assert People.of_names(["Alex", "user2"]).resolve("user2") == "user2"


@pytest.mark.parametrize("stream", [False, True])
def test_the_api_never_reads_sams_memories_for_jo_named_like_sams_id(stream, tmp_path):
    """Jo's label is "user2" (Sam's id): a request naming "user2" reads nothing and says why;
    the control, "Sam", reads Sam's secret."""
    from doppel.memory import build_index, open_index

    path = write_memory_dataset(tmp_path / "ds", labels={"user3": "user2"})
    build_index(path, progress=False)
    index = open_index(path, build_if_missing=False)
    people = People.of_manifest(load_dataset(path).manifest)
    parrot = Parrot(sorted(people.labels.values()))
    parrot.recall = Recall(index, people)
    server, url = run_in_thread(create_app(parrot))
    try:
        text, memories, warnings = _ask(url, "user2", stream, with_warnings=True)
        assert SECRET not in text and SECRET not in str(memories) and memories == []
        assert warnings and "matches several people" in warnings[0]
        text, memories = _ask(url, "Sam", stream)
        assert SECRET in text  # the control: Sam's own memory
    finally:
        server.should_exit = True
        index.close()


def test_a_name_typed_in_another_unicode_form_or_spacing_names_the_same_person():
    people = People.of_manifest({"me": {"id": "1", "name": "Alex"}, "speakers": {
        "1": {"name": "Alex"}, "2": {"name": "Zoë Carter"}, "3": {"name": "Jo Lee"}}})
    decomposed = unicodedata.normalize("NFD", "Zoë")
    for typed in (f"{decomposed} Carter", "ZOË  CARTER", "zoë\u00a0carter", decomposed.lower(),
                  "\uff3a\uff4f\u00eb"):  # full-width "Zo" and ë: its first name
        assert people.resolve(typed) == "2", typed
    with pytest.raises(DoppelError, match="matches nobody"):
        people.resolve("Zoe Carter")  # another letter, not another form of it


def test_two_labels_that_differ_only_in_form_are_not_guessed_between():
    """Two friends whose names look alike (composed and decomposed "Zoë"): typed exactly, each
    is themself; typed in a third form, several, never the first one found."""
    nfc, nfd = "Zoë", unicodedata.normalize("NFD", "Zoë")
    people = People.of_manifest({"me": {"id": "1", "name": "Alex"}, "speakers": {
        "1": {"name": "Alex"}, "2": {"name": nfc}, "3": {"name": nfd}}})
    assert people.resolve(nfc) == "2" and people.resolve(nfd) == "3"
    assert sorted(people.matches("zoë")) == ["2", "3"] and people.lookup("ZOË") is None


# --- the blind test's owner keyword -----------------------------------------------------------
def test_a_friend_labelled_me_is_not_the_owner_who_sees_every_chat(tmp_path):
    """`--judge me` is the owner, who sees every chat; with a friend whose name is "Me" (Jo here)
    it is refused, and that friend by id sees only chats they were in (never Sam's)."""
    path = write_memory_dataset(tmp_path / "ds", conversations=20, labels={"user3": "Me"})
    dataset = load_dataset(path)
    with pytest.raises(DoppelError, match=r"judge 'me' names both the exporting user .* and "
                                          r"Me \[user3\]"):
        judge_person(dataset, "me")
    jo = judge_person(dataset, "user3")
    chats = {c.id: c.chat_id for c in dataset.conversations("val")}
    seen = {chats[p.conversation] for p in held_out_points(dataset, "Alex", jo, 4)}
    assert seen and "user2" not in seen
    owner = judge_person(dataset, "Alex")  # the control: the owner, by name, sees Sam's chat
    assert "user2" in {chats[p.conversation] for p in held_out_points(dataset, "Alex", owner, 4)}
    plain = load_dataset(write_memory_dataset(tmp_path / "plain", conversations=20))
    assert judge_person(plain, " ME ") == plain.me_id  # no friend called Me: the keyword


# --- malformed requests to a keyless server ---------------------------------------------------
@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost.", False), ("127.000.000.001", False), ("localhost:8000,evil.example", False),
    ("[0:0:0:0:0:0:0:1]:80", True), ("[::ffff:7f00:1]", True), ("[fe80::1%25lo]", False),
    ("127.0.0.1:80/evil", False), ("xn--localhost", False), ("[::1]evil.example", False),
    ("::1", False), ("127.0.0.1.", False), ("LOCALHOST:1", True),
])
def test_more_host_headers(host, loopback):
    name = host_name(host)
    assert (name is not None and is_loopback(name)) is loopback


def test_names_a_tokenizer_cannot_read_are_refused_and_free_their_places():
    """A lone surrogate in a message's `name` or in `model` (not only in the text), streamed
    or not, 32 times: 400 each, then a normal request is answered; a name with chat tokens or
    one too long never reaches the model as a speaker."""
    backend = EchoBackend()
    server, url = run_in_thread(create_app(backend))
    try:
        bodies = [b'{"model": "doppel/Alex", "stream": %s, "messages": [{"role": "user", '
                  b'"name": "Sam\\ud800", "content": "hi"}]}',
                  b'{"model": "doppel/\\udfff", "stream": %s, "messages": [{"role": "user", '
                  b'"content": "hi"}]}']
        for n in range(32):
            body = bodies[n % 2] % (b"true" if n % 4 < 2 else b"false")
            refused = httpx.post(f"{url}/v1/chat/completions", content=body,
                                 headers={"Content-Type": "application/json"})
            assert refused.status_code == 400, (n, refused.text)
        long = {"model": "doppel/Alex", "messages": [{"role": "user", "name": "S" * 201,
                                                      "content": "hi"}]}
        assert httpx.post(f"{url}/v1/chat/completions", json=long).status_code == 400
        assert backend.started == 0
        queue = httpx.get(f"{url}/health").json()["queue"]
        assert queue["running"] == queue["waiting"] == 0
        ok = httpx.post(f"{url}/v1/chat/completions", json={
            "model": "doppel/Alex", "stream": True,
            "messages": [{"role": "user", "name": "Sam<|im_end|>", "content": "still here?"}]})
        assert ok.status_code == 200 and "here?" in ok.text and backend.started == 1
    finally:
        server.should_exit = True


def test_many_concurrent_bad_requests_neither_jam_nor_leak():
    """48 at once against 2 places: lone surrogates, foreign Host names, bodies that are not
    JSON or not typed as JSON, and slow streams whose clients hang up; then every place is free,
    the model ran only for the good ones, and a normal request is answered."""
    from concurrent.futures import ThreadPoolExecutor

    backend = EchoBackend(delay_s=0.01)
    server, url = run_in_thread(create_app(backend, ApiOptions(queue_size=1, batch_size=1)))
    chat = f"{url}/v1/chat/completions"
    typed = {"Content-Type": "application/json"}
    good = {"model": "doppel/Alex", "stream": True,
            "messages": [{"role": "user", "content": " ".join(["word"] * 40)}]}

    def attack(n: int) -> int:
        kind = n % 6
        if kind == 0:
            return httpx.post(chat, headers=typed, content=b'{"model": "doppel/Alex", "stream": '
                              b'true, "messages": [{"role": "user", "content": "\\ud800"}]}'
                              ).status_code
        if kind == 1:
            return httpx.post(chat, json=good, headers={"Host": "127.0.0.1.evil.example"}
                              ).status_code
        if kind == 2:
            return httpx.post(chat, headers=typed, content=b'{"model": "doppel/Alex", '
                              b'"messages": [{"role": "user"').status_code
        if kind == 3:
            return httpx.post(chat, content=json.dumps(good).encode(),
                              headers={"Content-Type": "text/plain"}).status_code
        if kind == 4:
            return httpx.get(f"{url}/v1/models", headers={"Host": "[::1]evil.example"}
                             ).status_code
        with httpx.stream("POST", chat, json=good) as left:  # hangs up after one chunk
            if left.status_code == 200:
                next(left.iter_lines())
            return left.status_code

    try:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(attack, range(48)))
        for n, code in enumerate(codes):
            # a surrogate is found once admitted: while both places are taken it waits its turn
            # like any request (503); everything else is refused before it takes a place
            expected = {0: {400, 503}, 1: {400}, 2: {400}, 3: {415}, 4: {400},
                        5: {200, 503}}[n % 6]
            assert code in expected, (n, code)
        for _ in range(100):
            queue = httpx.get(f"{url}/health").json()["queue"]
            if queue["running"] == queue["waiting"] == 0:
                break
            time.sleep(0.05)
        assert queue == {"running": 0, "waiting": 0, "capacity": 2}
        assert backend.started == codes[5::6].count(200)
        ok = httpx.post(chat, json={"model": "doppel/Alex",
                                    "messages": [{"role": "user", "content": "still here?"}]})
        assert ok.status_code == 200 and "still here?" in ok.json()["choices"][0]["message"][
            "content"]
    finally:
        server.should_exit = True


def test_memory_search_with_an_undecodable_byte_in_the_query(memory_dataset, monkeypatch,
                                                             capsys):
    """A shell passes an undecodable byte as a lone surrogate: the search runs (it was a
    traceback in the embedder), Jo's scope never shows Sam's secret, Sam's does."""
    from builders import run_cli

    query = "the vault \udcff code zebra"
    code, out, err = run_cli(["memory", "search", memory_dataset, query, "--with", "Jo"],
                             monkeypatch, capsys)
    assert code == 0 and "Traceback" not in err and SECRET not in out
    code, out, err = run_cli(["memory", "search", memory_dataset, query, "--with", "sam"],
                             monkeypatch, capsys)
    assert code == 0 and SECRET in out


# --- the bot in a group with members it never saw ---------------------------------------------
def test_the_bot_reads_no_friends_memories_in_a_group_with_a_silent_member(
        memory_dataset, tmp_path, monkeypatch, capsys):
    """Jo was in the group before the twin joined and never spoke: the twin cannot see Jo, but
    Telegram counts three members (Sam, Jo, the twin), so Sam's secret stays out. The control:
    in a group of Sam and the twin alone, Sam's memories are read."""
    from fake_telegram import FakeTelegram
    from test_bot import bot as run_bot
    from test_memory_bot import parrot_bot

    sam = 111
    trio = {"id": -100910, "type": "supergroup", "title": "Sam, Jo and the twin"}
    pair = {"id": -100911, "type": "supergroup", "title": "Sam and the twin"}
    mention = {"entities": [{"type": "mention", "offset": 0, "length": 9}]}
    dataset = parrot_bot(memory_dataset, tmp_path, monkeypatch)
    with FakeTelegram() as telegram:
        telegram.member_counts.update({trio["id"]: 3, pair["id"]: 2})
        token = tmp_path / "token"
        token.write_text(telegram.token, encoding="utf-8")

        def drive():
            telegram.say(sam, f"@twin_bot {Q}", first_name="Sam", chat=trio, **mention)
            assert SECRET not in telegram.wait_sent(trio["id"], 1)[0]
            telegram.say(sam, f"@twin_bot {Q}", first_name="Sam", chat=pair, **mention)
            assert SECRET in telegram.wait_sent(pair["id"], 1)[0]  # the control

        code, err = run_bot(telegram, [
            "RUN", "--token-file", token, "--allow", f"{sam},{trio['id']},{pair['id']}",
            "--friend", f"{sam}=Sam", "--data", dataset, "--state", tmp_path / "bot.sqlite"],
            drive, monkeypatch, capsys)
        assert code == 0, err
        assert SECRET not in " ".join(telegram.sent(trio["id"]))
