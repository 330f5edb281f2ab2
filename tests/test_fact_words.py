"""The fact rule picks facts: a pet's, a place's and a Russian cat's names and a date that recur
in one friend's chat, not ordinary uncommon words spread over every chat, nor anything in a word
salad; eval's fact turns and the bench's probes read the same rule."""

from __future__ import annotations

import json
import random
from pathlib import Path

from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION, load_dataset
from doppel.eval.fact_turns import fact_turns
from doppel.memory.fact_words import fact_words, stem
from doppel.memory.facts import fact_probes, holds
from doppel.memory.records import Memory

ALEX, SAM, JO, DIMA = ("u1", "Alex Morgan"), ("u2", "Sam Carter"), ("u3", "Jo Lind"), \
    ("u4", "Dima Volkov")
FRIENDS = {"u2": SAM, "u3": JO, "u4": DIMA}
# uncommon words, each in a few conversations of every chat: the old rule's "facts"
ORDINARY = ("bowl", "busy", "asks", "belongs", "bumped")
SMALL_TALK = {"u2": ["Hi Alex, how are you doing today?", "That sounds lovely, to be honest.",
                     "I will see you on Friday then."],
              "u3": ["Not much, Alex. Long day at work.", "Sounds good to me, see you."],
              "u4": ["Привет, Алекс! Как дела?", "Да всё нормально, работаю."]}
ALEX_TALK = ["hey how are you", "nice lol", "same here", "ok see you"]
# (chat, conversation number) -> lines; the rest is small talk with an ordinary word now and then
PLANTED = {
    ("u2", 3): [(SAM, "We adopted a corgi called Biscuit, he is adorable."),
                (ALEX, "omg biscuit!!")],
    ("u2", 19): [(SAM, "Sadly Biscuit ate a sock, so we went to the vet."),
                (ALEX, "poor biscuit lol")],
    ("u2", 47): [(SAM, "Guess who chewed my shoes? Of course it was Biscuit again."),
                 (ALEX, "biscuit strikes again lol")],
    ("u3", 4): [(JO, "signed up for the rotterdam marathon, it is on the 14th."),
                (ALEX, "rotterdam!! the 14th, noted")],
    ("u3", 21): [(JO, "rotterdam is in two weeks, the 14th."), (ALEX, "rotterdam on the 14th!!")],
    ("u3", 30): [(JO, "bought new shoes for rotterdam, for the 14th."),
                 (ALEX, "rotterdam shoes lol")],
    ("u3", 48): [(JO, "finished rotterdam on the 14th, what a day."),
                 (ALEX, "rotterdam legend lol")],
    ("u4", 5): [(DIMA, "Кот Барсик опять сбежал на даче."), (ALEX, "барсик ахаха")],
    ("u4", 19): [(DIMA, "Нашли Барсика у соседей, всё хорошо."), (ALEX, "ура, барсика нашли")],
    ("u4", 46): [(DIMA, "Наш Барсик теперь спит на крыше."), (ALEX, "барсика береги лол")],
}


