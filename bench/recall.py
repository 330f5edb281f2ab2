"""Retrieval alone, on eval's fact turns: recall@3 and search latency in seconds, no model.

Usage: python bench/recall.py [--scale 1] [--dir DIR] [--limit 48] [--seed 0] [--all]
                              [--write-docs]
  e.g. python bench/recall.py --dir /tmp/r1            (the bundled sample)
       python bench/recall.py --scale 7 --dir /tmp/r7  (the sample's generator, 7x the days)

The turns are the fact test's own (eval/fact_turns.py `fact_turns`, with the demo eval's
settings: the user's turns, --quick's history, eval's --fact-turns and seed), and each is
searched the way the fact test searches it (eval/memory.py `context_memories`: the last turns
as the query, the scope of the chat's other members by person id, only what ended before the
conversation began, never the conversation itself, the memories block's token budget for a
cpu-demo run). A hit is a turn whose memories hold its fact word (memory/facts.py `holds`).

Each row is one retrieval variant, all on the same turns: "today" is the search as shipped;
the others switch one idea off (or, for ideas not kept, on) through memory/search.py's knobs,
so the table says what each idea is worth. --all scores every fact turn (tighter intervals)
rather than eval's first --limit. The export and dataset are made once in --dir and reused.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchdocs import run_doppel, write_block
from doppel.chatformat import MEMORY_SHARE
from eval_memory import write_export

HEADING = "## Retrieval on the fact turns, no model (bench/recall.py)"
CPU_DEMO_MAX_LENGTH = 512  # the demo run's window: the memories block gets a quarter of it


def dataset_for(root: Path, scale: int) -> Path:
    """The prepared export (with its memory index), made once in `root`."""
    dataset = root / "dataset"
    if not (dataset / "manifest.json").exists():
        export = write_export(root / "export", scale)
        run_doppel(["prepare", str(export), "-o", str(dataset), "-q", "--force"])
    return dataset


@contextmanager
def knobs(settings: dict[str, object]) -> Iterator[None]:
    """Memory settings ("search.RECENT_CONVERSATIONS": a module of doppel.memory and a name in
    it) changed for one variant, restored after."""
    import importlib

    where = {key: (importlib.import_module(f"doppel.memory.{key.split('.')[0]}"),
                   key.split(".")[1]) for key in settings}
    old = {key: getattr(module, name) for key, (module, name) in where.items()}
    for key, value in settings.items():
        setattr(*where[key], value)
    try:
        yield
    finally:
        for key, value in old.items():
            setattr(*where[key], value)


def variants() -> dict[str, dict[str, object]]:
    """Name -> memory/search.py settings; "today" is the shipped search."""
    return {"today": {},
            "without the latest conversations": {"search.RECENT_CONVERSATIONS": 0,
                                                  "ranking.LIST_WEIGHTS": (1.0, 0.5, 0.0)}}


FIT_SHARE = 0.2  # of each chat's training conversations, the latest are the fitting turns
# what --fit searches: the fusion's list weights (lexical, vectors, latest conversations), its
# rank constant and the vectors' z-score floor
GRID = [{"ranking.LIST_WEIGHTS": weights, "ranking.RRF_K": k, "search.DENSE_MIN_Z": z}
        for weights in ((1.0, 0.5, 0.25), (1.0, 0.25, 0.25), (1.0, 1.0, 0.25), (1.0, 0.5, 0.0),
                        (1.0, 0.5, 0.5))
        for k in (10, 30) for z in (4.0, 2.0)]
FIT_TURNS = 200  # earlier fact turns fitted on, at most


def measure(dataset_dir: Path, limit: int, seed: int, chosen: dict[str, dict[str, object]],
            turns_from: Path | None = None) -> tuple[int, list[str], list[list]]:
    """Per variant: recall@3 with its 95% interval and the search's p50 / p95 latency (the
    fact turns of `turns_from`, default the dataset's own)."""
    from doppel.data.dataset import load_dataset
    from doppel.eval import bootstrap
    from doppel.eval.fact_turns import fact_turns
    from doppel.eval.memory import context_memories, open_memory
    from doppel.eval.options import QUICK
    from doppel.memory.facts import holds
    from doppel.memory.scope import ChatPartners

    dataset = load_dataset(dataset_dir)
    asked = load_dataset(turns_from) if turns_from else dataset
    turns = fact_turns(asked, [dataset.me_name], QUICK["history_turns"], limit, seed)
    partners = ChatPartners.of(dataset)
    index = open_memory(dataset.path, "on")
    index.search("warm up", _scope_of_someone(partners))  # vectors load once, not timed
    rows, first = [], None
    for name, settings in chosen.items():
        hits, seconds = [], []
        with knobs(settings):
            for turn in turns:
                started = time.perf_counter()
                found = context_memories(index, turn.context, turn.before,
                                         CPU_DEMO_MAX_LENGTH, partners)
                seconds.append(time.perf_counter() - started)
                hits.append(float(holds(list(found), turn.word)))
            asked = _questions(index, dataset)
        share = sum(hits) / len(hits) if hits else 0.0
        low, high = bootstrap.interval(bootstrap.mean_of(hits), len(hits), seed) or (0.0, 0.0)
        first = hits if first is None else first
        rows.append([name, f"{share:.2f} [{low:.2f}, {high:.2f}]", _change(hits, first, seed),
                     asked,
                     f"{1000 * statistics.median(seconds):.1f}" if seconds else "n/a",
                     f"{1000 * _p95(seconds):.1f}" if seconds else "n/a"])
    index.close()
    words = sorted({t.word for t in turns})
    return len(turns), words, rows


