"""The words the fact test picks, on the sample, its 7x export and a TV-script-shaped export.

Usage: python bench/fact_words.py [--dir DIR] [--script-messages 31000] [--recall]

Prints, per export, the words memory/fact_words.py's rule picks (by kind: names, numbers, other
words that belong to one chat), and the words of the fact test's turns (eval's `fact_turns` with
the demo's settings: the user's held-out turns naming a fact word an earlier chat in scope
held), so a reader can judge what share are facts (docs/benchmarks.md, "Fact test"). The TV
script's words are a fixed salad shared by every chat: a good rule picks nothing there.
--recall prints only the fact test's retrieval recall@3 on each export (its turns' memories, as
eval searches them with the cpu-demo recipe's 512-token windows; no model needed), which also runs
on an older checkout's src (PYTHONPATH) for a before/after on the same datasets. Reruns reuse the
prepared datasets under --dir.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchdocs import run_doppel

TURN_SETTINGS = {"history_turns": 8, "limit": 48, "seed": 0}  # eval's defaults (options.py)


def _prepare(export: Path, dataset: Path) -> Path:
    if not (dataset / "manifest.json").exists():
        run_doppel(["prepare", str(export), "-o", str(dataset), "-q", "--force"])
    return dataset


def datasets(root: Path, script_messages: int) -> dict[str, Path]:
    """The three exports, prepared as `doppel prepare` does (made once under `root`)."""
    from eval_memory import write_export
    from synth_script import write_export as write_script

    found = {}
    for scale in (1, 7):
        folder = root / f"sample-x{scale}"
        if not (folder / "dataset" / "manifest.json").exists():
            write_export(folder / "export", scale)
        found[f"the sample x{scale}"] = _prepare(folder / "export", folder / "dataset")
    folder = root / "script"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "dataset" / "manifest.json").exists():
        write_script(folder / "export.json", script_messages)
    found[f"TV-script-shaped, {script_messages:,} messages"] = _prepare(
        folder / "export.json", folder / "dataset")
    return found


def report(name: str, path: Path) -> None:
    from doppel.data.dataset import load_dataset
    from doppel.eval.fact_turns import fact_turns
    from doppel.memory.fact_words import KINDS, fact_words

    dataset = load_dataset(path)
    started = time.perf_counter()
    picked = fact_words(dataset)
    seconds = time.perf_counter() - started
    chats = {c["id"]: c["name"] for c in dataset.manifest.get("chats", [])}
    print(f"\n## {name}: {len(picked)} fact words ({seconds:.1f} s, loaded machine)")
    for kind in KINDS:
        words = sorted(picked.values(), key=lambda f: (-f.salience, f.word))
        shown = [f"{f.word} ({chats.get(f.chat_id, f.chat_id)} {f.conversations}/"
                 f"{f.elsewhere})" for f in words if f.kind == kind]
        print(f"{kind}s ({len(shown)}): {', '.join(shown) or '-'}")
    turns = fact_turns(dataset, [dataset.me_name], TURN_SETTINGS["history_turns"],
                       TURN_SETTINGS["limit"], TURN_SETTINGS["seed"])
    words = sorted({t.word for t in turns})
    print(f"fact test: {len(turns)} turns of {dataset.me_name}, words: {', '.join(words) or '-'}")


def recall(name: str, path: Path, max_length: int = 512) -> None:
    """recall@3 of the fact test's turns on one export: the share whose memories hold the word."""
    from doppel.data.dataset import load_dataset
    from doppel.eval.fact_turns import fact_turns
    from doppel.eval.memory import context_memories
    from doppel.memory import open_index
    from doppel.memory.facts import holds
    from doppel.memory.scope import ChatPartners

    dataset = load_dataset(path)
    turns = fact_turns(dataset, [dataset.me_name], TURN_SETTINGS["history_turns"],
                       TURN_SETTINGS["limit"], TURN_SETTINGS["seed"])
    partners = ChatPartners.of(dataset)
    with open_index(path) as index:
        hits = [holds(list(context_memories(index, t.context, t.before, max_length, partners)),
                      t.word) for t in turns]
    share = f"{sum(hits) / len(hits):.2f}" if hits else "n/a"
    print(f"{name}: recall@3 {share} ({sum(hits)} of {len(turns)} fact turns)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-facts"))
    parser.add_argument("--script-messages", type=int, default=31_000)
    parser.add_argument("--recall", action="store_true",
                        help="only the fact test's retrieval recall@3 on each export")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, path in datasets(args.dir, args.script_messages).items():
        (recall if args.recall else report)(name, path)


if __name__ == "__main__":
    main()