def _write(path: Path, lines: dict[tuple[str, int], list], per_chat: int = 50,
           seed: int = 0) -> Path:
    """A dataset in the contract's shape: Alex (me) and three friends, each in a personal chat,
    one conversation a day taking turns between the chats; `lines` planted where it says, and
    small talk with ORDINARY words spread over every chat elsewhere. The last conversations of
    each chat are the val split."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    rows, t, counts = [], 1_700_000_000.0, dict.fromkeys(("u1", *FRIENDS), 0)
    for number in range(per_chat):
        for chat, friend in FRIENDS.items():
            said = lines.get((chat, number)) or [
                (friend, rng.choice(SMALL_TALK[chat])),
                (ALEX, f"{rng.choice(ALEX_TALK)}, the {ORDINARY[number % len(ORDINARY)]} thing"
                 if number % 3 == 0 else rng.choice(ALEX_TALK))]
            messages = []
            for speaker, text in said:
                t += 60
                messages.append({"speaker_id": speaker[0], "speaker": speaker[1], "time": t,
                                 "text": text})
                counts[speaker[0]] += 1
            t += 3_600
            rows.append({"id": f"{chat}-{number:04d}",
                         "chat": {"id": chat, "name": friend[1].split()[0],
                                  "type": "personal_chat"},
                         "split": "val" if number >= per_chat - 4 else "train",
                         "messages": messages})
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows),
                                      encoding="utf-8")
    speakers = {pid: {"name": name, "messages": counts[pid],
                      "chats": list(FRIENDS) if pid == "u1" else [pid]}
                for pid, name in (ALEX, SAM, JO, DIMA)}
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": ALEX[0], "name": ALEX[1]},
                "speakers": speakers, "fingerprint": f"fact-words-{seed}",
                "chats": [{"id": c, "name": f[1].split()[0], "type": "personal_chat"}
                          for c, f in FRIENDS.items()]}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_names_places_and_dates_of_one_chat_are_facts_and_uncommon_words_are_not(tmp_path):
    dataset = load_dataset(_write(tmp_path / "data", PLANTED))
    picked = {f.word: f for f in fact_words(dataset).values()}
    assert picked["biscuit"].kind == "name" and picked["biscuit"].chat_id == "u2"
    assert picked["rotterdam"].kind == "word" and picked["rotterdam"].chat_id == "u3"
    assert picked["14th"].kind == "number"
    # one cat in three cases ("Барсик", "Барсика"): one stem, a name (capitalised mid-sentence)
    cat = fact_words(dataset)[stem("Барсика")]
    assert cat.kind == "name" and cat.chat_id == "u4" and cat.conversations == 3
    # uncommon words in a few conversations of every chat, small talk, and the people's own
    # names ("Hi Alex") are no facts
    assert not set(picked) & {*ORDINARY, "alex", "алекс", "lovely", "friday", "signed"}
    assert set(picked) == {"biscuit", "rotterdam", "14th", "барсик"}, sorted(picked)


def test_a_word_salad_shared_by_every_chat_has_no_facts(tmp_path):
    """A fixed salad in every chat (bench/synth_script.py's shape): no word belongs to anyone,
    so the fact test says it found none rather than scoring small talk."""
    rng = random.Random(1)
    salad = ("coffee", "apartment", "tonight", "believe", "Really", "always", "thing", "about",
             "Monday", "never", "again", "know")
    lines = {(chat, n): [(friend, " ".join(rng.choice(salad) for _ in range(8)).capitalize()),
                         (ALEX, " ".join(rng.choice(salad) for _ in range(5)))]
             for chat, friend in FRIENDS.items() for n in range(50)}
    dataset = load_dataset(_write(tmp_path / "data", lines))
    assert fact_words(dataset) == {}
    assert fact_turns(dataset, [ALEX[1]], 4, 100, 0) == []


def test_fact_turns_and_probes_read_the_same_rule(tmp_path):
    """Eval's fact turns name only the rule's words, inflected or not ("барсика" finds the
    earlier "Барсик"), with their kind; the bench's probes, by default, ask the same words."""
    dataset = load_dataset(_write(tmp_path / "data", PLANTED))
    facts = fact_words(dataset)
    turns = fact_turns(dataset, [ALEX[1]], 4, 100, 0)
    assert {t.context.conversation_id for t in turns} == {"u2-0047", "u3-0048", "u4-0046"}
    for turn in turns:
        reply = "\n>>> ".join(turn.context.reply)
        assert reply[turn.start:turn.end].casefold() == turn.word
        assert turn.kind == facts[stem(turn.word)].kind
    assert {t.word for t in turns} == {"biscuit", "rotterdam", "барсика"}
    probes = fact_probes(dataset)
    assert {p.word for p in probes} <= {f.word for f in facts.values()}
    assert {(p.conversation_id, p.word) for p in probes} >= {
        ("u2-0019", "biscuit"), ("u3-0021", "14th"), ("u4-0019", "барсик")}
    earlier = Memory(1, "u4-0005", "u4", "Dima", ("u1", "u4"), 0.0, 1.0,
                     (("Dima Volkov", "Кот Барсик опять сбежал на даче."),))
    assert holds([earlier], "барсика") and not holds([earlier], "biscuit")
