"""Direct preference optimisation's loss, beside train/loss.py's likelihood loss.

Written here rather than taken from TRL: doppel builds and masks its own chat windows (the prompt
is `Engine.prompt_ids`, the reply `ranking.candidate_ids`: the respondent's messages and the
token that hands the floor over), and a pair's log-probability is those reply tokens alone; the
loss itself is a few lines (Rafailov et al. 2023, the sigmoid form):

    -log sigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)))

with each term the summed log-probability of the reply's tokens after the prompt, `ref` the run
the stage starts from (computed once, before any step). `nll_weight` adds the chosen reply's
mean negative log-likelihood (RPO, Pang et al. 2024), which keeps the real replies likely while
the margin grows.
"""

from __future__ import annotations

from collections.abc import Sequence


def reply_logprob(model, prompt: Sequence[int], body: Sequence[int]):
    """(summed log-probability of body after prompt, its token count): a 0-d tensor with grad."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([[*prompt, *body]], device=device)
    logits = model(input_ids=ids, use_cache=False).logits[0, len(prompt) - 1:-1].float()
    targets = ids[0, len(prompt):]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).sum(), len(body)


def dpo_loss(chosen, rejected, ref_chosen: float, ref_rejected: float, beta: float):
    """(loss, implicit reward margin) of one pair: the margin is beta times how much more the
    policy than the reference prefers chosen over rejected (0 at the start)."""
    import torch.nn.functional as F

    margin = beta * ((chosen - ref_chosen) - (rejected - ref_rejected))
    return -F.logsigmoid(margin), margin.detach()
