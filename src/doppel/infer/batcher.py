"""Continuous batching: requests join the running batch at a decode step and leave when done.

One left-padded KV cache holds every running request. Newcomers are prefilled together and merged in
(the narrower side gets left padding); a finished or cancelled one is cut out and the padding
every row shares is trimmed. Each row keeps its own sampling chain and seeded generator, so a
request samples the same tokens alone as inside a batch. `Engine.stream` drives a DecodeBatch of
one inline (doppel chat); `Batcher` drives one on a worker thread for every server client.

transformers' own ContinuousBatchingManager (generate_batch) was tried first: on CPU with the
embedded model it took 48 s for two 16-token prompts and its greedy replies differed from
`generate`'s, so doppel keeps this small one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from doppel.infer.sampling import SamplingParams

# token (None once finished) and the finish reason ("stop", "length", or None while running)
Emit = Callable[[int | None, str | None], None]


def logits_processors(params: SamplingParams):
    """The transformers processor chain for one request's sampling settings."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    chain = LogitsProcessorList()
    if params.repetition_penalty and params.repetition_penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if params.temperature > 0:
        chain.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k:
            chain.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            chain.append(TopPLogitsWarper(params.top_p))
    return chain


@dataclass(eq=False)
class Slot:
    """One request: its prompt, settings, tokens so far, and where its tokens go."""

    prompt: list[int]
    params: SamplingParams
    emit: Emit
    generated: list[int] = field(default_factory=list)
    cancelled: bool = False
    chain: Any = None
    generator: Any = None

    def __post_init__(self) -> None:
        import torch

        self.chain = logits_processors(self.params)
        if self.params.seed is not None:
            self.generator = torch.Generator().manual_seed(self.params.seed)

    def cancel(self) -> None:
        """Leave the batch at the next decode step (a client hung up)."""
        self.cancelled = True

    def sampling_key(self) -> tuple:
        """What picking a token depends on besides the logits, ids and seed: rows that agree on
        it are picked together (one sort of the vocabulary for all of them, not one per row)."""
        p = self.params
        return (p.temperature, p.top_k, p.top_p, p.repetition_penalty)


