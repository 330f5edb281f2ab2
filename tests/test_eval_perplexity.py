"""Per-speaker perplexity uses exactly the training loss mask, and scores each token once."""

from __future__ import annotations

import math

import pytest

from builders import write_tiny_model
from doppel.chatformat import MESSAGE_SEP, ChatEncoder, group_turns
from doppel.eval.perplexity import overall, plan_windows, speaker_perplexity

CHAT = [("Sam", "Hello, Alex. How are you doing today?"), ("Alex", "heyy"), ("Alex", "lol yeah"),
        ("Sam", "What's up?"), ("Alex", "not much lol, you?"),
        ("Sam", "I am afraid I cannot make it."), ("Alex", "ok cool 🙃"), ("Alex", "wait what"),
        ("Sam", "Hey."), ("Alex", "omw")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from doppel.models import load_model, load_tokenizer

    folder = write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    tokenizer = load_tokenizer(folder)
    return load_model(folder, tokenizer).eval(), tokenizer


def test_perplexity_matches_the_models_own_loss_on_the_speakers_tokens(tiny):
    import torch

    model, tokenizer = tiny
    turns = group_turns(CHAT)
    scored = speaker_perplexity(model, tokenizer, [turns], ["Alex", "Sam"], max_length=512)
    for speaker in ("Alex", "Sam"):
        [example] = ChatEncoder(tokenizer).encode(turns, {speaker}, 512)
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([example.input_ids]),
                         labels=torch.tensor([example.labels])).loss
        assert scored[speaker].tokens == example.trained_tokens
        assert scored[speaker].perplexity == pytest.approx(math.exp(float(loss)), rel=1e-4)
    both = overall(scored)
    assert both.tokens == scored["Alex"].tokens + scored["Sam"].tokens
    assert scored["Alex"].perplexity != scored["Sam"].perplexity


def test_overlapping_windows_score_each_token_once(tiny):
    model, tokenizer = tiny
    turns = group_turns(CHAT)
    encoder = ChatEncoder(tokenizer)
    plan = plan_windows(encoder, [turns], ["Alex"], max_length=48)
    assert len(plan.windows) > 2  # the conversation really is split into overlapping windows
    expected = sum(len(tokenizer.encode(MESSAGE_SEP.join(t.messages), add_special_tokens=False)) + 1
                   for t in turns if t.speaker == "Alex")
    scored = speaker_perplexity(model, tokenizer, [turns], ["Alex"], max_length=48)
    assert scored["Alex"].tokens == expected


def test_a_speaker_without_held_out_messages_has_no_perplexity(tiny):
    model, tokenizer = tiny
    scored = speaker_perplexity(model, tokenizer, [group_turns(CHAT)], ["Alex", "Kim"], 512)
    assert scored["Kim"].tokens == 0 and scored["Kim"].perplexity is None
    assert scored["Alex"].perplexity is not None


@pytest.mark.parametrize("max_length", [512, 48])
def test_logits_only_at_scored_positions_give_the_full_paths_perplexity(tiny, max_length):
    model, tokenizer = tiny
    chats = [group_turns(CHAT), group_turns(CHAT[3:]), group_turns(CHAT[:5])]
    fast = speaker_perplexity(model, tokenizer, chats, ["Alex", "Sam"], max_length, 4096)
    full = speaker_perplexity(model, tokenizer, chats, ["Alex", "Sam"], max_length, 4096,
                              fast=False)
    for speaker in ("Alex", "Sam"):
        assert fast[speaker].tokens == full[speaker].tokens > 0
        assert fast[speaker].perplexity == pytest.approx(full[speaker].perplexity, rel=1e-4)


BF16_TOLERANCE = 0.02  # relative: bf16 weights round to 8 bits of mantissa, the sums stay fp32


def test_bf16_and_fp32_perplexities_agree_within_the_stated_tolerance(tiny):
    import copy

    import torch

    model, tokenizer = tiny
    chats = [group_turns(CHAT)]
    fp32 = speaker_perplexity(model, tokenizer, chats, ["Alex"], 512)["Alex"]
    bf16 = speaker_perplexity(copy.deepcopy(model).to(torch.bfloat16), tokenizer, chats,
                              ["Alex"], 512)["Alex"]
    assert bf16.tokens == fp32.tokens
    assert bf16.perplexity == pytest.approx(fp32.perplexity, rel=BF16_TOLERANCE)


def test_a_token_cap_scores_a_seeded_sample_of_whole_conversations(tiny):
    from doppel.eval.perplexity import pad_id, score

    model, tokenizer = tiny
    encoder = ChatEncoder(tokenizer)
    chats = [group_turns(CHAT[i:] + CHAT[:i]) for i in range(10)]  # ten conversations
    every = plan_windows(encoder, chats, ["Alex", "Sam"], 512)
    tokens = {s: sum(sum(label != -100 for label in labels) for _, labels in every.labels[s])
              for s in ("Alex", "Sam")}
    cap = tokens["Alex"] // 3
    capped = plan_windows(encoder, chats, ["Alex", "Sam"], 512, max_tokens=cap, seed=0)
    found = score(model, capped, pad_id(tokenizer))
    for speaker in ("Alex", "Sam"):
        units = set(found[speaker].by_unit)
        assert cap <= found[speaker].tokens < tokens[speaker] and 1 < len(units) < 10
        # whole conversations: the same number as scoring just those conversations
        alone = speaker_perplexity(model, tokenizer, [chats[u] for u in sorted(units)],
                                   [speaker], 512)[speaker]
        assert found[speaker].tokens == alone.tokens
        assert found[speaker].perplexity == pytest.approx(alone.perplexity, rel=1e-5)
    again = plan_windows(encoder, chats, ["Alex", "Sam"], 512, max_tokens=cap, seed=0)
    assert again.units == capped.units
    other = plan_windows(encoder, chats, ["Alex", "Sam"], 512, max_tokens=cap, seed=1)
    assert other.units != capped.units
