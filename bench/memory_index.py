"""Memory index at scale: build time, peak memory and size for a big dataset, the incremental
rebuild after a newer export, and retrieval latency; plus the embedder comparison on the sample.

Usage: python bench/memory_index.py [--messages 1000000] [--dir /tmp/doppel-bench-memory]
       python bench/memory_index.py --search DATASET (only the searches, on a built index)
       python bench/memory_index.py --embedders      (quality on the sample's facts, speed)
       python bench/memory_index.py --build DATASET  (build one dataset's index: time, size)
       python bench/memory_index.py --results OUT.json (the sample's searches, to compare two
                                                        versions' results: run from each)

Searches go the way a reply's do (k=3, a 400-token budget); their p50 is given in wall and in
CPU milliseconds (the second moves less with the load).

The big dataset is written straight in the dataset folder's shape (prepare has its own bench):
chats with a friend and groups, conversations of 4-40 messages, words drawn Zipf-like from a
30k-word English-and-Cyrillic vocabulary, so the lexical index and the embedder's word cache
see a realistic spread. Goals (issue 20): build < 5 min and < 1 GB on 2 cores, streamed; a
rebuild embeds only what is new; retrieval p50 < 50 ms. Each step runs in its own process so
its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

LATIN = "bcdfghklmnprstvz"
VOWELS = "aeiou"
CYRILLIC = "бвгдзклмнпрстф"
CYR_VOWELS = "аеиоуя"


def _vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    words = set()
    while len(words) < size:
        cons, vows = (CYRILLIC, CYR_VOWELS) if rng.random() < 0.35 else (LATIN, VOWELS)
        words.add("".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def write_dataset(folder: Path, messages: int, seed: int = 0, start_index: int = 0,
                  append: bool = False) -> int:
    """A dataset folder of about `messages` messages (appended to when `append`)."""
    from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION

    rng = random.Random(seed)
    vocab = _vocabulary(random.Random(1))
    cumulative = list(itertools.accumulate(1.0 / (rank + 10) for rank in range(len(vocab))))
    friends = [(f"user{100 + i}", f"Friend {i}") for i in range(200)]
    me = ("user1", "Alex")
    folder.mkdir(parents=True, exist_ok=True)
    speakers = {me[0]: {"name": me[1], "messages": 0, "chats": []}}
    speakers.update({sid: {"name": name, "messages": 0, "chats": []} for sid, name in friends})
    chats = [(sid, name, [me, (sid, name)]) for sid, name in friends]
    chats += [(f"group{g}", f"Group {g}", [me, *rng.sample(friends, 5)]) for g in range(20)]
    for chat_id, _, members in chats:
        for sid, _ in members:
            speakers[sid]["chats"].append(chat_id)
    written, n, clock = 0, start_index, 1_500_000_000.0 + start_index * 3600.0
    with open(folder / CONVERSATIONS, "a" if append else "w", encoding="utf-8") as out:
        while written < messages:
            chat_id, name, members = rng.choice(chats)
            clock += rng.uniform(600, 7200)
            rows = []
            for _ in range(rng.randint(4, 40)):
                sid, who = rng.choice(members)
                clock += rng.uniform(5, 300)
                text = " ".join(rng.choices(vocab, cum_weights=cumulative,
                                            k=rng.randint(1, 14)))
                rows.append({"speaker_id": sid, "speaker": who, "time": clock, "text": text})
            out.write(json.dumps({"id": f"{chat_id}-{n:07d}", "split": "train", "messages": rows,
                                  "chat": {"id": chat_id, "name": name,
                                           "type": "personal_chat" if chat_id.startswith("user")
                                           else "private_group"}}, ensure_ascii=False) + "\n")
            written += len(rows)
            n += 1
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": me[0], "name": me[1]},
                "speakers": speakers, "fingerprint": f"bench-{messages}-{seed}"}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return n


def _child(step: str, folder: str) -> None:
    """One measured step in this process: prints a JSON line with its numbers."""
    from doppel.memory import Scope, build_index, open_index
    from doppel.memory.index import MEMORY_FILE

    started, cpu = time.perf_counter(), time.process_time()
    result: dict = {"step": step}
    if step in ("build", "fresh"):  # fresh: nothing reused from the index being replaced
        build_index(Path(folder), progress=False,
                    reuse=Path(folder) / "no-older-index" if step == "fresh" else None)
        import sqlite3

        with sqlite3.connect(Path(folder) / MEMORY_FILE) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        size = (Path(folder) / MEMORY_FILE).stat().st_size
        result.update(units=int(meta["units"]), texts=int(meta.get("texts", meta["units"])),
                      embedded=int(meta["units_embedded"]),
                      reused=int(meta.get("units_reused", 0)), size_mb=round(size / 2**20, 1),
                      over_conversations=round(
                          size / (Path(folder) / "conversations.jsonl").stat().st_size, 2))
    else:
        memory = open_index(Path(folder))
        rng = random.Random(3)
        vocab = _vocabulary(random.Random(1))
        memory.search("warm up", Scope.everything())
        result["open_s"] = round(time.perf_counter() - started, 2)
        for scope_name, scope in (("one friend", Scope.with_partner("user107")),
                                  ("everything", Scope.everything())):
            times, cpu_times = [], []
            for _ in range(100):
                query = " ".join(rng.choices(vocab[:5000], k=rng.randint(4, 20)))
                t, cpu = time.perf_counter(), time.process_time()
                memory.search(query, scope, k=3, token_budget=400)
                times.append((time.perf_counter() - t) * 1000)
                cpu_times.append((time.process_time() - cpu) * 1000)
            times.sort()
            result[scope_name] = {"p50_ms": round(statistics.median(times), 1),
                                  "p95_ms": round(times[94], 1),
                                  "p50_cpu_ms": round(statistics.median(cpu_times), 1)}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["cpu_s"] = round(time.process_time() - cpu, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def _run(step: str, folder: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", step, str(folder)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scale(messages: int, folder: Path) -> None:
    print(f"writing a {messages:,}-message dataset in {folder} ...", flush=True)
    next_index = write_dataset(folder, messages)
    print(json.dumps(_run("build", folder)), flush=True)
    print(json.dumps(_run("search", folder)), flush=True)
    write_dataset(folder, messages // 20, seed=1, start_index=next_index, append=True)
    print(f"appended {messages // 20:,} messages (a newer export); rebuilding", flush=True)
    print(json.dumps(_run("build", folder)), flush=True)


def embedders() -> None:
    """Fact recall on the sample with the index's retrieval, per ranking, and the embedder's
    speed and install size: the measurement behind the default."""
    import tempfile

    from doppel.data.dataset import load_dataset
    from doppel.data.options import PrepareOptions
    from doppel.data.people import People
    from doppel.data.pipeline import prepare_dataset
    from doppel.memory import Scope, open_index, ranking
    from doppel.memory.facts import fact_probes, holds
    from doppel.sample import write_sample_export
    from doppel.sample.scripts import FACT_QUESTIONS, FACT_WORDS

    root = Path(tempfile.mkdtemp(prefix="doppel-bench-embed-"))
    export = write_sample_export(root / "export")
    prepare_dataset(export, root / "ds", PrepareOptions(groups=True), progress=False)
    dataset = load_dataset(root / "ds")
    probes = fact_probes(dataset)  # the fact rule's words, as eval's fact test picks them
    print(f"{len(probes)} probes on {len({p.word for p in probes})} fact words "
          f"({len([p for p in probes if p.word in FACT_WORDS])} on the planted ones)")
    people = People.of_manifest(dataset.manifest)
    memory = open_index(root / "ds")
    for label, weights in (("lexical only", (1.0, 0.0, 0.0)), ("vectors only", (0.0, 1.0, 0.0)),
                           ("fused (default)", ranking.LIST_WEIGHTS)):
        ranking.LIST_WEIGHTS = weights
        hits = sum(holds(memory.search(p.query, Scope.with_partner(p.partner), before=p.before,
                                       exclude_conversations={p.conversation_id}, k=3), p.word)
                   for p in probes)
        asked = sum(holds(memory.search(q, Scope.with_partner(people.resolve(who)), k=5), word)
                    for q, who, word in FACT_QUESTIONS)
        print(f"{label:16s} fact recall@3 {hits}/{len(probes)}, questions without the word "
              f"recall@5 {asked}/{len(FACT_QUESTIONS)}")
    texts = [" ".join(text for _, text in unit.lines) for unit in _units(dataset)]
    started = time.perf_counter()
    memory.embedder.embed(texts)
    print(f"use-m3-static: {len(texts) / (time.perf_counter() - started):,.0f} units/s "
          f"({len(texts)} sample units, one process)")


def results(out: Path) -> None:
    """The units (conversation id, lines) each of the sample's searches returns, as JSON: the
    fact probes, the paraphrased questions, and 40 unit texts as queries over everything."""
    import tempfile

    from doppel.data.dataset import load_dataset
    from doppel.data.options import PrepareOptions
    from doppel.data.people import People
    from doppel.data.pipeline import prepare_dataset
    from doppel.memory import Scope, open_index
    from doppel.memory.facts import fact_probes
    from doppel.sample import write_sample_export
    from doppel.sample.scripts import FACT_QUESTIONS, FACT_WORDS

    root = Path(tempfile.mkdtemp(prefix="doppel-bench-results-"))
    prepare_dataset(write_sample_export(root / "export"), root / "ds",
                    PrepareOptions(groups=True), progress=False)
    dataset = load_dataset(root / "ds")
    people = People.of_manifest(dataset.manifest)
    asked = [(p.query, Scope.with_partner(p.partner), p.before, {p.conversation_id}, 3)
             for p in fact_probes(dataset, FACT_WORDS)]
    asked += [(q, Scope.with_partner(people.resolve(who)), None, set(), 5)
              for q, who, _ in FACT_QUESTIONS]
    asked += [(" ".join(text for _, text in unit.lines), Scope.everything(), None, set(), 5)
              for unit in _units(dataset)[::25]]
    with open_index(root / "ds") as memory:
        found = [[[m.conversation_id, m.lines] for m in memory.search(
            query, scope, before=before, exclude_conversations=exclude, k=k)]
            for query, scope, before, exclude, k in asked]
    out.write_text(json.dumps(found), encoding="utf-8")
    print(f"{len(found)} searches -> {out}")


def _units(dataset):
    from doppel.memory.units import dataset_units

    return list(dataset_units(dataset))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-memory"))
    parser.add_argument("--embedders", action="store_true")
    parser.add_argument("--search", type=Path, metavar="DATASET",
                        help="only the searches, on a dataset folder whose index is built")
    parser.add_argument("--build", type=Path, metavar="DATASET",
                        help="only the build, on a dataset folder (its index is replaced)")
    parser.add_argument("--results", type=Path, metavar="OUT")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
    elif args.embedders:
        embedders()
    elif args.search:
        print(json.dumps(_run("search", args.search)), flush=True)
    elif args.build:
        print(json.dumps(_run("fresh", args.build)), flush=True)
    elif args.results:
        results(args.results)
    else:
        import shutil

        shutil.rmtree(args.dir, ignore_errors=True)
        scale(args.messages, args.dir)


if __name__ == "__main__":
    main()
