"""`doppel train DATA --prefer --from RUN -o RUN2`: DPO from the run's own replies to the user's
real ones moves a tiny run towards the real replies on those pairs, writes a run folder every
command loads, takes friends' votes from the run's own blind test only, and refuses bad input in
one line with nothing half-written."""

from __future__ import annotations

import json
import shutil

import pytest

from builders import run_cli, write_dataset, write_tiny_model
from conftest import write_adapter_run
from doppel.blindtest.store import BlindStore
from doppel.errors import DoppelError
from doppel.runs import ADAPTER_DIR, RUN_INFO, load_run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefer")
    data = write_dataset(root / "data", conversations=30)
    base = write_tiny_model(root / "base")
    run = write_adapter_run(root / "run", base, data, max_length=128)
    return root, data, base, run


def _one_line(code: int, err: str, words: str) -> None:
    assert code == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    assert words in err


def _self_play(run, dataset, settings, max_length: int = 512):
    """The stage's self-play pairs as ids, rebuilt the way it builds them (same seed)."""
    from doppel.data.dataset import load_dataset
    from doppel.infer.engine import Engine
    from doppel.infer.sampling import SamplingParams
    from doppel.runs import read_run_info
    from doppel.train.prefer import Pair, encode, load_policy, self_play_contexts

    contexts = self_play_contexts(load_dataset(dataset), settings)
    start = load_policy(run, read_run_info(run))
    engine = Engine(start, max_length=max_length)
    start.model.eval()
    replies = engine.reply_many([c.history for c in contexts], [c.respondent for c in contexts],
                                SamplingParams(seed=0, max_new_tokens=settings.max_new_tokens))
    pairs = [Pair(c.history, c.respondent, c.reply, tuple(r), "self-play")
             for c, r in zip(contexts, replies, strict=True)]
    return encode(engine, pairs, max_length)


