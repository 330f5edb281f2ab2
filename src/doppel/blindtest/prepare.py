"""Preparing a blind test: check the run against the data, choose each judge's items, generate
every candidate once (the run's chat settings) and store them shuffled, so every load and every
judge sees the same screen."""

from __future__ import annotations

import os
import random
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doppel.blindtest.items import Point, choose, judge_person
from doppel.blindtest.options import BlindtestOptions
from doppel.blindtest.store import BlindStore
from doppel.data.dataset import Dataset, load_dataset
from doppel.data.people import People
from doppel.errors import DoppelError
from doppel.runs import read_run_info

REAL, TWIN = "real", "twin"
Loader = Callable[[str], Any]  # model spec -> an engine (tests pass their own)


def identity(options: BlindtestOptions, dataset: Dataset) -> dict[str, Any]:
    """What makes a test this test: the run, the data, whose replies, which rivals."""
    info = read_run_info(Path(options.load.run))
    fingerprint = (info.dataset or {}).get("fingerprint")
    if fingerprint not in (None, dataset.fingerprint):
        raise DoppelError(f"run {options.load.run} was trained on other data than "
                          f"{dataset.path} (fingerprints differ); pass the dataset folder the "
                          "run was trained on")
    persona = options.persona or (info.me or {}).get("name")
    if persona:  # by data/people.py's rule: "sam" is "Sam Carter"
        people = People.of_manifest(dataset.manifest)
        found = people.lookup(persona)
        persona = people.label(found) if found is not None else persona
    if not persona or persona not in dataset.speakers.values():
        raise DoppelError(f"{persona!r} is not a speaker in {dataset.path}; choose --as from: "
                          f"{', '.join(sorted(set(dataset.speakers.values())))}")
    return {"run": os.path.abspath(options.load.run), "dataset": os.path.abspath(dataset.path),
            "dataset_fingerprint": dataset.fingerprint, "persona": persona,
            "against": list(options.against)}


def check_same_test(store: BlindStore, wanted: dict[str, Any]) -> None:
    """A store holds one test: another run's, data's or persona's is refused, answers kept."""
    held = store.meta()
    if "test_id" not in held:
        return
    differs = [key for key, value in wanted.items() if held.get(key) != value]
    if differs:
        raise DoppelError(f"{store.path} holds another blind test ({', '.join(differs)} "
                          f"differ: run {held.get('run')}, data {held.get('dataset')}, persona "
                          f"{held.get('persona')}); choose another --store to keep its answers")


def prepare(options: BlindtestOptions, store: BlindStore, load: Loader,
            say: Callable[[str], None] = print) -> list[str]:
    """Add the judges not yet in the store (items chosen, candidates generated and stored);
    returns the judges' names as the dataset spells them."""
    if options.data is None:
        raise DoppelError("--data DATASET is needed to add judges (the folder the run was "
                          "trained on)")
    dataset = load_dataset(options.data)
    wanted = identity(options, dataset)
    check_same_test(store, wanted)
    seed = options.sampling.seed or 0
    people = list(dict.fromkeys(judge_person(dataset, name) for name in options.judge))
    names = {person: store.judge_of(person, _label(dataset, person)) for person in people}
    new = {person: choose(dataset, wanted["persona"], person, options.items,
                          options.history_turns, seed)
           for person, name in names.items() if name is None}
    taken = set(store.judges())
    for person in new:  # a label another person's judge already has: the id tells them apart
        label = _label(dataset, person)
        names[person] = label if label not in taken else f"{label} [{person}]"
        taken.add(names[person])
    if not new:
        return list(names.values())
    if "test_id" not in store.meta():
        store.set_meta({**wanted, "test_id": uuid.uuid4().hex, "created": time.time(),
                        "sources": [REAL, TWIN, *options.against]})
    points = {(p.conversation, p.turn): p for chosen in new.values() for p in chosen
              if store.item_id(p.conversation, p.turn) is None}
    if points:
        say(f"generating {len(points)} replies per model for "
            f"{', '.join(names[person] for person in new)}")
        _store_items(store, list(points.values()), options, load, seed)
    for person, chosen in new.items():
        store.add_judge(names[person], secrets.token_urlsafe(18),
                        [store.item_id(p.conversation, p.turn) for p in chosen], person)
    return list(names.values())


def _label(dataset: Dataset, person: str) -> str:
    return dataset.me_name if person == dataset.me_id else dataset.speakers.get(person, person)


def _store_items(store: BlindStore, points: list[Point], options: BlindtestOptions,
                 load: Loader, seed: int) -> None:
    """Generate each model's replies, then store every item with its candidates shuffled."""
    persona = store.meta()["persona"]
    params = options.sampling.replace(seed=seed)
    replies: dict[str, list[list[str]]] = {}
    for source, spec in [(TWIN, options.load.run), *((s, s) for s in options.against)]:
        engine = load(spec)
        replies[source] = _reply_all(engine, points, persona, params)
        del engine
    test_id = store.meta()["test_id"]
    for index, point in enumerate(points):
        named = [(REAL, list(point.reply))] + [(s, replies[s][index]) for s in replies]
        random.Random(f"{test_id}:{point.conversation}:{point.turn}").shuffle(named)
        store.add_item(point.conversation, point.turn, [list(m) for m in point.history],
                       [text for _, text in named], [source for source, _ in named])


def _reply_all(engine, points: list[Point], persona: str, params) -> list[list[str]]:
    histories = [list(p.history) for p in points]
    if hasattr(engine, "reply_many"):  # the torch engine batches them
        return [list(r) for r in engine.reply_many(histories, [persona] * len(points), params)]
    return [list(engine.reply(h, persona, params.replace(seed=params.seed + n)))
            for n, h in enumerate(histories)]
