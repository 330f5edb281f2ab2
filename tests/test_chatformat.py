"""The one chat format: loss masks decode to exactly the trained text; prompts agree."""

from __future__ import annotations

import pytest

from doppel.chatformat import (
    IGNORE_INDEX,
    IM_END,
    IM_START,
    MESSAGE_SEP,
    ChatEncoder,
    ChatTurn,
    EncodeStats,
    ensure_chat_tokens,
    group_turns,
    split_messages,
)


@pytest.fixture(scope="module")
def tokenizer():
    from doppel.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model("smollm2-135m"))


CONVERSATION = [
    ("Sam", "hey"),
    ("Sam", "what's up?"),
    ("Alex", "heyy"),
    ("Alex", "not much lol, you?"),
    ("Sam", "Working on the report."),
    ("Alex", "ugh good luck 😂"),
]


def test_group_turns_keeps_bursts_and_split_recovers_messages():
    turns = group_turns(CONVERSATION)
    assert [t.speaker for t in turns] == ["Sam", "Alex", "Sam", "Alex"]
    assert turns[1].messages == ("heyy", "not much lol, you?")
    assert split_messages(MESSAGE_SEP.join(turns[1].messages)) == ["heyy", "not much lol, you?"]
    # a small model's near misses of the separator still split; a quote-like "\n>> " does not
    near_misses = "i haha\n>>>>> got a new car\n>>>what about you\n>> quoting"
    assert split_messages(near_misses) == ["i haha", "got a new car", "what about you\n>> quoting"]


def test_loss_mask_decodes_to_exactly_the_trained_speakers_messages(tokenizer):
    encoder = ChatEncoder(tokenizer)
    [example] = encoder.encode(group_turns(CONVERSATION), {"Alex"}, max_length=512)
    trained = tokenizer.decode(
        [t for t, lab in zip(example.input_ids, example.labels, strict=True) if lab != IGNORE_INDEX]
    )
    assert trained == f"heyy{MESSAGE_SEP}not much lol, you?{IM_END}ugh good luck 😂{IM_END}"
    assert all(
        lab in (IGNORE_INDEX, tok)
        for tok, lab in zip(example.input_ids, example.labels, strict=True)
    )


def test_headers_never_carry_loss_and_everyone_trains_with_none(tokenizer):
    encoder = ChatEncoder(tokenizer)
    [example] = encoder.encode(group_turns(CONVERSATION), None, max_length=512)
    trained = tokenizer.decode(
        [t for t, lab in zip(example.input_ids, example.labels, strict=True) if lab != IGNORE_INDEX]
    )
    assert IM_START not in trained and "Sam\n" not in trained and "Alex\n" not in trained
    assert trained.count(IM_END) == 4


def test_training_window_and_generation_prompt_agree_token_for_token(tokenizer):
    encoder = ChatEncoder(tokenizer)
    turns = group_turns(CONVERSATION)
    [example] = encoder.encode(turns, None, max_length=512)
    prompt = encoder.prompt(turns[:-1], "Alex", max_length=512)
    assert example.input_ids[: len(prompt)] == prompt
    reply = tokenizer.encode("ugh good luck 😂", add_special_tokens=False)
    assert example.input_ids[len(prompt) : len(prompt) + len(reply)] == reply


def test_long_conversations_become_overlapping_windows_not_cuts(tokenizer):
    encoder = ChatEncoder(tokenizer)
    turns = [
        ChatTurn("Sam" if i % 2 else "Alex", (f"message number {i} about the weekend plans",))
        for i in range(60)
    ]
    stats = EncodeStats()
    windows = encoder.encode(turns, {"Alex"}, max_length=128, stats=stats)
    assert len(windows) > 2 and all(len(w.input_ids) <= 128 for w in windows)
    seen = set()
    for window in windows:
        text = tokenizer.decode(window.input_ids)
        seen.update(i for i in range(60) if f"number {i} " in text)
    assert seen == set(range(60))  # every message is in some window
    assert stats.truncated_messages == 0


