"""`doppel memory forget`, as a user types it, on a Telegram export prepared by `doppel prepare`:
secrets planted in chats are forgotten by words, by chat and by date; memory search, a rebuild
of the index, a `prepare --force` from the same export and the training data never bring them
back; `--list` and the record show dates and chats, never the text; other chats' facts stay,
and of two chats with one title, forgetting one keeps the other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders import run_cli

DAY0 = 1_672_531_200  # 2023-01-01 00:00 UTC: conversation n is on 2023-01-(n+1), 10:00
ME = ("user7", "Alex")
SAM, KIM, JO = ("user42", "Sam"), ("user43", "Kim"), ("user44", "Jo")
VAULT = "the vault code is 4417 zebra"  # Sam's chat, day 3: forgotten by words
BIKE = "my first bike was a Peugeot"  # Sam's chat, day 1: forgotten by --before
SAFFRON = "the secret ingredient is saffron"  # "Book club" (Kim), day 4: forgotten by --chat
LIGHTHOUSE = "we meet at the Lighthouse cafe"  # the other "Book club" (Jo), day 5: stays
BISCUIT = "my corgi Biscuit ate a sock"  # Sam's chat, day 12: stays
FORGOTTEN_WORDS = ("4417", "zebra", "Peugeot", "saffron")
FILLER = ("hey", "what's up", "not much, you?", "same old")


def _conversation(day: int, friend: tuple[str, str], fact: str | None,
                  first_id: int) -> list[dict]:
    """Four messages a minute apart on `day` (10:00 UTC): the friend opens with the fact."""
    texts = [fact or FILLER[0], *FILLER[1:]]
    out = []
    for i, text in enumerate(texts):
        who = friend if i % 2 == 0 else ME
        when = DAY0 + day * 86_400 + 36_000 + 60 * i
        out.append({"id": first_id + i, "type": "message", "date": "2023-01-01T10:00:00",
                    "date_unixtime": str(when), "from": who[1], "from_id": who[0],
                    "text": text})
    return out


def _chat(name: str, kind: str, chat_id: int, talks: dict[int, tuple[tuple[str, str],
                                                                     str | None]]) -> dict:
    messages = []
    for day, (friend, fact) in sorted(talks.items()):
        messages += _conversation(day, friend, fact, len(messages) + 1)
    return {"name": name, "type": kind, "id": chat_id, "messages": messages}


NEWER = "Biscuit learned to sit yesterday"  # only in the newer export, day 20


def write_export(path: Path, newer: bool = False) -> Path:
    """Alex's Telegram export: a chat with Sam, and two groups both called "Book club"; a newer
    export also has Sam's chat from two days earlier (conversation numbers shift) and later."""
    days = range(-2, 21) if newer else range(14)
    sam = {d: (SAM, {1: BIKE, 3: VAULT, 12: BISCUIT, 20: NEWER}.get(d)) for d in days}
    kim_club = {d: (KIM, SAFFRON if d == 4 else None) for d in (2, 4, 6)}
    jo_club = {d: (JO, LIGHTHOUSE if d == 5 else None) for d in (3, 5, 7)}
    export = {"personal_information": {"user_id": 7, "first_name": "Alex"},
              "chats": {"list": [_chat("Sam", "personal_chat", 42, sam),
                                 _chat("Book club", "private_group", 100, kim_club),
                                 _chat("Book club", "private_group", 200, jo_club)]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(export), encoding="utf-8")
    return path


PREPARE = ("prepare", "export/result.json", "-o", "out/dataset", "--groups", "--gap", "6h", "-q")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A folder with export/result.json and out/dataset as `doppel PREPARE...` wrote it, once."""
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset

    root = tmp_path_factory.mktemp("forget")
    export = write_export(root / "export" / "result.json")
    prepare_dataset(export, root / "out" / "dataset", PrepareOptions(groups=True, gap="6h"),
                    progress=False)
    return root


@pytest.fixture
def user(prepared, tmp_path, monkeypatch, capsys):
    """`doppel ...` typed in a copy of `prepared`: (exit code, out, err)."""
    shutil.copytree(prepared, tmp_path / "home")
    monkeypatch.chdir(tmp_path / "home")

    def doppel(*words: str) -> tuple[int, str, str]:
        return run_cli(list(words), monkeypatch, capsys)

    return doppel


def _found(doppel, words: str) -> str:
    """What `memory search` shows for `words` (its title, which repeats them, left out)."""
    code, out, err = doppel("memory", "search", "out/dataset", words, "-k", "20")
    assert code == 0, err
    return out.replace(repr(words), "")


def _club_ids() -> list[str]:
    from doppel.data.dataset import load_dataset

    chats = {c.chat_id: c.chat_name for c in load_dataset(Path("out/dataset")).conversations()}
    return sorted(chat for chat, name in chats.items() if name == "Book club")


def test_forget_by_words_chat_and_date_survives_rebuild_and_prepare(user):
    doppel = user
    assert "4417" in _found(doppel, "vault code") and "Peugeot" in _found(doppel, "Peugeot")
    # a preview: dates and chats, never the text, and nothing written
    code, out, err = doppel("memory", "forget", "out/dataset", "Vault CODE")
    assert code == 0, err
    assert "Sam [user42]" in out and "2023-01-04" in out and "add --yes" in out
    assert not any(word in out for word in FORGOTTEN_WORDS)
    assert not Path("out/dataset/forgotten.jsonl").exists() and "4417" in _found(doppel, "vault")

    code, out, err = doppel("memory", "forget", "out/dataset", "vault code", "--yes")
    assert code == 0 and "forgot 1 stretches" in out, out + err
    assert "4417" not in _found(doppel, "vault code") and "4417" not in _found(doppel, "zebra")
    assert "Biscuit" in _found(doppel, "Biscuit")  # the same chat's other fact stays

    # two chats called "Book club": the title is ambiguous (one line naming both ids)...
    kims, jos = _club_ids()
    code, out, err = doppel("memory", "forget", "out/dataset", "--chat", "book club", "--yes")
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert "matches several chats" in err and kims in err and jos in err
    # ...its id decides: Kim's club goes, Jo's stays
    code, out, err = doppel("memory", "forget", "out/dataset", "--chat", kims, "--yes")
    assert code == 0, err
    assert "saffron" not in _found(doppel, "secret ingredient saffron")
    assert "Lighthouse" in _found(doppel, "Lighthouse cafe")

    code, out, err = doppel("memory", "forget", "out/dataset", "--chat", "Sam", "--before",
                            "2023-01-03", "--yes")
    assert code == 0, err
    assert "Peugeot" not in _found(doppel, "Peugeot bike")
    assert "Biscuit" in _found(doppel, "corgi Biscuit")

    def nothing_came_back() -> None:
        for words in ("vault code 4417", "Peugeot", "saffron"):
            found = _found(doppel, words)
            assert not any(word in found for word in FORGOTTEN_WORDS), (words, found)
        assert "Biscuit" in _found(doppel, "Biscuit") and "Lighthouse" in _found(doppel,
                                                                                  "Lighthouse")
        from doppel.data.dataset import load_dataset

        said = " ".join(m.text for c in load_dataset(Path("out/dataset")).conversations()
                        for m in c.messages)  # what training, eval and memory read
        assert not any(word in said for word in FORGOTTEN_WORDS)
        assert "Biscuit" in said and "Lighthouse" in said
        index = Path("out/dataset/memory.sqlite").read_bytes()  # gone from the file, not hidden
        assert not any(word.encode() in index for word in FORGOTTEN_WORDS)

    nothing_came_back()
    assert doppel("memory", "build", "out/dataset", "-q")[0] == 0
    nothing_came_back()
    code, _, err = doppel(*PREPARE, "--force")
    assert code == 0, err
    nothing_came_back()
    write_export(Path("export/result.json"), newer=True)
    code, _, err = doppel(*PREPARE, "--force")
    assert code == 0, err
    nothing_came_back()
    assert "learned" in _found(doppel, "Biscuit learned to sit")  # what is new stays

    # what was forgotten: by date and chat, never the text, in the listing and in the record
    code, out, err = doppel("memory", "forget", "out/dataset", "--list")
    assert code == 0, err
    for shown in ("Sam [user42]", f"Book club [{kims}]", "2023-01-04", "2023-01-07", "words",
                  "chat", "before"):
        assert shown in out, (shown, out)
    assert jos not in out
    record = Path("out/dataset/forgotten.jsonl").read_text(encoding="utf-8")
    assert not any(word in out or word in record for word in (*FORGOTTEN_WORDS, "vault"))
    assert oct(Path("out/dataset/forgotten.jsonl").stat().st_mode & 0o777) == "0o600"


def test_an_index_opened_before_a_forget_never_shows_it(user):
    """A running chat or server holds the index it opened: the record alone hides the stretch
    (belt and braces), in every scope."""
    from doppel.memory import Scope, open_index

    doppel = user
    with open_index(Path("out/dataset"), build_if_missing=False) as memory:
        def found(words: str, scope: Scope) -> str:
            return str([m.lines for m in memory.search(words, scope, k=10)])

        assert "4417" in found("vault code", Scope.everything())
        code, _, err = doppel("memory", "forget", "out/dataset", "vault", "--yes")
        assert code == 0, err
        assert "4417" not in found("vault code", Scope.everything())
        assert "4417" not in found("vault code 4417 zebra", Scope.with_partner("user42"))
        assert "Biscuit" in found("Biscuit", Scope.with_partner("user42"))


def test_bad_input_is_one_line_and_writes_nothing(user):
    doppel = user
    record = Path("out/dataset/forgotten.jsonl")
    for words, says in [
        (["--before", "last tuesday"], "not a date"),
        (["--chat", "Nobody"], "--chat 'Nobody' matches nobody"),
        ([], "say what to forget"),
        (["   "], "pass what to forget"),
        (["vault", "--list"], "--list shows what was forgotten"),
    ]:
        code, out, err = doppel("memory", "forget", "out/dataset", *words)
        assert code == 2 and says in err, (words, err)
        assert err.strip().count("\n") == 0 and "Traceback" not in err
        assert not record.exists()
    code, _, err = doppel("memory", "search", "out/dataset", "vault", "--yes")
    assert code == 2 and "`doppel memory forget`'s" in err
    code, out, _ = doppel("memory", "forget", "out/dataset", "--list")
    assert code == 0 and "nothing forgotten in out/dataset" in out
    # a dataset without an index: one line that says how to build one
    shutil.copytree("out/dataset", "out/bare")
    Path("out/bare/memory.sqlite").unlink()
    code, _, err = doppel("memory", "forget", "out/bare", "vault", "--yes")
    assert code == 2 and "has no memory index" in err and "doppel memory build" in err
    assert not Path("out/bare/forgotten.jsonl").exists()
    # nothing matching: said, nothing written
    code, out, _ = doppel("memory", "forget", "out/dataset", "xylophone", "--yes")
    assert code == 0 and "nothing to forget" in out and not record.exists()
    # a damaged record is never read as "nothing forgotten"
    record.write_text("{not json\n", encoding="utf-8")
    code, _, err = doppel("memory", "search", "out/dataset", "vault")
    assert code == 2 and "not a readable forget record" in err


def test_the_bots_own_stretches_are_forgotten_too(memory_dataset, tmp_path, monkeypatch, capsys):
    """What the bot indexed from its own chats (no conversation holds it) is forgotten by key and
    not carried into a rebuilt index; the bot's other stretches are."""
    from doppel.memory import NewUnit, Scope, open_index

    dataset = shutil.copytree(memory_dataset, tmp_path / "dataset")
    told = [("Sam", "my new locker combination is 9876 walrus"), ("Alex", "noted")]
    other = [("Sam", "the bakery on Elm street has great croissants"), ("Alex", "yum")]
    with open_index(dataset, build_if_missing=False) as memory:
        memory.add_units([NewUnit(f"bot:42:{n}", "42", "Sam", ("user1", "user2"),
                                  1_800_000_000.0 + 3600 * n, 1_800_000_060.0 + 3600 * n,
                                  tuple(lines))
                          for n, lines in enumerate((told, other))])
    code, out, err = run_cli(["memory", "forget", dataset, "locker walrus", "--yes", "-q"],
                             monkeypatch, capsys)
    assert code == 0 and "forgot 1 stretches" in out, out + err
    for build in (False, True):
        if build:
            assert run_cli(["memory", "build", dataset, "-q"], monkeypatch, capsys)[0] == 0
        assert b"walrus" not in (dataset / "memory.sqlite").read_bytes()  # not merely hidden
        with open_index(dataset, build_if_missing=False) as memory:
            said = str([m.lines for m in memory.search("locker combination walrus 9876",
                                                       Scope.everything(), k=10)])
            assert "9876" not in said and "walrus" not in said
            assert "croissants" in str(memory.search("bakery croissants", Scope.everything()))


def test_a_damaged_or_hand_edited_record_is_one_line_everywhere(user):
    """A record line of the wrong shape (a chat id null, keys a string, no spans, a list) is
    never half-applied nor a traceback in `--list`; forget adds nothing to it."""
    doppel = user
    record = Path("out/dataset/forgotten.jsonl")
    index = Path("out/dataset/memory.sqlite").read_bytes()
    good = {"forgotten_at": "2026-12-08T06:00:00Z", "how": "words", "chat_id": "user42",
            "chat": "Sam", "conversation": "c1", "spans": [[1.0, 2.0]], "units": ["k"],
            "text_sha256": "0" * 64}
    for damaged in ({k: v for k, v in good.items() if k != "forgotten_at"},
                    {**good, "chat_id": None}, {**good, "units": "abc"}, {**good, "spans": []},
                    {**good, "spans": [[2.0, 1.0]]}, {**good, "spans": [[1.0, "x"]]}, [1, 2]):
        line = json.dumps(damaged).encode() + b"\n"
        record.write_bytes(line)
        for words in (["memory", "forget", "out/dataset", "--list"],
                      ["memory", "forget", "out/dataset", "vault", "--yes"],
                      ["memory", "search", "out/dataset", "vault"]):
            code, out, err = doppel(*words)
            assert code == 2 and "not a readable forget record" in err, (damaged, words, err)
            assert err.strip().count("\n") == 0 and "Traceback" not in err
        assert record.read_bytes() == line
        assert Path("out/dataset/memory.sqlite").read_bytes() == index
    record.write_bytes(json.dumps(good).encode() + b"\n")  # the shape forget writes is read
    code, out, err = doppel("memory", "forget", "out/dataset", "--list")
    assert code == 0 and "Sam [user42]" in out, err


def test_an_open_index_cut_otherwise_hides_a_span_inside_a_stretch(user):
    """A running server's index may be cut into stretches other than the ones forgotten (it
    predates a `prepare --force`): a stretch that holds a forgotten message inside is hidden
    there, while the index rebuilt without that message shows the rest of the stretch."""
    from doppel.data.forgotten import Stretch, append_forgotten, records_of
    from doppel.memory import Scope, open_index

    doppel = user
    with open_index(Path("out/dataset"), build_if_missing=False) as memory:
        (hit,) = [m for m in memory.search("vault code 4417", Scope.everything(), k=5)
                  if "4417" in str(m.lines)]
        assert [text for _, text in hit.lines] == [VAULT, *FILLER[1:]]
        middle = hit.start + 60  # "what's up": neither the stretch's first nor last message
        append_forgotten(Path("out/dataset"), records_of(
            [Stretch("k", hit.conversation_id, hit.chat_id, hit.chat_name, middle, middle,
                     FILLER[1])], "words"))
        shown = memory.search("vault code 4417", Scope.everything(), k=5)
        assert all(m.unit_id != hit.unit_id for m in shown), shown
    assert doppel("memory", "build", "out/dataset", "-q")[0] == 0
    with open_index(Path("out/dataset"), build_if_missing=False) as memory:
        (kept,) = [m for m in memory.search("vault code 4417", Scope.everything(), k=5)
                   if "4417" in str(m.lines)]  # not hidden as if it still held the message
        assert [text for _, text in kept.lines] == [VAULT, *FILLER[2:]]


def test_a_stretch_hidden_in_an_open_index_takes_no_place_from_the_rest(user):
    """Sam's small talk is the same stretch on many days: with the one a search would show first
    forgotten, a running server's index shows another day's, not nothing (a forgotten stretch
    is masked before ranking: no candidate, near-duplicate or budget place is lost to it)."""
    from doppel.data.forgotten import Stretch, append_forgotten, records_of
    from doppel.memory import Scope, open_index

    sam = Scope.with_partner(SAM[0])
    with open_index(Path("out/dataset"), build_if_missing=False) as memory:
        (first,) = memory.search("hey what's up", sam, k=1)
        assert [text for _, text in first.lines] == list(FILLER)
        append_forgotten(Path("out/dataset"), records_of(
            [Stretch("k", first.conversation_id, first.chat_id, first.chat_name, first.start,
                     first.end, "\n".join(FILLER))], "words"))
        (shown,) = memory.search("hey what's up", sam, k=1)
        assert shown.unit_id != first.unit_id and shown.conversation_id != first.conversation_id
        assert [text for _, text in shown.lines] == list(FILLER)


def test_a_running_bot_keeps_what_it_adds_after_a_forget(user):
    """`memory forget` renames a rebuilt index into place while a bot holds the old one open:
    the bot's next exchange goes into the new file (not the replaced one, lost at its exit),
    and its searches read the rebuilt index."""
    from doppel.memory import NewUnit, Scope, open_index

    doppel = user
    when = 1_800_000_000.0
    with open_index(Path("out/dataset"), build_if_missing=False) as memory:
        assert "4417" in str(memory.search("vault code", Scope.everything(), k=10))
        code, _, err = doppel("memory", "forget", "out/dataset", "vault", "--yes", "-q")
        assert code == 0, err
        memory.add_units([NewUnit("bot:42:0", SAM[0], "Sam", (SAM[0], ME[0]), when, when + 60,
                                  (("Sam", "my kayak is bright orange"), ("Alex", "nice")))])
        assert "kayak" in str(memory.search("kayak orange", Scope.everything()))
        assert "4417" not in str(memory.search("vault code 4417", Scope.everything(), k=10))
    assert b"kayak" in Path("out/dataset/memory.sqlite").read_bytes()
    with open_index(Path("out/dataset"), build_if_missing=False) as memory:
        assert "kayak" in str(memory.search("kayak orange", Scope.with_partner(SAM[0])))
