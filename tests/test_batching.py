"""Batching: packed rows never attend across windows; grouped batches waste little on padding."""

from __future__ import annotations

import pytest
import torch

from builders import write_tiny_model
from doppel.chatformat import IGNORE_INDEX
from doppel.train.data import LengthBucketSampler, PaddingCollator, WindowDataset, make_collator


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    path = write_tiny_model(tmp_path_factory.mktemp("tiny") / "m")
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa")
    model.config.use_cache = False
    return model.eval()


def test_packed_windows_do_not_attend_to_each_other(tiny):
    first = {"input_ids": list(range(10, 30)), "labels": list(range(10, 30))}
    second = {"input_ids": list(range(100, 112)), "labels": list(range(100, 112))}
    batch = make_collator("packed", pad_token_id=0)([first, second])
    assert batch["input_ids"].shape == (1, 32) and "attention_mask" not in batch
    assert batch["position_ids"][0, 20].item() == 0  # positions restart at the second window
    with torch.no_grad():
        packed = tiny(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        alone = tiny(input_ids=torch.tensor([second["input_ids"]])).logits
        shifted = tiny(input_ids=torch.tensor([first["input_ids"] + second["input_ids"]])).logits
    torch.testing.assert_close(packed[0, 20:], alone[0], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(shifted[0, 20:], alone[0], atol=1e-3)  # the check can fail
    assert batch["labels"][0, 20].item() == IGNORE_INDEX  # no loss across the seam


def test_padding_collator_masks_padding_out_of_loss_and_attention():
    batch = PaddingCollator(pad_token_id=7)(
        [{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}, {"input_ids": [4], "labels": [4]}]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 7, 7]]
    assert batch["labels"].tolist()[1] == [4, IGNORE_INDEX, IGNORE_INDEX]
    assert batch["attention_mask"].tolist()[1] == [1, 0, 0]


def test_length_bucketed_batches_pad_under_five_percent_in_a_random_order(sample_dataset):
    from doppel.chatformat import ChatEncoder
    from doppel.models import load_tokenizer, resolve_model
    from doppel.train.data import build_windows

    tokenizer = load_tokenizer(resolve_model("smollm2-135m"))
    windows = build_windows(
        sample_dataset, ChatEncoder(tokenizer), {sample_dataset.me_name}, 512, "train"
    )
    dataset = WindowDataset(windows.examples)
    lengths = [len(e.input_ids) for e in windows.examples]
    sampler = LengthBucketSampler(lengths, 8, seed=0)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths)))  # every window once an epoch
    sampler.set_epoch(1)
    assert list(sampler) != order and list(LengthBucketSampler(lengths, 8, seed=0)) == order
    real = padded = 0
    for start in range(0, len(order), 8):
        batch = [lengths[i] for i in order[start : start + 8]]
        real, padded = real + sum(batch), padded + max(batch) * len(batch)
    assert len(dataset) > 100
    assert 1 - real / padded < 0.05
