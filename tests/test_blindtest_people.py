"""Blind-test judges are people, not labels: two friends labelled "Sam" and "Sam (2)" each see
only their own chats, and the store stays attached to each person when the labels swap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from blindtest_builders import SECRET
from doppel.blindtest.items import choose, judge_person
from doppel.blindtest.options import BlindtestOptions
from doppel.blindtest.prepare import prepare
from doppel.blindtest.store import BlindStore
from doppel.data.dataset import MANIFEST, load_dataset
from doppel.infer.options import LoadOptions


def relabel(dataset: Path, out: Path, labels: dict[str, str]) -> Path:
    """A copy of `dataset` at `out` (replacing what is there: a newer prepare) with people
    renamed by id (same ids, same fingerprint)."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(dataset, out)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    for person, label in labels.items():
        manifest["speakers"][person]["name"] = label
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    lines = (out / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        for message in row["messages"]:
            message["speaker"] = labels.get(message["speaker_id"], message["speaker"])
    (out / "conversations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                             encoding="utf-8")
    return out


class Fixed:
    """A stand-in model: every candidate is one fixed line (items are what is tested here)."""

    def reply(self, history, persona, params) -> list[str]:
        return ["a generated reply"]


def test_two_friends_called_sam_each_see_only_their_own_chats(two_chats, tmp_path):
    run, dataset = two_chats
    sams = load_dataset(relabel(dataset, tmp_path / "ds", {"user3": "Sam (2)"}))
    assert judge_person(sams, "Sam") == "user2" and judge_person(sams, "sam (2)") == "user3"
    first = choose(sams, "Alex", "user2", 4, 8, 0)
    second = choose(sams, "Alex", "user3", 4, 8, 0)
    assert all(p.conversation.startswith("user2-") for p in first)
    assert all(p.conversation.startswith("user3-") for p in second)
    assert SECRET not in json.dumps([p.history for p in first])  # Jo's secret: not Sam's

    def options(data: Path, *judges: str) -> BlindtestOptions:
        return BlindtestOptions(data=data, judge=judges, items=4, serve=False,
                                load=LoadOptions(run=str(run)))

    store = BlindStore(tmp_path / "test.sqlite")
    names = prepare(options(sams.path, "Sam", "Sam (2)"), store, lambda spec: Fixed(),
                    say=lambda line: None)
    assert names == ["Sam", "Sam (2)"]
    assert store.judge_people() == {"user2": "Sam", "user3": "Sam (2)"}
    sam_items = {item.conversation for item in store.items("Sam")}
    assert sam_items and all(c.startswith("user2-") for c in sam_items)
    # a newer prepare swaps the labels: each person keeps their own judge and items
    swapped = relabel(dataset, tmp_path / "ds", {"user2": "Sam (2)", "user3": "Sam"})
    again = prepare(options(swapped, "Sam (2)", "user3"), store, lambda spec: Fixed(),
                    say=lambda line: None)
    assert again == ["Sam", "Sam (2)"]  # user2's judge is still the one first called Sam
    assert {item.conversation for item in store.items("Sam")} == sam_items
    assert store.judge_people() == {"user2": "Sam", "user3": "Sam (2)"}
    store.close()


def test_a_store_from_before_ids_is_migrated_and_its_judges_found_by_name(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE judges (name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE,
                             created REAL NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO judges VALUES ('Sam', 'tok', 0);
    """)
    db.commit()
    db.close()
    with BlindStore(path) as store:
        assert store.meta()["schema_version"] == 2
        assert store.judge_of("user2", "Sam") == "Sam"  # an old judge: by name
        store.add_judge("Jo", "tok2", [], "user3")
        assert store.judge_of("user3", "Jo") == "Jo" and store.judge_of("user9", "Jo") is None
