"""The training loss from logits at the labelled positions only.

A causal LM's output layer is its widest (SmolLM2: 576 -> 49,152), and most positions in a chat
window carry no loss (friends' messages, headers, padding), yet transformers computes and upcasts
logits for every position. A forward pre-hook on the output layer hands it only the hidden states
that predict a labelled token, so the model's own code (tied weights, soft-capping, PEFT wrappers,
FSDP) still runs; the loss is the same cross-entropy over far fewer rows, in less time and memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from doppel.chatformat import IGNORE_INDEX


def _predicts_label(labels):
    """Positions whose next token is labelled: where position t's logits are scored."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep


@contextmanager
def logits_where_labelled(model, labels) -> Iterator[None]:
    """Inside, `model(...)` returns logits of shape (1, labelled tokens, vocab), in row order."""
    keep = _predicts_label(labels)

    def select(_module, args):
        hidden, *rest = args
        return (hidden[keep].unsqueeze(0), *rest)

    handle = model.get_output_embeddings().register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def labelled_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy of the logits `logits_where_labelled` kept, reduced like transformers'
    ForCausalLMLoss: summed over tokens and divided by the labelled tokens of the whole
    (accumulated) batch when the Trainer counts them, else the mean."""
    import torch.nn.functional as F

    logits = outputs.logits.float().squeeze(0)
    targets = labels[:, 1:][labels[:, 1:] != IGNORE_INDEX].to(logits.device)
    if num_items_in_batch is None:
        return F.cross_entropy(logits, targets)
    return F.cross_entropy(logits, targets, reduction="sum") / num_items_in_batch
