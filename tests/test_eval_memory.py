"""`doppel eval` with memory on and off: a tiny model trained with memory blocks on a few facts
gains on the fact test with memory, and --memory off measures nothing of it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from builders import write_fact_dataset, write_tiny_model
from doppel.eval.options import EvalOptions, EvalSampling
from doppel.eval.runner import evaluate
from doppel.eval.store import read_results
from doppel.runs import MODEL_DIR, RUN_INFO, TOKENIZER_DIR, RunInfo

MAX_LENGTH = 256  # a quarter of it holds one memory
STEPS = 150
TINY = EvalOptions(max_contexts=8, batch_size=4, top_speakers=0, history_turns=4,
                   rank_candidates=4, fact_turns=20, transcripts=False,
                   sampling=EvalSampling(max_new_tokens=4))


def _train(base: Path, data: Path, out: Path) -> Path:
    """A full run folder: the tiny model trained on Alex's turns, every window opening with
    memories (train/data.py's WindowMemories at share 1)."""
    import torch
    import torch.nn.functional as F

    from doppel.chatformat import IGNORE_INDEX, ChatEncoder
    from doppel.data.dataset import load_dataset
    from doppel.memory import open_index
    from doppel.models import load_model, load_tokenizer
    from doppel.train.data import WindowMemories, build_windows
    from doppel.train.loss import logits_where_labelled

    tokenizer = load_tokenizer(base)
    model = load_model(base, tokenizer)
    dataset = load_dataset(data)
    index = open_index(data)
    windows = build_windows(dataset, ChatEncoder(tokenizer), {"Alex"}, MAX_LENGTH, "train",
                            WindowMemories(index, 1.0, dataset, MAX_LENGTH))
    index.close()
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    examples = windows.examples
    for step in range(STEPS):
        batch = random.Random(step).sample(examples, min(16, len(examples)))
        width = max(len(e.input_ids) for e in batch)
        ids = torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in batch])
        labels = torch.tensor([e.labels + [IGNORE_INDEX] * (width - len(e.labels))
                               for e in batch])
        with logits_where_labelled(model, labels):  # the output layer only where loss is
            logits = model(input_ids=ids).logits[0]
        targets = labels[:, 1:][labels[:, 1:] != IGNORE_INDEX]
        F.cross_entropy(logits.float(), targets).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out / MODEL_DIR)
    tokenizer.save_pretrained(out / TOKENIZER_DIR)
    manifest = dataset.manifest
    info = RunInfo(base_model=str(base), method="full", me=manifest["me"],
                   speakers=["Alex", "Sam"], trained_speakers=["Alex"], max_length=MAX_LENGTH,
                   dataset={"path": str(data), "fingerprint": manifest["fingerprint"]})
    (out / RUN_INFO).write_text(json.dumps(info.to_json()), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    from doppel.memory import build_index

    root = tmp_path_factory.mktemp("memeval")
    data = write_fact_dataset(root / "data")
    build_index(data, progress=False)
    base = write_tiny_model(root / "base")
    return _train(base, data, root / "run"), data


@pytest.mark.slow
def test_the_fact_test_shows_a_gain_with_memory_and_none_without(trained, tmp_path):
    run, data = trained
    summary = evaluate([run], data, tmp_path / "on", TINY, progress=False)
    result = summary.runs[0].metrics["memory"]
    assert result.state == "on"
    facts = result.facts
    # every second day finds its first day; a first day names someone an earlier pair named
    assert facts.turns >= 10 and facts.recall >= 0.5
    assert facts.intervals.change[0] > 0  # the names' likelihood rose, beyond noise
    assert result.overall.tokens == summary.runs[0].perplexity.overall.tokens  # same sample
    assert result.ranking["Alex"].contexts == summary.runs[0].ranking["Alex"].contexts
    report = summary.report_md.read_text()
    assert "Memory: the same run with and without" in report and "fact words" in report
    # the words the fact test scored are listed for the reader, with their kind: the names
    assert facts.words and set(facts.kinds.values()) == {"name"}
    listed = report.split("The fact words it scored", 1)[1].split("\n", 1)[0]
    assert all(f"{w} (name)" in listed for w in facts.words)
    back = read_results(tmp_path / "on").runs[0].metrics["memory"]
    assert back == result  # results.json round-trips

    off = evaluate([run], data, tmp_path / "off", TINY.model_copy(update={"memory": "off"}),
                   progress=False)
    found = off.runs[0].metrics["memory"]
    assert found.state.endswith("(--memory off)") and found.facts is None
    assert "memory not measured (--memory off)" in off.report_md.read_text()


def test_fact_turns_name_a_word_an_earlier_chat_held(tmp_path):
    from doppel.data.dataset import load_dataset
    from doppel.eval.fact_turns import fact_turns

    dataset = load_dataset(write_fact_dataset(tmp_path / "data", pairs=12, held_out=4))
    turns = fact_turns(dataset, ["Alex"], 4, 100, 0)
    texts = {c.id: " ".join(m.text for m in c.messages) for c in dataset.conversations()}
    # every held-out second day names the first day's person; a first day may name one an
    # earlier pair named (a few names come back)
    assert {t.context.conversation_id for t in turns} >= {f"user2-{i:04d}-1" for i in range(8, 12)}
    for turn in turns:
        reply = "\n>>> ".join(turn.context.reply)
        assert reply[turn.start:turn.end].casefold() == turn.word
        if turn.context.conversation_id.endswith("-1"):
            assert turn.word in texts[turn.context.conversation_id[:-1] + "0"].casefold()
    assert len(fact_turns(dataset, ["Alex"], 4, 3, 0)) == 3  # --fact-turns bounds them
    assert fact_turns(dataset, ["Sam"], 4, 100, 0) == []  # Sam opens each day: no context


def test_memories_at_eval_time_come_only_from_before_the_context(trained):
    from doppel.data.dataset import load_dataset
    from doppel.eval.fact_turns import fact_turns
    from doppel.eval.memory import context_memories
    from doppel.memory import open_index
    from doppel.memory.scope import ChatPartners

    _, data = trained
    dataset = load_dataset(data)
    index = open_index(data)
    turns = fact_turns(dataset, ["Alex"], 4, 100, 0)
    assert turns
    partners = ChatPartners.of(dataset)
    for turn in turns:
        found = context_memories(index, turn.context, turn.before, MAX_LENGTH, partners)
        assert found and all(m.end < turn.before for m in found)
        assert turn.context.conversation_id not in {m.conversation_id for m in found}
    index.close()


def test_a_held_out_group_context_reads_only_what_every_member_shared(memory_dataset):
    """A group context where only Sam spoke in the turns at hand is still a group with Jo in it:
    eval's memories for it never hold what Sam told Alex alone."""
    from doppel.data.dataset import load_dataset
    from doppel.eval.contexts import Context
    from doppel.eval.memory import context_memories
    from doppel.memory import open_index
    from doppel.memory.scope import ChatPartners
    from memory_builders import SECRET

    dataset = load_dataset(memory_dataset)
    partners = ChatPartners.of(dataset)
    question = (("Sam", "what was the vault code again? the zebra one"),)
    late = 2_000_000_000.0
    with open_index(memory_dataset) as index:
        in_group = context_memories(index, Context("group1-0017", question, "Alex", ("hm",)),
                                    late, 2048, partners)
        alone = context_memories(index, Context("user2-0012", question, "Alex", ("hm",)),
                                 late, 2048, partners)
    assert partners.in_conversation("group1-0017", "Alex") == {"user2", "user3"}
    assert not any(SECRET in text for m in in_group for _, text in m.lines)
    assert all(m.chat_id == "group1" for m in in_group)
    assert any(SECRET in text for m in alone for _, text in m.lines)  # the control
