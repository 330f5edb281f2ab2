"""The ranking test: a model that memorised the held-out turns ranks them first; a random one
ranks them about as often as chance; distractors repeat per seed."""

from __future__ import annotations

import pytest

from builders import write_tiny_model
from doppel.chatformat import group_turns
from doppel.eval.contexts import Context
from doppel.eval.generate import ranked_replies, reply_all
from doppel.eval.options import EvalOptions
from doppel.eval.ranking import build_items, candidate_ids, chance, rank_of_truth

TOPICS = ["pizza tonight", "the train was late", "my cat is sick", "exam on friday",
          "new phone arrived", "rain all day", "concert tickets", "lost my keys",
          "gym at six", "movie was boring", "coffee machine broke", "flight delayed"]
REPLIES = ["omg yes pepperoni", "ugh again??", "poor kitty, vet?", "you got this!!",
           "which one lol", "stay inside then", "wait which band", "check the fridge haha",
           "too early man", "told u so", "tea it is", "how long??"]


def _contexts() -> tuple[list[Context], list]:
    contexts, turns = [], []
    for i, (topic, reply) in enumerate(zip(TOPICS, REPLIES, strict=True)):
        speaker = "Alex" if i % 2 == 0 else "Sam"
        friend = "Sam" if speaker == "Alex" else "Alex"
        contexts.append(Context(f"c{i}", ((friend, f"so, {topic}"),), speaker, (reply,)))
        turns += [(f"c{i}", friend, (f"so, {topic}",)), (f"c{i}", speaker, (reply,))]
    return contexts, turns


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from doppel.models import load_tokenizer

    folder = write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    tokenizer = load_tokenizer(folder)
    return folder, tokenizer


def _load(tiny):
    from doppel.models import load_model

    folder, tokenizer = tiny
    return load_model(folder, tokenizer).eval()


def _engine(model, tokenizer):
    from doppel.infer.engine import Engine
    from doppel.runs import Loaded, RunInfo

    return Engine(Loaded(model, tokenizer, RunInfo("tiny", max_length=128)))


def _scores(model, tokenizer, contexts, items, options=None) -> list[list[float]]:
    options = options or EvalOptions(sampling={"max_new_tokens": 1})
    return ranked_replies(_engine(model, tokenizer), contexts, items, options).scores


def _window(encoder, context, reply, max_length: int) -> tuple[list[int], list[bool]]:
    """One candidate's whole window (prompt, then the reply) and the marks of its scored ids."""
    from doppel.chatformat import group_turns

    body = candidate_ids(encoder, context.respondent, reply, max_length)
    prompt = encoder.prompt(group_turns(context.history), context.respondent, max_length,
                            reserve=len(body))
    return prompt + body, [False] * len(prompt) + [True] * len(body)


def test_shared_prompt_scores_equal_scoring_each_window_whole(tiny):
    """Candidates scored together after their context's prompt (packed in one row, the prompt's
    KV cache shared with the reply) get the same mean log-likelihood as running each candidate's
    whole window (the perplexity code's path)."""
    from doppel.chatformat import ChatEncoder
    from doppel.eval.perplexity import pad_id, token_losses
    from doppel.eval.ranking import CANDIDATE_TOKENS

    model, tokenizer = _load(tiny), tiny[1]
    contexts, turns = _contexts()
    items = build_items(contexts, turns, candidates=4, seed=1)[:3]
    shared = _scores(model, tokenizer, contexts, items)
    encoder = ChatEncoder(tokenizer)
    for item, got in zip(items, shared, strict=True):
        context = contexts[item.context]
        prompt = encoder.prompt(group_turns(context.history), context.respondent, 128,
                                reserve=CANDIDATE_TOKENS)
        for reply, value in zip(item.candidates, got, strict=True):
            body = candidate_ids(encoder, context.respondent, reply, 128)
            marks = [False] * len(prompt) + [True] * len(body)
            (losses,) = token_losses(model, [prompt + body], pad_id(tokenizer), 4096, None, [marks])
            whole = -sum(loss for loss, m in zip(losses, marks, strict=True) if m) / len(body)
            assert value == pytest.approx(whole, rel=1e-4, abs=1e-5)


