"""The memory index: built by prepare, finds the sample's planted facts, keeps each friend's
secrets in their scope, refuses what it cannot read, and rebuilds only what is new."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from builders import run_cli
from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION, load_dataset
from doppel.data.people import People
from doppel.errors import DoppelError
from doppel.memory import MEMORY_FILE, NewUnit, Scope, build_index, open_index
from doppel.memory.fact_words import fact_words, stem
from doppel.memory.facts import fact_probes, holds
from doppel.sample.scripts import FACT_QUESTIONS, FACT_WORDS


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The sample export prepared with groups, as `doppel prepare` writes it (index included)."""
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset
    from doppel.sample import write_sample_export

    root = tmp_path_factory.mktemp("memory-sample")
    export = write_sample_export(root / "export")
    prepare_dataset(export, root / "ds", PrepareOptions(groups=True), progress=False)
    return root / "ds"


def test_prepare_writes_an_owner_only_index_of_masked_text(sample):
    path = sample / MEMORY_FILE
    assert path.is_file() and (path.stat().st_mode & 0o777) == 0o600
    db = sqlite3.connect(path)
    lines = " ".join(row[0] for row in db.execute("SELECT lines FROM units"))
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert "[phone]" in lines and "555 0142" not in lines  # masked, as the dataset is
    assert meta["embedder"] == "use-m3-static" and meta["dimension"] == "512"
    assert not list(sample.parent.glob(f"ds/.{MEMORY_FILE}.tmp-*"))


def test_retrieval_finds_the_samples_planted_facts(sample):
    """Each later mention of a recurring fact, asked before its conversation in its partner's
    scope, brings back an earlier memory holding the fact's word."""
    probes = fact_probes(load_dataset(sample), FACT_WORDS)
    assert len(probes) >= 9 and len({p.word for p in probes}) >= 8
    with open_index(sample) as memory:
        found = [holds(memory.search(p.query, Scope.with_partner(p.partner), before=p.before,
                                     exclude_conversations={p.conversation_id}, k=3), p.word)
                 for p in probes]
    recall = sum(found) / len(found)
    assert recall >= 0.85, [p.word for p, hit in zip(probes, found, strict=True) if not hit]


def test_the_fact_rule_finds_the_samples_planted_facts(sample):
    """The rule eval's fact test and the bench ask with (memory/fact_words.py) picks the facts
    the sample planted (Priya's lowercase "lisbon" is said in other chats too), and the probes
    it makes by default ask its words."""
    dataset = load_dataset(sample)
    picked = fact_words(dataset)
    assert {stem(w) for w in FACT_WORDS} - set(picked) <= {stem("lisbon")}
    assert {"alex", "sam", "carter"}.isdisjoint(picked)  # people's own names greet, not tell
    probes = fact_probes(dataset)
    assert {stem(p.word) for p in probes} <= set(picked)
    assert {"biscuit", "clara", "звенигород"} <= {p.word for p in probes}


def test_paraphrased_questions_find_facts(sample):
    with open_index(sample) as memory:
        people = People.of_manifest(load_dataset(sample).manifest)
        found = [holds(memory.search(q, Scope.with_partner(people.resolve(who)), k=5), word)
                 for q, who, word in FACT_QUESTIONS]
    assert sum(found) >= 3, found


def test_memories_carry_their_context_and_respect_time_and_exclusions(sample):
    sam = People.of_manifest(load_dataset(sample).manifest).resolve("Sam Carter")
    with open_index(sample) as memory:
        hits = memory.search("Biscuit sock vet", Scope.with_partner(sam), k=3)
        assert hits and hits[0].chat_name in ("Sam", "Weekend Crew")
        assert sam in hits[0].participants and "Sam Carter" in hits[0].who  # ids; labels shown
        assert len(hits[0].lines) >= 2
        first = hits[0]
        later = memory.search("Biscuit sock vet", Scope.with_partner(sam),
                              before=first.end, exclude_conversations={first.conversation_id})
        assert all(m.end < first.end and m.conversation_id != first.conversation_id
                   for m in later)
        budgeted = memory.search("Biscuit", Scope.everything(), k=5, token_budget=60)
        assert sum(len(s) + len(t) for m in budgeted for s, t in m.lines) <= 60 * 4


