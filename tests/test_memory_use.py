"""Memory where the twin speaks and where it learns: a real index over a small dataset in which
Sam tells Alex a secret alone. Training windows read only the past of their own scope; chat,
serve and bot give Sam's memories to Sam and never to Jo (a "parrot" backend replies with the
memories it was given, so what is generated is checked as well as what is retrieved)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest

from doppel.chatformat import ChatEncoder, group_turns
from doppel.data.dataset import load_dataset
from doppel.data.people import People
from doppel.infer.chat import ChatSession
from doppel.infer.echo import EchoBackend
from doppel.infer.engine import Delta, SamplingParams
from doppel.infer.recall import Recall
from doppel.infer.server import create_app, run_in_thread
from doppel.memory.units import chat_members
from doppel.train.data import window_memories
from memory_builders import SECRET

QUESTION = "the vault code, you promised to keep it secret?"


@pytest.fixture
def index(memory_dataset):
    from doppel.memory import open_index

    opened = open_index(memory_dataset, build_if_missing=False)
    yield opened
    opened.close()


class Parrot(EchoBackend):
    """Replies with the memories it read (or says it remembers nothing): whatever reaches the
    prompt reaches the reply, so a leak into the prompt is a leak into what is generated."""

    def stream(self, history: Sequence[tuple[str, str]], respondent: str,
               params: SamplingParams | None = None,
               memories: Sequence | None = None) -> Iterator[Delta]:
        if memories is None:
            memories = self.recall.find(history, respondent) if self.recall else ()
        said = " | ".join(f"{s}: {t}" for m in memories for s, t in m.lines)
        yield Delta(said or "nothing comes to mind", 0)
        yield Delta("", 0, done=True, finish_reason="stop", memories=tuple(memories))


def _parrot(index, scope: str = "partner") -> Parrot:
    """A parrot reading the index's dataset's memories, its people from the manifest."""
    people = People.of_manifest(load_dataset(index.path.parent).manifest)
    parrot = Parrot(sorted(people.labels.values()))
    parrot.recall = Recall(index, people, scope)
    return parrot


def _said(deltas) -> tuple[str, tuple]:
    deltas = list(deltas)
    return "".join(d.text for d in deltas), deltas[-1].memories


# --- training ------------------------------------------------------------------------------
def test_no_training_window_holds_a_memory_from_its_own_conversation_or_its_future(
        memory_dataset, chat_tokenizer):
    dataset = load_dataset(memory_dataset)
    memories = window_memories(dataset, 1.0, 256)
    encoder = ChatEncoder(chat_tokenizer)
    recalled: dict[str, list] = {}
    members = {chat: set(ids) for chat, (ids, _) in chat_members(dataset).items()}
    for conversation in dataset.conversations():
        began = conversation.messages[0].time
        partners = members[conversation.chat_id] - {"user1"}  # the chat's, by id
        turns = group_turns((m.speaker, m.text) for m in conversation.messages)
        for example in encoder.encode(turns, {"Alex"}, 256,
                                      memories=memories.for_conversation(conversation)):
            for memory in example.memories:
                assert memory.conversation_id != conversation.id
                assert memory.end < began  # nothing from its future
                assert partners <= set(memory.participants)  # nor from outside its scope
                recalled.setdefault(conversation.id, []).append(memory)
    memories.index.close()
    # Sam's later question is answered from Sam's earlier secret; Jo's same question is not
    assert any(SECRET in text for m in recalled["user2-0009"] for _, text in m.lines)
    assert not any(SECRET in text for ms in recalled.values() for m in ms for _, text in m.lines
                   if "user3" in m.participants)
    assert not any(SECRET in text for m in recalled.get("user3-0011", ()) for _, text in m.lines)


def test_memory_share_picks_a_seeded_share_of_windows(memory_dataset, chat_tokenizer):
    from doppel.train.data import build_windows

    dataset = load_dataset(memory_dataset)
    encoder = ChatEncoder(chat_tokenizer)
    counts = []
    for share in (0.0, 0.5, 1.0):
        memories = window_memories(dataset, share, 256)
        windows = build_windows(dataset, encoder, {"Alex"}, 256, "train", memories)
        counts.append(windows.stats.extra.get("windows_with_memories", 0))
        again = build_windows(dataset, encoder, {"Alex"}, 256, "train", memories)
        assert [e.input_ids for e in again.examples] == [e.input_ids for e in windows.examples]
        if memories:
            memories.index.close()
    assert counts[0] == 0 < counts[1] < counts[2]


# --- chat, serve ---------------------------------------------------------------------------
def test_a_secret_told_by_sam_reaches_sam_and_never_jo_in_chat(index):
    as_jo = ChatSession.start(_parrot(index), "Alex", "Jo")
    text, memories = _said(as_jo.say(QUESTION))
    assert SECRET not in text and memories  # Jo's own chats are remembered, Sam's are not
    assert all("user3" in m.participants and "Jo" in m.who for m in memories)
    as_sam = ChatSession.start(_parrot(index), "Alex", "Sam")
    text, memories = _said(as_sam.say(QUESTION))
    assert SECRET in text  # the control: it is there to be found
    # a group with both: only chats both were in
    group = _parrot(index)
    text, memories = _said(group.stream([("Jo", "hi all"), ("Sam", QUESTION)], "Alex"))
    assert SECRET not in text and all({"user2", "user3"} <= set(m.participants)
                                      for m in memories)
    # --memory-scope all: the owner's explicit choice reads every chat
    text, _ = _said(ChatSession.start(_parrot(index, "all"), "Alex", "Jo").say(QUESTION))
    assert SECRET in text


@pytest.fixture
def served(index):
    server, url = run_in_thread(create_app(_parrot(index)))
    yield url
    server.should_exit = True


def _ask(url: str, name: str, stream: bool) -> tuple[str, list]:
    body = {"model": "doppel/Alex", "stream": stream,
            "messages": [{"role": "user", "name": name, "content": QUESTION}]}
    if not stream:
        message = httpx.post(f"{url}/v1/chat/completions", json=body).json()["choices"][0][
            "message"]
        return message["content"], message["doppel"]["memories"]
    import json

    text, memories = "", []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                text += delta.get("content", "")
                memories = (delta.get("doppel") or {}).get("memories", memories)
    return text, memories


@pytest.mark.parametrize("stream", [False, True])
def test_the_api_says_which_memories_a_reply_read_and_never_sams_to_jo(served, stream):
    text, memories = _ask(served, "Jo", stream)
    assert SECRET not in text and SECRET not in str(memories)
    assert memories and all(set(m) == {"date", "chat", "participants", "lines"}
                            for m in memories)
    assert all("Jo" in m["participants"] for m in memories)
    text, memories = _ask(served, "Sam", stream)
    assert SECRET in text and any(SECRET in t for m in memories for _, t in m["lines"])
    assert any(m["chat"] == "Sam" and m["date"].startswith("2023-") for m in memories)
