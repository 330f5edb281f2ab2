"""The labelled-logits loss equals transformers' own loss and gradients, on padded and packed
batches, through PEFT, and for a model that post-processes its logits (Gemma 2 soft-capping)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from doppel.chatformat import IGNORE_INDEX  # noqa: E402
from doppel.train.loss import labelled_loss, logits_where_labelled  # noqa: E402

VOCAB = 97


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config)


def _gemma2():
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    config = Gemma2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          head_dim=8, final_logit_softcapping=5.0)
    return Gemma2ForCausalLM(config)


def _lora(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0,
                                            init_lora_weights=False))


def _windows() -> list[dict[str, list[int]]]:
    """Three windows of different lengths; each labels only some of its tokens."""
    generator = torch.Generator().manual_seed(1)
    windows = []
    for length, labelled in ((11, range(3, 7)), (7, range(5, 7)), (9, (2, 4, 5, 8))):
        ids = torch.randint(0, VOCAB, (length,), generator=generator).tolist()
        labels = [ids[i] if i in labelled else IGNORE_INDEX for i in range(length)]
        windows.append({"input_ids": ids, "labels": labels})
    return windows


def _padded():
    from doppel.train.data import PaddingCollator

    return PaddingCollator(pad_token_id=0)(_windows())


def _packed():
    from transformers import DataCollatorWithFlattening

    collate = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
    return collate(_windows())


def _loss_and_grads(model, batch, selective: bool, num_items=None):
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if selective:
        with logits_where_labelled(model, batch["labels"]):
            outputs = model(**inputs)
        loss = labelled_loss(outputs, batch["labels"], num_items)
    else:
        kwargs = {"num_items_in_batch": num_items} if num_items is not None else {}
        outputs = model(**inputs, labels=batch["labels"], **kwargs)
        loss = outputs.loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, outputs.logits.shape


@pytest.mark.parametrize("build", [_llama, _gemma2, lambda: _lora(_llama())],
                         ids=["llama", "gemma2-softcap", "llama-lora"])
@pytest.mark.parametrize("collate", [_padded, _packed], ids=["padded", "packed"])
@pytest.mark.parametrize("num_items", [None, 13])
def test_labelled_logits_give_transformers_loss_and_gradients(build, collate, num_items):
    model, batch = build(), collate()
    full_loss, full_grads, full_shape = _loss_and_grads(model, batch, False, num_items)
    loss, grads, shape = _loss_and_grads(model, batch, True, num_items)

    scored = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert shape == (1, scored, VOCAB)  # only the positions that predict a label
    assert scored < full_shape[0] * full_shape[1] / 2
    torch.testing.assert_close(loss, full_loss)
    assert grads.keys() == full_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, full_grads[name], msg=name)


def test_the_hook_is_removed_after_the_block():
    model, batch = _llama(), _padded()
    with logits_where_labelled(model, batch["labels"]):
        pass
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert logits.shape == (*batch["input_ids"].shape, VOCAB)


def test_doppel_trainer_scores_only_labelled_positions(tmp_path):
    from transformers import TrainingArguments

    from doppel.train.hf_trainer import _trainer_class

    model, batch = _llama(), _padded()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = _trainer_class("grouped")(model=model, args=args)
    loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)

    scored = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert outputs.logits.shape == (1, scored, VOCAB)
    torch.testing.assert_close(loss, model(**batch).loss)