def test_many_vectors_are_ranked_by_sign_bits_then_exactly(sample, monkeypatch):
    """Past PREFILTER_FROM allowed units, a Hamming pass on sign bits keeps PREFILTER of them
    for the exact cosine: here a quarter of the sample's units, the same top 5 as exact."""
    from doppel.memory import search

    with open_index(sample) as memory:
        searcher = memory._searcher
        mask = searcher.allowed(Scope.everything(), None, ())
        monkeypatch.setattr(search, "DENSE_MIN_Z", -100.0)  # rank every unit, no floor
        texts = [" ".join(text for _, text in json.loads(lines)) for (lines,) in
                 searcher.db.execute("SELECT lines FROM units ORDER BY id LIMIT 20 OFFSET 100")]
        exact = [searcher._dense(text, mask)[:5] for text in texts]
        monkeypatch.setattr(search, "PREFILTER_FROM", 0)
        monkeypatch.setattr(search, "PREFILTER", searcher.units // 4)
        assert [searcher._dense(text, mask)[:5] for text in texts] == exact
        assert searcher.bits.shape == (searcher.embedder.dimension // 64, searcher.units)


def _dataset(path: Path, chats: dict[str, tuple[str, list[list[tuple[str, str]]]]]) -> Path:
    """A dataset folder: chat id -> (chat name, conversations of (speaker, text))."""
    path.mkdir(parents=True)
    rows, speakers, t = [], {}, 1_700_000_000.0
    for chat_id, (name, conversations) in chats.items():
        for n, lines in enumerate(conversations):
            messages = []
            for speaker, text in lines:
                t += 60
                sid = "u" + speaker.lower()
                entry = speakers.setdefault(sid, {"name": speaker, "messages": 0, "chats": []})
                entry["messages"] += 1
                if chat_id not in entry["chats"]:
                    entry["chats"].append(chat_id)
                messages.append({"speaker_id": sid, "speaker": speaker, "time": t, "text": text})
            t += 86_400
            rows.append({"id": f"{chat_id}-{n:04d}", "split": "train", "messages": messages,
                         "chat": {"id": chat_id, "name": name, "type": "personal_chat"}})
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": "ualex", "name": "Alex"},
                "speakers": speakers, "fingerprint": "test"}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


FILLER = [[("Alex", "hey how was your day"), ("Sam", "Fine, thanks. Work was long.")],
          [("Alex", "any plans for the weekend"), ("Sam", "Maybe the cinema, if it rains.")]]


@pytest.fixture
def secrets(tmp_path) -> Path:
    return _dataset(tmp_path / "ds", {
        "sam": ("Sam", [*FILLER, [("Sam", "Did you ever find out the vault code?"),
                                  ("Alex", "no idea lol")]]),
        "nora": ("Nora", [[("Nora", "the vault code is zebra 7391. tell nobody."),
                           ("Alex", "zebra 7391 got it")]]),
        "crew": ("Crew", [[("Sam", "Who is bringing snacks?"), ("Nora", "me."),
                           ("Alex", "ill bring the vault of crisps lol")]]),
    })


def test_a_secret_told_to_one_friend_never_reaches_another(secrets):
    build_index(secrets, progress=False)
    with open_index(secrets) as memory:
        for query in ("vault code", "zebra 7391", "what is the code nora told you", "zebra"):
            for k in (1, 3, 10):
                hits = memory.search(query, Scope.with_partner("usam"), k=k)
                assert not holds(hits, "zebra"), query
            # the same question in Nora's scope, and for the owner, does find it
            assert holds(memory.search(query, Scope.with_partner("unora"), k=3), "zebra")
            assert holds(memory.search(query, Scope.everything(), k=3), "zebra")
        # the group Sam shares with Nora is in Sam's scope
        assert holds(memory.search("snacks crisps", Scope.with_partner("usam"), k=3), "crisps")


def test_the_bots_own_conversations_are_remembered_in_that_friends_scope_only(secrets):
    build_index(secrets, progress=False)
    unit = NewUnit("bot:42:1", "42", "Sam", ("ualex", "usam"), 1_800_000_000.0,
                   1_800_000_060.0, (("Sam", "where should we eat friday"),
                                     ("Alex", "the tapas place on Dock Lane lol")),
                   ("Alex", "Sam"))
    with open_index(secrets) as memory:
        memory.add_units([unit])
        assert holds(memory.search("tapas dock lane", Scope.with_partner("usam")), "tapas")
        assert not holds(memory.search("tapas dock lane", Scope.with_partner("unora")), "tapas")
    build_index(secrets, progress=False)  # a rebuild keeps them
    with open_index(secrets) as memory:
        assert holds(memory.search("tapas dock lane", Scope.with_partner("usam")), "tapas")


def test_units_added_after_loading_get_their_sign_bits(secrets, monkeypatch):
    from doppel.memory import search

    build_index(secrets, progress=False)
    unit = NewUnit("bot:42:2", "42", "Sam", ("ualex", "usam"), 1_800_000_000.0,
                   1_800_000_060.0, (("Sam", "the paella at Marisqueira Rui"),
                                     ("Alex", "marisqueira again lol")), ("Alex", "Sam"))
    with open_index(secrets) as memory:
        memory.search("anything", Scope.with_partner("usam"))  # loads the arrays
        units = memory._searcher.units
        memory.add_units([unit])
        assert memory._searcher.bits.shape[1] == units + 1
        monkeypatch.setattr(search, "PREFILTER_FROM", 0)
        monkeypatch.setattr(search, "PREFILTER", 1)
        assert holds(memory.search("paella marisqueira", Scope.with_partner("usam")), "paella")


def _meta(dataset: Path) -> dict[str, str]:
    with sqlite3.connect(dataset / MEMORY_FILE) as db:
        return dict(db.execute("SELECT key, value FROM meta"))


def test_a_rebuild_embeds_only_what_is_new(secrets):
    build_index(secrets, progress=False)
    first = _meta(secrets)
    assert int(first["units_embedded"]) == int(first["units"]) > 0
    build_index(secrets, progress=False)
    assert _meta(secrets)["units_embedded"] == "0"
    with open(secrets / CONVERSATIONS, "a", encoding="utf-8") as lines:
        lines.write(json.dumps({"id": "sam-0099", "split": "train", "chat": {
            "id": "sam", "name": "Sam", "type": "personal_chat"}, "messages": [
            {"speaker_id": "usam", "speaker": "Sam", "time": 1_900_000_000.0,
             "text": "New job at the observatory!"},
            {"speaker_id": "ualex", "speaker": "Alex", "time": 1_900_000_060.0,
             "text": "omg congrats"}]}) + "\n")
    build_index(secrets, progress=False)
    meta = _meta(secrets)
    assert meta["units_embedded"] == "1" and int(meta["units"]) == int(first["units"]) + 1


def _model2vec_folder(path: Path, dimension: int = 16) -> Path:
    """A tiny model2vec-shaped folder (word-level tokenizer, random table), made here."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = ["[UNK]", "vault", "code", "zebra", "snacks", "hey", "sam", "nora", "alex"]
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    path.mkdir()
    tokenizer.save(str(path / "tokenizer.json"))
    table = np.random.default_rng(0).normal(size=(len(words), dimension)).astype(np.float32)
    save_file({"embeddings": table}, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({"model_type": "model2vec"}), "utf-8")
    return path


def test_a_local_model2vec_folder_embeds_and_another_embedder_is_refused(secrets, tmp_path):
    folder = _model2vec_folder(tmp_path / "m2v")
    build_index(secrets, folder, progress=False)
    meta = _meta(secrets)
    assert meta["embedder"] == "model2vec:m2v" and meta["dimension"] == "16"
    with open_index(secrets) as memory:  # the index names its embedder: it is loaded again
        assert holds(memory.search("zebra", Scope.with_partner("unora")), "zebra")
    with pytest.raises(DoppelError, match=r"built with embedder model2vec:m2v \(16 dimensions"):
        open_index(secrets, embedder="use-m3-static")
    (folder / "model.safetensors").unlink()  # the folder it was built with is gone
    with pytest.raises(DoppelError, match="cannot be loaded here; rebuild it"):
        open_index(secrets)


def test_bad_index_files_are_one_line_errors(secrets, monkeypatch, capsys):
    build_index(secrets, progress=False)
    path = secrets / MEMORY_FILE
    path.write_bytes(path.read_bytes()[:3000])  # truncated
    code, _, err = run_cli(["memory", "search", str(secrets), "vault"], monkeypatch, capsys)
    assert code == 2 and "not a readable doppel memory index" in err and len(err.splitlines()) == 1
    path.write_bytes(b"just some text, not SQLite at all" * 100)  # foreign
    code, _, err = run_cli(["memory", "search", str(secrets), "vault"], monkeypatch, capsys)
    assert code == 2 and "memory build" in err and "Traceback" not in err
    sqlite3.connect(path.with_name("other.sqlite")).execute("CREATE TABLE t (x)").connection \
        .commit()
    path.unlink()
    path.with_name("other.sqlite").rename(path)  # SQLite, but someone else's
    code, _, err = run_cli(["memory", "search", str(secrets), "vault"], monkeypatch, capsys)
    assert code == 2 and "not a readable doppel memory index" in err


def test_a_dataset_from_before_memory_builds_its_index_on_first_use(secrets, monkeypatch,
                                                                     capsys):
    assert not (secrets / MEMORY_FILE).exists()
    code, out, err = run_cli(["memory", "search", str(secrets), "zebra", "--with", "nora"],
                             monkeypatch, capsys)
    assert code == 0, err
    assert "no memory index yet" in err and (secrets / MEMORY_FILE).is_file()
    assert "zebra 7391" in out and "Nora" in out and "date" in out and "who was there" in out


def test_search_with_nobody_or_nothing_is_one_line(secrets, monkeypatch, capsys):
    build_index(secrets, progress=False)
    code, _, err = run_cli(["memory", "search", str(secrets), "zebra", "--with", "Bob"],
                           monkeypatch, capsys)
    assert code == 2 and "--with 'Bob' matches nobody" in err and "Nora" in err
    code, _, err = run_cli(["memory", "search", str(secrets), "  "], monkeypatch, capsys)
    assert code == 2 and "pass what to look for" in err
    code, _, err = run_cli(["memory", "search", str(secrets / "nope"), "x"], monkeypatch, capsys)
    assert code == 2 and "does not exist" in err
    with open_index(secrets) as memory:
        assert memory.readable(Scope.with_partner("usam")) > 0
        assert memory.readable(Scope.with_partner("usam"), before=0.0) == 0  # an empty scope
        assert memory.search("zebra", Scope.with_partner("unora"), before=0.0) == []


def test_memory_build_rebuilds_atomically_from_the_cli(secrets, monkeypatch, capsys):
    code, _, err = run_cli(["memory", "build", str(secrets), "-q"], monkeypatch, capsys)
    assert code == 0, err
    assert (secrets / MEMORY_FILE).stat().st_mode & 0o777 == 0o600
    code, _, err = run_cli(["memory", "build", str(secrets), "--embedder",
                            str(secrets / "missing")], monkeypatch, capsys)
    assert code == 2 and "--embedder" in err and "not a folder" in err
    assert _meta(secrets)["embedder"] == "use-m3-static"  # the old index is untouched
    assert sorted(p.name for p in secrets.iterdir()) == [CONVERSATIONS, MANIFEST, MEMORY_FILE]


def test_units_overlap_so_a_remark_and_its_answer_share_one():
    from doppel.data.dataset import Conversation, ConversationMessage
    from doppel.memory.units import conversation_units

    speakers = ["Sam", "Alex"] * 5  # ten turns of one message each
    conversation = Conversation("c-1", "c", "Sam", "personal_chat", "train", [
        ConversationMessage(s[0].lower(), s, 100.0 + i, f"line {i}")
        for i, s in enumerate(speakers)])
    units = list(conversation_units(conversation, (("a", "s"), ("Alex", "Sam"))))
    texts = [[text for _, text in unit.lines] for unit in units]
    assert texts == [[f"line {i}" for i in range(0, 4)], [f"line {i}" for i in range(3, 7)],
                     [f"line {i}" for i in range(6, 10)]]  # a lone last turn joins the last
    assert all(u.participants == ("a", "s") and u.names == ("Alex", "Sam") and u.start < u.end
               for u in units)
    for i in range(9):  # every line and the next one are in some unit together
        assert any(f"line {i}" in t and f"line {i + 1}" in t for t in texts)


def test_the_query_is_the_last_turns_words():
    from doppel.memory import query_from_history

    history = [("Sam", "hi"), ("Alex", "hey"), ("Sam", "how is Biscuit?"), ("Sam", "the vet?"),
               ("Alex", "ok")]
    assert query_from_history(history, turns=2) == "how is Biscuit?\nthe vet?\nok"
    assert query_from_history(history, turns=1) == "ok"
    assert query_from_history([], turns=2) == ""


def test_a_local_transformers_folder_embeds_with_mean_pooling(tiny_model, tmp_path):
    """`--embedder` takes a sentence-transformers (any transformers encoder) folder too; here
    the tests' tiny random Llama stands in for one: the index builds, records it, searches."""
    data = _dataset(tmp_path / "ds", {"sam": ("Sam", FILLER)})
    build_index(data, tiny_model, progress=False)
    meta = _meta(data)
    assert meta["embedder"] == f"sentence-transformers:{tiny_model.name}"
    assert meta["dimension"] == "64" and meta["embedder_source"] == str(tiny_model.resolve())
    with open_index(data) as memory:
        assert holds(memory.search("cinema rains", Scope.with_partner("usam")), "cinema")


def test_two_people_called_sam_never_read_each_others_memories(tmp_path, monkeypatch, capsys):
    """"Sam" and "Sam (2)" are two ids: each one's secret stays in their own scope, by Scope and
    through `memory search --with`, whichever way the name is typed."""
    data = _dataset(tmp_path / "ds", {
        "sam": ("Sam", [[("Sam", "my locker code is walrus 5512"), ("Alex", "noted")]]),
        "sam2": ("Sam (2)", [[("Sam (2)", "my locker code is walrus 8830"), ("Alex", "ok")]]),
    })
    build_index(data, progress=False)
    people = People.of_manifest(load_dataset(data).manifest)
    first, second = people.resolve("Sam"), people.resolve("sam (2)")
    assert (first, second) == ("usam", "usam (2)")
    with open_index(data) as memory:
        for query in ("locker code walrus", "walrus 5512", "walrus 8830"):
            assert not holds(memory.search(query, Scope.with_partner(first), k=10), "8830")
            assert not holds(memory.search(query, Scope.with_partner(second), k=10), "5512")
        assert holds(memory.search("locker code walrus", Scope.with_partner(first)), "5512")
        assert holds(memory.search("locker code walrus", Scope.with_partner(second)), "8830")
    for typed, mine, theirs in (("Sam", "5512", "8830"), ("Sam (2)", "8830", "5512"),
                                ("usam (2)", "8830", "5512")):
        code, out, err = run_cli(["memory", "search", str(data), "locker code walrus", "--with",
                                  typed], monkeypatch, capsys)
        assert code == 0, err
        assert mine in out and theirs not in out, typed


def test_a_groups_scope_is_every_member(secrets):
    """Talking to Sam and Nora together reads only chats both were in: never Nora's secret told
    alone, never Sam's own chat."""
    build_index(secrets, progress=False)
    with open_index(secrets) as memory:
        both = Scope.of({"usam", "unora"})
        for query in ("vault code zebra", "cinema rains weekend", "snacks crisps"):
            hits = memory.search(query, both, k=10)
            assert all(m.chat_id == "crew" for m in hits), query
        assert holds(memory.search("snacks crisps", both), "crisps")
        assert memory.readable(Scope.of(set())) == 0  # nobody to talk to, nothing to recall


# memory.sqlite as versions 1 and 2 laid it out: a float16 vector on every unit's row
OLDER_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE units (id INTEGER PRIMARY KEY, key TEXT NOT NULL, conversation_id TEXT NOT NULL,
  chat_id TEXT NOT NULL, chat_name TEXT NOT NULL, participants TEXT NOT NULL,
  names TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, lines TEXT NOT NULL,
  vector BLOB NOT NULL);
CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, row);
"""


def _as_older(path: Path, version: str, participants: str | None = None) -> None:
    """Rewrite an index in the layout of schema 1 or 2 (participants replaced when given)."""
    from doppel.memory.vectors import decode

    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        rows = db.execute("SELECT id, conversation_id, chat_id, chat_name, participants, names, "
                          "start, end, lines, vector FROM units ORDER BY id").fetchall()
    path.unlink()
    dimension = int(meta["dimension"])
    with sqlite3.connect(path) as db:
        db.executescript(OLDER_SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [*{**meta, "schema_version": version}.items()])
        for row in rows:
            vector = decode([row[9]], dimension)[0].astype(np.float16).tobytes()
            db.execute("INSERT INTO units VALUES (?, 'key', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (*row[:4], participants or row[4], *row[5:9], vector))
            text = "\n".join(f"{s}: {t}" for s, t in json.loads(row[8]))
            db.execute("INSERT INTO fts (rowid, body) VALUES (?, ?)", (row[0], text))


def test_an_index_from_before_person_ids_is_rebuilt_on_open(secrets, capsys):
    build_index(secrets, progress=False)
    path = secrets / MEMORY_FILE
    with open_index(secrets) as memory:  # a bot's unit: not carried from version 1
        memory.add_units([NewUnit("bot:1:1", "1", "Sam", ("ualex", "usam"), 1.0, 2.0,
                                  (("Sam", "paella at Rui"),), ("Alex", "Sam"))])
    # what version 1 held: names as participants
    _as_older(path, "1", participants='["Sam", "Nora", "Alex"]')
    with pytest.raises(DoppelError, match="memory index version '1'"):
        open_index(secrets, build_if_missing=False)
    with open_index(secrets) as memory:
        assert "older doppel" in capsys.readouterr().err
        assert memory.meta["schema_version"] == "3" and memory.meta["units_reused"] != "0"
        assert memory.meta["units_embedded"] == "0"  # every text's vector came from the old one
        assert not holds(memory.search("vault code", Scope.with_partner("usam")), "zebra")
        assert not holds(memory.search("paella rui", Scope.with_partner("usam")), "paella")


def test_an_index_of_float16_vectors_is_rebuilt_reusing_them_and_the_bots_units(secrets,
                                                                                 capsys):
    """Version 2 (person ids, float16 vectors per unit): rebuilt on open, nothing embedded
    again, the bot's units carried over, the same memories found."""
    build_index(secrets, progress=False)
    bot = NewUnit("bot:1:1", "1", "Sam", ("ualex", "usam"), 1.0, 2.0,
                  (("Sam", "paella at Rui"),), ("Alex", "Sam"))
    with open_index(secrets) as memory:
        memory.add_units([bot])
        before = [(m.conversation_id, m.lines) for query in ("zebra code", "cinema rains")
                  for m in memory.search(query, Scope.everything(), k=3)]
    _as_older(secrets / MEMORY_FILE, "2")
    with open_index(secrets) as memory:
        assert "memory index version 2" in capsys.readouterr().err
        assert memory.meta["units_embedded"] == "0" and memory.meta["schema_version"] == "3"
        assert holds(memory.search("paella rui", Scope.with_partner("usam")), "paella")
        assert not holds(memory.search("paella rui", Scope.with_partner("unora")), "paella")
        after = [(m.conversation_id, m.lines) for query in ("zebra code", "cinema rains")
                 for m in memory.search(query, Scope.everything(), k=3)]
    assert after == before