@pytest.mark.slow
def test_the_stage_moves_a_run_towards_the_real_replies(setup, monkeypatch, capsys):
    from doppel.runs import read_run_info
    from doppel.train.config import PreferConfig, load_config
    from doppel.train.prefer import _reference, load_policy

    root, data, _, run = setup
    out = root / "run2"
    # the stage's flags: its block's own (--prefer-*), and the training flags it reads as its
    # own (--learning-rate) or as they are (--max-steps cuts the 2 epochs' 8 steps to 6)
    code, stdout, err = run_cli(["train", str(data), "--prefer", "--from", str(run), "-o",
                                 str(out), "--prefer-pairs", "16", "--prefer-beta", "0.2",
                                 "--learning-rate", "1e-4", "--max-steps", "6"],
                                monkeypatch, capsys)
    assert code == 0, err
    assert f"next: doppel eval {out} {run}" in stdout
    assert "DPO on 16 pairs (0 from votes), 2 epochs, 6 steps" in stdout
    assert "step 6/6: loss " in stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "step" in r]
    assert len(steps) == 6 and steps[0]["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    summary = rows[-1]["summary"]
    assert summary["method"] == "dpo" and summary["self_play_pairs"] == 16
    assert summary["steps"] == 6 and summary["processes"] == 1
    info = json.loads((out / "prefer.json").read_text())
    assert info["from"] == str(run.resolve())
    assert (info["settings"]["pairs"], info["settings"]["beta"],
            info["settings"]["learning_rate"], info["settings"]["max_steps"]) == (
        16, 0.2, 1e-4, 6)
    # the new run's recipe holds the block it was made with (a next round reads it)
    assert load_config(str(out / "recipe.yaml"), {}).prefer == PreferConfig(
        pairs=16, beta=0.2, learning_rate=1e-4)
    # the same pairs, scored by the starting run and by the new one: the real reply gained on
    # the run's own reply (what DPO is for), on most pairs
    encoded = _self_play(run, data, PreferConfig(pairs=16))
    before = _reference(load_policy(run, read_run_info(run)).model, encoded)
    after = _reference(load_policy(out, read_run_info(out)).model, encoded)
    gains = [(a[0] - a[1]) - (b[0] - b[1]) for a, b in zip(after, before, strict=True)]
    assert sum(gains) / len(gains) > 0 and sum(g > 0 for g in gains) > len(gains) / 2
    # a run folder every command loads: the new adapter on the same base
    loaded = load_run(out, merge=True)
    assert loaded.info.trained_speakers == read_run_info(run).trained_speakers
    capsys.readouterr()  # the loads' progress bars
    code, _, err = run_cli(["train", str(data), "--prefer", "--from", str(run), "-o", str(out)],
                           monkeypatch, capsys)
    _one_line(code, err, "already exists")


def _spotted(run, dataset) -> float:
    """The automatic blind test on the run's replies at the user's held-out turns: the share of
    pairs where the discriminator picks the real reply (0.5: indistinguishable)."""
    from doppel.data.dataset import load_dataset
    from doppel.eval.contexts import build_contexts
    from doppel.eval.discriminator import judge
    from doppel.infer.engine import Engine
    from doppel.infer.sampling import SamplingParams

    data = load_dataset(dataset)
    held = build_contexts(data, [data.me_name], 64, 8, seed=0)
    engine = Engine(load_run(run), max_length=256)
    replies = engine.reply_many([c.history for c in held], [c.respondent for c in held],
                                SamplingParams(seed=0, max_new_tokens=16))
    judged = judge([c.reply for c in held], [tuple(r) for r in replies],
                   [c.conversation_id for c in held], seed=0)
    return sum(judged.picks) / len(judged.picks)


@pytest.mark.slow
def test_a_preference_stage_makes_a_bad_twin_harder_to_spot(tiny_model, tmp_path, monkeypatch,
                                                             capsys):
    """Issue 30's done-when: a tiny run whose replies are noise (a random model; its adapter
    reaches the output layer, so a few steps can move its next-token odds) is spotted by the
    discriminator at every held-out turn; the stage (DPO with the RPO term, from a recipe's
    prefer: block) moves it towards Alex's short lowercase replies, and the discriminator picks
    the real reply far less often."""
    data = write_dataset(tmp_path / "data", conversations=80)
    run = write_adapter_run(tmp_path / "run", tiny_model, data, max_length=128,
                            targets=["q_proj", "v_proj", "lm_head"])
    before = _spotted(run, data)
    recipe = tmp_path / "prefer.yaml"
    recipe.write_text("max_length: 256\nprefer:\n  pairs: 32\n  learning_rate: 3.0e-2\n"
                      "  epochs: 8\n  nll_weight: 1.0\n  max_new_tokens: 16\n")
    capsys.readouterr()
    code, stdout, err = run_cli(["train", str(data), "--prefer", "--from", str(run), "-o",
                                 str(tmp_path / "run2"), "--recipe", str(recipe)],
                                monkeypatch, capsys)
    assert code == 0, err
    assert "DPO on 32 pairs (0 from votes), 8 epochs, 64 steps" in stdout
    after = _spotted(tmp_path / "run2", data)
    assert before >= 0.95 and after <= before - 0.2, (before, after)


def test_bad_input_is_one_line_and_writes_nothing(setup, monkeypatch, capsys, tmp_path):
    _, data, base, run = setup
    out = tmp_path / "out"

    def refused(args: list[str], words: str) -> None:
        code, _, err = run_cli(["train", str(data), *args, "-o", str(out)], monkeypatch, capsys)
        _one_line(code, err, words)
        assert not out.exists()

    refused(["--prefer"], "--prefer needs --from RUN_DIR")
    refused(["--from", str(run)], "--from goes with --prefer")
    refused(["--prefer-beta", "0.3"], "--prefer-beta goes with --prefer")
    # a flag that shapes a likelihood run, not this stage: refused, never ignored
    refused(["--prefer", "--from", str(run), "--lora-r", "8"], "--lora-r does not apply to "
            "--prefer")
    refused(["--prefer", "--from", str(run), "--model", "x"], "--model does not apply")
    refused(["--prefer", "--from", str(run), "--prefer-beta", "0"], "--prefer-beta 0.0")
    refused(["--prefer", "--from", str(run), "--epochs", "1.5"], "--epochs 1.5")
    refused(["--prefer", "--from", str(run), "--prefer-nll-weight", "-1"],
            "--prefer-nll-weight -1.0")
    refused(["--prefer", "--from", str(run), "--prefer-rounds", "0"], "--prefer-rounds 0")
    # a run without an adapter (a full fine-tune's folder)
    full = shutil.copytree(run, tmp_path / "full")
    shutil.rmtree(full / ADAPTER_DIR)
    (full / "model").mkdir()
    refused(["--prefer", "--from", str(full)], "has no LoRA adapter")
    # a votes file from another run's blind test
    votes = tmp_path / "other.blindtest.sqlite"
    with BlindStore(votes) as store:
        store.set_meta({"run": str(tmp_path / "other"), "persona": "Alex"})
    refused(["--prefer", "--from", str(run), "--votes", str(votes)],
            f"is the blind test of run {tmp_path / 'other'}")
    refused(["--prefer", "--from", str(run), "--votes", str(tmp_path / "none.sqlite")],
            "no votes file at")
    # this run's test, made on another dataset
    with BlindStore(votes) as store:
        store.set_meta({"run": str(run.resolve()), "dataset_fingerprint": "another"})
    refused(["--prefer", "--from", str(run), "--votes", str(votes)],
            "was made on another dataset")
    # a run trained on another dataset
    other = write_dataset(tmp_path / "other-data", conversations=30, seed=1)
    code, _, err = run_cli(["train", str(other), "--prefer", "--from", str(run), "-o", str(out)],
                           monkeypatch, capsys)
    _one_line(code, err, "was trained on other data")
    # a dataset with too few of the user's turns for pairs
    small = write_dataset(tmp_path / "small", conversations=1)
    small_run = write_adapter_run(tmp_path / "small-run", base, small, max_length=128)
    capsys.readouterr()  # its load's progress bars
    code, _, err = run_cli(["train", str(small), "--prefer", "--from", str(small_run), "-o",
                            str(out)], monkeypatch, capsys)
    _one_line(code, err, "the preference stage needs at least 8 pairs")
    assert not out.exists()
    # a run that does not play the user
    info = json.loads((run / RUN_INFO).read_text())
    sam = shutil.copytree(run, tmp_path / "sam")
    (sam / RUN_INFO).write_text(json.dumps({**info, "trained_speakers": ["Sam"]}))
    refused(["--prefer", "--from", str(sam)], "was not trained to play you (Alex)")


def test_a_recipes_prefer_block_fills_in_under_the_flags(tmp_path):
    from doppel.train.config import PreferConfig, load_config

    recipe = tmp_path / "gpu.yaml"
    recipe.write_text("model: smollm2-135m\nprefer:\n  pairs: 256\n  beta: 0.3\n"
                      "  learning_rate: 1.0e-6\n  epochs: 1\n")
    found = load_config(str(recipe), {"prefer": {"beta": 0.05}}).prefer
    assert found == PreferConfig(pairs=256, beta=0.05, learning_rate=1e-6, epochs=1)
    assert load_config("cpu-demo", {}).prefer == PreferConfig()  # no block: the defaults
    recipe.write_text("prefer:\n  rate: 1\n")
    with pytest.raises(DoppelError, match=r"unknown key 'prefer.rate' in .*gpu.yaml"):
        load_config(str(recipe), {})


def test_votes_that_spotted_the_twin_become_pairs_and_fooled_ones_do_not(setup, tmp_path):
    from doppel.blindtest.store import default_store_path
    from doppel.train.prefer import vote_pairs

    _, _, _, run = setup
    path = default_store_path(run)
    path.unlink(missing_ok=True)
    with BlindStore(path) as store:
        store.set_meta({"run": str(run.resolve()), "persona": "Alex"})
        spotted = store.add_item("c1", 3, [("Sam", "Hey.")], [["Hello! How can I help?"],
                                                              ["heyy"]], ["twin", "real"])
        fooled = store.add_item("c2", 5, [("Sam", "What's up?")], [["lol yeah"], ["omw"]],
                                ["real", "twin"])
        store.answer("Sam", spotted, 1, [None, None], "web")  # picked the real one
        store.answer("Jo", spotted, 1, [None, None], "web")  # the same item: one pair
        store.answer("Sam", fooled, 1, [None, None], "web")  # picked the twin's
    try:
        pairs, fooled_count = vote_pairs(path, run)
    finally:
        path.unlink()
    assert fooled_count == 1 and len(pairs) == 1
    assert (pairs[0].history, pairs[0].respondent, pairs[0].chosen, pairs[0].rejected) == (
        (("Sam", "Hey."),), "Alex", ("heyy",), ("Hello! How can I help?",))