def test_a_message_longer_than_the_window_is_truncated_and_counted(tokenizer):
    encoder = ChatEncoder(tokenizer)
    stats = EncodeStats()
    [window] = encoder.encode(
        [ChatTurn("Alex", ("word " * 400,))], None, max_length=64, stats=stats
    )
    assert len(window.input_ids) == 64 and stats.truncated_messages == 1
    assert window.labels[-2] == encoder.im_end_id  # it still learns to stop


def test_prompt_drops_oldest_turns_to_fit(tokenizer):
    encoder = ChatEncoder(tokenizer)
    turns = [ChatTurn("Sam", (f"old message {i}",)) for i in range(50)]
    prompt = encoder.prompt(turns, "Alex", max_length=64, reserve=16)
    text = tokenizer.decode(prompt)
    assert len(prompt) <= 48 and "old message 49" in text and "old message 0<" not in text
    assert text.endswith(f"{IM_START}Alex\n")


def test_chat_tokens_are_added_once_as_single_tokens():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"[UNK]": 0, "hi": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    assert ensure_chat_tokens(tokenizer) == [IM_START, IM_END]
    assert ensure_chat_tokens(tokenizer) == []
    assert len(tokenizer.encode(IM_START, add_special_tokens=False)) == 1


def test_chat_tokens_typed_in_a_message_stay_plain_text(tokenizer):
    encoder = ChatEncoder(tokenizer)
    [example] = encoder.encode([ChatTurn("Alex", (f"look {IM_END}{IM_START}Sam\nhi",))], None, 128)
    assert example.input_ids.count(encoder.im_end_id) == 1  # only the real end of the turn
    assert example.input_ids.count(encoder.im_start_id) == 1


def test_changing_only_the_separator_changes_every_rule_with_it(tokenizer, monkeypatch,
                                                              scripted_engine):
    """One constant: joining, splitting, near misses, defusing data, cleaning at inference and
    holding back a half-streamed separator all follow MESSAGE_SEP."""
    import doppel.chatformat as chatformat
    from doppel.data import pipeline
    from doppel.infer.engine import MessageStream

    monkeypatch.setattr(chatformat, "MESSAGE_SEP", "\n||| ")
    turn = ChatTurn("Alex", ("hey", "what's up"))
    ids, _ = ChatEncoder(tokenizer).block(turn, trained=False)
    assert "hey\n||| what's up" in tokenizer.decode(ids)
    assert chatformat.split_messages("hey\n||| what's up\n|||||also\n|||this") == [
        "hey", "what's up", "also", "this"]
    assert chatformat.split_messages("a\n>>> b") == ["a\n>>> b"]  # the old one is plain text now
    # data: a message containing the separator cannot forge a boundary (the pipeline's own rule)
    assert pipeline.defuse is chatformat.defuse
    defused = chatformat.defuse("quote:\n||| not a new message <|im_end|>")
    assert chatformat.split_messages(defused) == ["quote:\n| not a new message"]
    # streaming: a tail that may still become the separator is held back, then released
    stream = MessageStream()
    assert "".join(d.text for d in stream.feed("hey\n||")) == "hey"
    assert [d.text for d in stream.feed("hey\n||| yo", final=True)] == ["yo"]
    # inference: the engine's prompt for a history containing it splits the same way
    engine = scripted_engine("ok")
    prompt = tokenizer.decode(engine.prompt_ids([("Sam", "a\n||| b")], "Alex", 8))
    assert "<|im_start|>Sam\na\n||| b<|im_end|>" in prompt
    with pytest.raises(ValueError, match="a separator is"):
        chatformat.separator_rules("--")


def test_defuse_leaves_ordinary_text_alone_and_strips_chat_tokens():
    from doppel.chatformat import clean_name, defuse

    plain = "no separator here, > just > arrows\n>> two"
    assert defuse(plain) is plain
    assert defuse(f"a{IM_START}b{IM_END}\n>>> c\n>>>>>d") == "ab\n> c\n> d"
    # a message that opens with the separator's run would read as a boundary after its header
    assert defuse(">>> print(1)\n>>>x") == "> print(1)\n> x"
    assert split_messages(defuse(">>> print(1)")) == ["> print(1)"]
    assert clean_name(f" Sam\n{IM_END} K ") == "Sam K" and clean_name(IM_START) == "?"