def test_replies_from_the_shared_prompts_equal_replies_generated_alone(tiny):
    """Scoring the candidates first leaves each prompt's cache as it was: the replies are the
    ones eval's plain batched path (`reply_all`) samples with the same seeds."""
    model, tokenizer = _load(tiny), tiny[1]
    contexts, turns = _contexts()
    items = build_items(contexts, turns, candidates=4, seed=1)
    options = EvalOptions(batch_size=3, sampling={"max_new_tokens": 12, "seed": 5})
    engine = _engine(model, tokenizer)
    found = ranked_replies(engine, contexts, items, options)
    alone = reply_all(engine, [c.history for c in contexts], [c.respondent for c in contexts],
                      options)
    assert len(found.scores) == len(items) and all(len(s) == 4 for s in found.scores)
    assert found.replies == alone and any(found.replies)


def _overfit(model, tokenizer, contexts, steps: int = 100):
    """Train the tiny model on the true replies after their contexts until it has them by heart
    (all contexts in one right-padded batch a step: one forward and backward, not twelve)."""
    import torch

    from doppel.chatformat import ChatEncoder

    encoder = ChatEncoder(tokenizer)
    examples = [_window(encoder, c, c.reply, 128) for c in contexts]
    width = max(len(ids) for ids, _ in examples)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in examples])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in examples])
    labels = torch.tensor([[i if m else -100 for i, m in zip(ids, marks, strict=True)]
                           + [-100] * (width - len(ids)) for ids, marks in examples])
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def _hits(model, tokenizer, contexts, items) -> tuple[float, float]:
    ranks = [rank_of_truth(s) for s in _scores(model, tokenizer, contexts, items)]
    return sum(r == 1 for r in ranks) / len(ranks), sum(1 / r for r in ranks) / len(ranks)


def test_distractors_are_real_turns_from_other_conversations_and_repeat_per_seed():
    contexts, turns = _contexts()
    items = build_items(contexts, turns, candidates=5, seed=0)
    assert len(items) == len(contexts)
    for item in items:
        context = contexts[item.context]
        assert item.candidates[0] == context.reply and len(set(item.candidates)) == 5
        own = {m for c, _, m in turns if c == context.conversation_id}
        assert not own & set(item.candidates[1:])
    assert items == build_items(contexts, turns, candidates=5, seed=0)
    assert items != build_items(contexts, turns, candidates=5, seed=1)
    # a speaker with too few other turns to draw from gets no item rather than a short one
    assert build_items(contexts, turns, candidates=len(turns) + 1, seed=0) == []


@pytest.mark.slow  # 100 training steps of the tiny model (50 already memorise every reply)
def test_a_memorising_model_ranks_every_true_reply_first_and_a_random_one_about_chance(tiny):
    _, tokenizer = tiny
    contexts, turns = _contexts()
    items = build_items(contexts, turns, candidates=5, seed=0)
    random_hits, _ = _hits(_load(tiny), tokenizer, contexts, items)
    assert random_hits <= chance(5)[0] + 0.35  # chance is 0.2 over 12 contexts
    model = _overfit(_load(tiny), tokenizer, contexts)
    hits, mrr = _hits(model, tokenizer, contexts, items)
    assert hits == 1.0 and mrr == 1.0


def test_chance_levels():
    assert chance(10)[0] == pytest.approx(0.1)
    assert chance(2) == pytest.approx((0.5, 0.75))
    assert rank_of_truth([-1.0, -2.0, -0.5]) == 2 and rank_of_truth([-1.0, -1.0]) == 2


def test_a_long_candidate_is_scored_on_its_first_tokens(tiny):
    from doppel.chatformat import ChatEncoder, ChatTurn
    from doppel.eval.ranking import CANDIDATE_TOKENS

    encoder = ChatEncoder(tiny[1])
    long_reply = ("word " * 300,)
    body = candidate_ids(encoder, "Alex", long_reply, 2048)
    assert len(body) == CANDIDATE_TOKENS
    whole, _ = encoder.block(ChatTurn("Alex", long_reply), trained=True)
    head = len(encoder.header("Alex"))
    assert body == whole[head:head + CANDIDATE_TOKENS]
    assert len(candidate_ids(encoder, "Alex", ("ok",), 2048)) < CANDIDATE_TOKENS  # short ones whole