def earlier_view(dataset_dir: Path, root: Path) -> Path:
    """The dataset's training conversations alone, each chat's latest FIT_SHARE of them
    labelled held-out: the fact turns drawn from it are pairs the history already holds (a turn
    of mine whose fact word an earlier conversation in scope holds), all of them earlier than
    the real held-out conversations, which the fitted settings are then scored on."""
    import json

    from doppel.data.dataset import CONVERSATIONS, MANIFEST, load_dataset

    dataset = load_dataset(dataset_dir)
    view = root / "earlier"
    view.mkdir(parents=True, exist_ok=True)
    by_chat: dict[str, list] = {}
    for conversation in dataset.conversations("train"):
        by_chat.setdefault(conversation.chat_id, []).append(conversation)
    with open(view / CONVERSATIONS, "w", encoding="utf-8") as out:
        for conversations in by_chat.values():
            conversations.sort(key=lambda c: c.messages[0].time)
            first = len(conversations) - max(1, round(FIT_SHARE * len(conversations)))
            for number, conversation in enumerate(conversations):
                conversation.split = "val" if number >= first and number > 0 else "train"
                out.write(json.dumps(conversation.to_json()) + "\n")
    (view / MANIFEST).write_text(json.dumps(dataset.manifest), encoding="utf-8")
    return view


def fit(dataset_dir: Path, root: Path, seed: int) -> tuple[str, dict[str, object]]:
    """The GRID settings with the best recall@3 on the earlier view's fact turns (ties: the
    first, today's); returns a line saying what was fitted on, and the settings."""
    view = earlier_view(dataset_dir, root)
    grid = {f"{n}": settings for n, settings in enumerate(GRID)}
    count, _, rows = measure(dataset_dir, FIT_TURNS, seed, grid, turns_from=view)
    shares = [float(row[1].split()[0]) for row in rows]
    best = max(range(len(rows)), key=lambda n: (shares[n], -n))
    return (f"fitted on {count} earlier fact turns: recall@3 {shares[0]:.2f} today, "
            f"{shares[best]:.2f} with {GRID[best]}"), GRID[best]


def _questions(index, dataset) -> str:
    """The sample's questions that do not name their fact ("how is your corgi doing?" ->
    Biscuit), asked in the friend's scope with the same k and budget: how many find it."""
    from doppel.data.people import People
    from doppel.eval.memory import K
    from doppel.infer.recall import scoped_search
    from doppel.memory.facts import holds
    from doppel.sample.scripts import FACT_QUESTIONS

    people = People.of_manifest(dataset.manifest)
    found = sum(holds(list(scoped_search(index, question, {people.resolve(who)}, k=K,
                                         token_budget=CPU_DEMO_MAX_LENGTH // MEMORY_SHARE)),
                      word) for question, who, word in FACT_QUESTIONS)
    return f"{found}/{len(FACT_QUESTIONS)}"


def _scope_of_someone(partners) -> object:
    from doppel.memory.scope import Scope

    return Scope.of(next(iter(partners.members.values()), ())[:1])


def _change(hits: list[float], first: list[float], seed: int) -> str:
    """This variant's recall minus the first row's, with its paired 95% interval."""
    from doppel.eval import bootstrap

    if hits is first or not hits:
        return ""
    found = bootstrap.paired(bootstrap.mean_of(hits), bootstrap.mean_of(first), len(hits), seed)
    low, high = found.change if found else (0.0, 0.0)
    return f"{(sum(hits) - sum(first)) / len(hits):+.2f} [{low:+.2f}, {high:+.2f}]"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def table(rows: list[list]) -> str:
    lines = ["| variant | recall@3 [95%] | change, paired [95%] | questions found | "
             "search p50 ms | p95 ms |", "|---|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None,
         chosen: Callable[[], dict[str, dict[str, object]]] = variants) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--limit", type=int, default=None,
                        help="fact turns at most (default: eval's --fact-turns)")
    parser.add_argument("--all", action="store_true", help="every fact turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--fit", action="store_true",
                        help="fit the fusion's settings on earlier fact turns, then score them")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    from doppel.eval.options import EvalOptions

    limit = (1 << 30) if args.all else (
        args.limit or EvalOptions.model_fields["fact_turns"].default)
    root = args.dir or Path(tempfile.mkdtemp(prefix="doppel-recall-"))
    started = time.perf_counter()
    dataset = dataset_for(root, args.scale)
    prepared = time.perf_counter() - started
    picked = {k: v for k, v in chosen().items() if not args.only or k in args.only}
    fitted = ""
    if args.fit:
        fitted, settings = fit(dataset, root, args.seed)
        fitted = f"The fit: {fitted}."
        picked["fitted on earlier turns"] = settings
    started = time.perf_counter()
    count, words, rows = measure(dataset, limit, args.seed, picked)
    measured = time.perf_counter() - started
    load = os.getloadavg()[0]
    note = (f"Export: the sample{'' if args.scale == 1 else f' scaled {args.scale}x'}; "
            f"{count} fact turns (seed {args.seed}); 2-core VM, 1-min load {load:.1f}; "
            f"{measured:.0f} s for all variants (prepare {prepared:.0f} s). Command: "
            f"`python bench/recall.py --scale {args.scale}{' --all' if args.all else ''}"
            f"{' --fit' if args.fit else ''}`.{' ' + fitted if args.fit else ''}")
    print(note)
    print(f"fact words ({len(words)}): {', '.join(words[:40])}")
    print(table(rows))
    if args.write_docs:
        script = f"recall.py --scale {args.scale}{' --all' if args.all else ''}"
        write_block(HEADING, script, f"{note}\n\n{table(rows)}")


if __name__ == "__main__":
    main()