def test_an_older_index_restored_after_a_forget_is_migrated_without_what_was_forgotten(
        secrets, monkeypatch, capsys):
    """A version 2 index from before a forget (a backup put back): the rebuild on open reuses
    its vectors, but neither the forgotten stretch nor the bot's forgotten unit comes back."""
    import shutil

    from builders import run_cli

    build_index(secrets, progress=False)
    with open_index(secrets) as memory:
        memory.add_units([NewUnit("bot:1:1", "1", "Sam", ("ualex", "usam"), 1.0, 2.0,
                                  (("Sam", "paella at Rui"),), ("Alex", "Sam"))])
    backup = shutil.copy(secrets / MEMORY_FILE, secrets.parent / "backup.sqlite")
    for words in ("zebra 7391", "paella rui"):
        code, out, err = run_cli(["memory", "forget", secrets, words, "--yes", "-q"],
                                 monkeypatch, capsys)
        assert code == 0 and "forgot 1 stretches" in out, out + err
    _as_older(backup, "2")
    assert b"7391" in backup.read_bytes() and b"paella" in backup.read_bytes()
    shutil.copy(backup, secrets / MEMORY_FILE)
    with open_index(secrets) as memory:
        assert "memory index version 2" in capsys.readouterr().err
        assert memory.meta["units_embedded"] == "0"
        for query, word in (("vault code zebra", "7391"), ("paella rui", "paella")):
            assert not holds(memory.search(query, Scope.everything(), k=10), word)
        assert holds(memory.search("snacks", Scope.everything()), "snacks")
    held = (secrets / MEMORY_FILE).read_bytes()
    assert b"7391" not in held and b"paella" not in held
