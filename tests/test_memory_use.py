"""Memory where the twin speaks and where it learns: a real index over a small dataset in which
Sam tells Alex a secret alone. Training windows read only the past of their own scope; chat,
serve and bot give Sam's memories to Sam and never to Jo (a "parrot" backend replies with the
memories it was given, so what is generated is checked as well as what is retrieved)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest

from builders import run_cli
from doppel.chatformat import ChatEncoder, group_turns
from doppel.data.dataset import load_dataset
from doppel.data.people import People
from doppel.errors import DoppelError
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


def _ask(url: str, name: str, stream: bool, with_warnings: bool = False) -> tuple:
    """(reply text, doppel.memories[, doppel.warnings]) for QUESTION asked as `name`."""
    body = {"model": "doppel/Alex", "stream": stream,
            "messages": [{"role": "user", "name": name, "content": QUESTION}]}
    if not stream:
        message = httpx.post(f"{url}/v1/chat/completions", json=body).json()["choices"][0][
            "message"]
        found = message["content"], message["doppel"]["memories"]
        return (*found, message["doppel"].get("warnings", [])) if with_warnings else found
    import json

    text, memories, warnings = "", [], []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                text += delta.get("content", "")
                memories = (delta.get("doppel") or {}).get("memories", memories)
                warnings = (delta.get("doppel") or {}).get("warnings", warnings)
    return (text, memories, warnings) if with_warnings else (text, memories)


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


# --- naming people: one rule, and a name that places nobody is said ---------------------------
@pytest.fixture(scope="module")
def carter(tmp_path_factory):
    """The memory dataset with Sam labelled "Sam Carter" (same id, user2), indexed."""
    from doppel.memory import build_index, open_index
    from memory_builders import write_memory_dataset

    path = write_memory_dataset(tmp_path_factory.mktemp("carter") / "dataset",
                                labels={"user2": "Sam Carter"})
    build_index(path, progress=False)
    opened = open_index(path, build_if_missing=False)
    yield opened
    opened.close()


def test_a_first_name_typed_in_chat_reads_the_full_named_friends_memories(carter):
    session = ChatSession.start(_parrot(carter), "Alex", "Sam")
    assert session.me == "Sam Carter"  # --me Sam is the one Sam of the data
    text, memories = _said(session.say(QUESTION))
    assert SECRET in text and all("user2" in m.participants for m in memories)
    assert session.command("/me jo") == "you are Jo; the model plays Alex"
    with pytest.raises(DoppelError, match=r"--me 'Samantha' matches nobody in the data; known: "
                                          r"Alex, Jo, Sam Carter"):
        ChatSession.start(_parrot(carter), "Alex", "Samantha")
    with pytest.raises(DoppelError, match="/me 'Bob' matches nobody"):
        session.command("/me Bob")
    # --as takes a first name too; with --memory-scope all any name is fine (no scope to place)
    assert ChatSession.start(_parrot(carter), "alex", "Sam").persona == "Alex"
    assert ChatSession.start(_parrot(carter, "all"), "Alex", "Bob").me == "Bob"


def test_doppel_chat_me_sam_on_the_command_line(carter, tmp_path, monkeypatch, capsys):
    from doppel import engines
    from doppel.infer.recall import open_recall
    from doppel.runs import RunInfo

    def load(load_options, memory, say):  # the real memory options, a parrot for the model
        parrot = Parrot(["Alex", "Jo", "Sam Carter"])
        parrot.recall, note = open_recall(memory, RunInfo(base_model="parrot"))
        say(note)
        return parrot

    monkeypatch.setattr(engines, "load_engine", load)
    script = tmp_path / "script.txt"
    script.write_text(QUESTION + "\n", encoding="utf-8")
    data = carter.path.parent
    code, out, err = run_cli(["chat", "RUN", "--data", data, "--me", "Sam", "--script", script],
                             monkeypatch, capsys)
    assert code == 0, err
    assert out.startswith(f"Sam Carter: {QUESTION}") and SECRET in out
    code, out, err = run_cli(["chat", "RUN", "--data", data, "--me", "Samantha", "--script",
                              script], monkeypatch, capsys)
    assert code == 2 and "--me 'Samantha' matches nobody in the data" in err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err and SECRET not in out


def test_a_first_name_in_the_api_reads_the_full_named_friends_memories(carter):
    server, url = run_in_thread(create_app(_parrot(carter)))
    try:
        for stream in (False, True):
            text, memories, warnings = _ask(url, "Sam", stream, with_warnings=True)
            assert SECRET in text and warnings == [] and memories
            text, memories, warnings = _ask(url, "Samantha", stream, with_warnings=True)
            assert SECRET not in text and memories == []
            assert warnings == ["name 'Samantha' matches nobody in the data; known: Alex, Jo, "
                                "Sam Carter"]
    finally:
        server.should_exit = True


def test_the_api_scope_is_everyone_the_request_names(served):
    """Jo spoke once, long before Sam's question: the request is still a group with Jo in it."""
    messages = [{"role": "user", "name": "Jo", "content": "hi all"}]
    messages += [{"role": "user", "name": "Sam", "content": f"random chatter {n}"}
                 for n in range(40)]
    messages += [{"role": "user", "name": "Sam", "content": QUESTION}]
    body = {"model": "doppel/Alex", "messages": messages}
    message = httpx.post(f"{served}/v1/chat/completions", json=body).json()["choices"][0][
        "message"]
    assert SECRET not in message["content"] and SECRET not in str(message["doppel"])
    assert all({"Sam", "Jo"} <= set(m["participants"]) for m in message["doppel"]["memories"])