def pick_tokens(rows: list[Slot], logits) -> list[int]:
    """The next token of each row (logits: rows x vocab, float).

    Rows with the same settings go through their processor chain as one batch; each row's ids are
    right-padded with its own first id, which the repetition penalty's gather and scatter read
    as a token already there, so each row's scores are the ones it gets alone. Sampling then
    draws each row from its own seeded generator."""
    import torch

    groups: dict[tuple, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(row.sampling_key(), []).append(index)
    tokens = [0] * len(rows)
    for members in groups.values():
        first = rows[members[0]]
        scores = logits[members]
        if len(first.chain):
            seen = [rows[i].prompt + rows[i].generated for i in members]
            width = max(map(len, seen))
            ids = torch.tensor([ids + ids[:1] * (width - len(ids)) for ids in seen])
            scores = first.chain(ids, scores)
        if first.params.temperature > 0:
            probs = torch.softmax(scores, dim=-1).cpu()
            for row, index in enumerate(members):
                tokens[index] = int(torch.multinomial(probs[row:row + 1], 1,
                                                      generator=rows[index].generator))
        else:
            for index, token in zip(members, scores.argmax(dim=-1).tolist(), strict=True):
                tokens[index] = token
    return tokens


class DecodeBatch:
    """The running batch: a shared left-padded KV cache and one Slot per row."""

    def __init__(self, model, stop_ids: list[int]) -> None:
        self.model, self.stop_ids = model, set(stop_ids)
        self.device = getattr(model, "device", "cpu")
        self.rows: list[Slot] = []
        self.cache = None
        self.mask = None  # rows x cached positions: 1 real, 0 left padding

    def __len__(self) -> int:
        return len(self.rows)

    def join(self, *slots: Slot) -> None:
        """Prefill the newcomers' prompts together (left-padded), emit each one's first token,
        and merge them into the running batch."""
        import torch
        from transformers import DynamicCache

        width = max(len(slot.prompt) for slot in slots)
        ids = torch.tensor([[0] * (width - len(s.prompt)) + s.prompt for s in slots],
                           device=self.device)
        mask = torch.tensor([[0] * (width - len(s.prompt)) + [1] * len(s.prompt) for s in slots],
                            device=self.device)
        cache = DynamicCache()
        padded = {"attention_mask": mask, "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0)}
        with torch.inference_mode():
            out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1,
                             **(padded if len(slots) > 1 else {}))
        self._admit(list(slots), cache, mask, out.logits[:, -1, :].float())

    def admit(self, slot: Slot, found: Prefilled) -> None:
        """Join with a prompt already run (eval's ranking test ran it): no second prefill."""
        import torch

        mask = torch.ones(1, found.length, dtype=torch.long, device=self.device)
        self._admit([slot], found.cache, mask, found.logits.float())

    def _admit(self, slots: list[Slot], cache, mask, logits) -> None:
        if self.cache is None:
            self.cache, self.mask = cache, mask
        else:
            self.cache, self.mask = _merge(self.cache, self.mask, cache, mask)
        self.rows += slots
        self._advance(slots, logits)

    def step(self) -> None:
        """One decode step for every row; finished and cancelled rows leave afterwards."""
        import torch

        last = torch.tensor([[row.generated[-1]] for row in self.rows], device=self.device)
        mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        positions = (mask.sum(dim=1, keepdim=True) - 1)
        with torch.inference_mode():
            out = self.model(input_ids=last, attention_mask=mask, position_ids=positions,
                             cache=self.cache, use_cache=True, logits_to_keep=1)
        self.mask = mask
        live = [i for i, row in enumerate(self.rows) if not row.cancelled]
        self._advance([self.rows[i] for i in live], out.logits[live, -1, :].float())

    def _advance(self, rows: list[Slot], logits) -> None:
        for row, token in zip(rows, pick_tokens(rows, logits), strict=True):
            self._take(row, token)

    def _take(self, row: Slot, token: int) -> None:
        row.generated.append(token)
        if token in self.stop_ids:
            _send(row, None, "stop")
            row.cancelled = True
        elif len(row.generated) >= row.params.max_new_tokens:
            _send(row, token, None)
            _send(row, None, "length")
            row.cancelled = True
        else:
            _send(row, token, None)

    def drop_finished(self) -> None:
        """Cut out the rows that are done or cancelled, and the padding all rows share."""
        keep = [i for i, row in enumerate(self.rows) if not row.cancelled]
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache = self.mask = None
            return
        import torch

        index = torch.tensor(keep, device=self.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        shared = int((self.mask.sum(dim=0) == 0).cumprod(dim=0).sum())  # leading all-pad columns
        if shared:
            self.mask = self.mask[:, shared:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, shared:, :]
                layer.values = layer.values[:, :, shared:, :]


@dataclass
class Prefilled:
    """One prompt run through the model: its KV cache and the logits after its last token."""

    cache: Any
    logits: Any  # 1 x vocab
    length: int


def prefill(model, prompt: list[int]) -> Prefilled:
    """Run one prompt (no padding) and keep what generation or scoring continues from."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache()
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt], device=device), cache=cache,
                    use_cache=True, logits_to_keep=1)
    return Prefilled(cache, out.logits[:, -1, :], len(prompt))


def _send(row: Slot, token: int | None, reason: str | None) -> None:
    """Hand a token to its consumer; a consumer that fails (a closed event loop) loses its row
    and nobody else's."""
    try:
        row.emit(token, reason)
    except Exception:
        row.cancelled = True


def _merge(cache, mask, other, other_mask):
    """Stack two left-padded caches along the batch, padding the shorter one on the left."""
    import torch.nn.functional as F

    width = max(mask.shape[1], other_mask.shape[1])

    def pad(tensor, columns: int, dim_from_end: int):
        if columns == 0:
            return tensor
        spec = [0, 0] * (dim_from_end - 1) + [columns, 0]
        return F.pad(tensor, spec)

    import torch

    grow, grow_other = width - mask.shape[1], width - other_mask.shape[1]
    for layer, extra in zip(cache.layers, other.layers, strict=True):
        layer.keys = torch.cat([pad(layer.keys, grow, 2), pad(extra.keys, grow_other, 2)])
        layer.values = torch.cat([pad(layer.values, grow, 2), pad(extra.values, grow_other, 2)])
    return cache, torch.cat([pad(mask, grow, 1), pad(other_mask, grow_other, 1)])


class Batcher:
    """A worker thread that runs one DecodeBatch for many callers, at most `max_batch` at once.

    Callers `submit` a Slot and get its tokens through the Slot's emit callback (on the worker
    thread); `Slot.cancel` takes it out at the next decode step. Waiting slots join in arrival
    order as rows free up.
    """

    def __init__(self, model, stop_ids: list[int], max_batch: int = 8) -> None:
        self.batch = DecodeBatch(model, stop_ids)
        self.max_batch = max(max_batch, 1)
        self.waiting: deque[Slot] = deque()
        self.wake = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="doppel-batcher", daemon=True)
        self.thread.start()

    def submit(self, slot: Slot) -> Slot:
        with self.wake:
            self.waiting.append(slot)
            self.wake.notify()
        return slot

    def close(self) -> None:
        """Stop after the step in flight (before the interpreter exits under a running step)."""
        with self.wake:
            self.closed = True
            self.wake.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=30)

    @property
    def running(self) -> int:
        return len(self.batch)

    def _loop(self) -> None:
        while True:
            with self.wake:
                while not self.closed and not self.waiting and not self.batch.rows:
                    self.wake.wait()
                if self.closed:
                    return
                joining = []
                while self.waiting and len(self.batch) + len(joining) < self.max_batch:
                    joining.append(self.waiting.popleft())
            try:
                self._turn(joining)
            except Exception as error:  # a broken step fails its requests, never the server
                for slot in self.batch.rows + joining:
                    _send(slot, None, f"error: {error}")
                self.batch = DecodeBatch(self.batch.model, sorted(self.batch.stop_ids))

    def _turn(self, joining: list[Slot]) -> None:
        self.batch.drop_finished()
        if self.batch.rows:
            self.batch.step()
        joining = [slot for slot in joining if not slot.cancelled]
        if joining:
            self.batch.join(*joining)
        self.batch.drop_finished()
