"""Tiny real inputs for the eval tests: a base model folder and a LoRA run folder trained on it."""

from __future__ import annotations

import json
from pathlib import Path

from doppel.chatformat import ChatEncoder, group_turns
from doppel.data.dataset import load_dataset
from doppel.runs import ADAPTER_DIR, METRICS, RUN_INFO, TOKENIZER_DIR, RunInfo


def train_examples(tokenizer, dataset_dir: Path, speakers: set[str], max_length: int):
    encoder = ChatEncoder(tokenizer)
    examples = []
    for conversation in load_dataset(dataset_dir).conversations("train"):
        turns = group_turns((m.speaker, m.text) for m in conversation.messages)
        examples += encoder.encode(turns, speakers, max_length)
    return examples


def write_lora_run(path: Path, base_dir: Path, dataset_dir: Path, steps: int = 40,
                   speakers: tuple[str, ...] = ("Alex",), max_length: int = 128) -> Path:
    """A LoRA run folder in the contract's shape, trained a few steps so it beats its base."""
    import torch
    from peft import LoraConfig, get_peft_model

    from doppel.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    torch.manual_seed(0)
    model = get_peft_model(load_model(base_dir, tokenizer),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    examples = train_examples(tokenizer, dataset_dir, set(speakers), max_length)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    model.train()
    for step in range(steps):
        batch = [examples[(step * 8 + i) % len(examples)] for i in range(8)]
        width = max(len(e.input_ids) for e in batch)
        ids = torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in batch])
        labels = torch.tensor([e.labels + [-100] * (width - len(e.labels)) for e in batch])
        mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids))
                             for e in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    path.mkdir(parents=True)
    model.save_pretrained(path / ADAPTER_DIR)
    tokenizer.save_pretrained(path / TOKENIZER_DIR)
    manifest = load_dataset(dataset_dir).manifest
    info = RunInfo(base_model=str(base_dir), method="lora", me=manifest["me"],
                   speakers=[s["name"] for s in manifest["speakers"].values()],
                   trained_speakers=list(speakers), max_length=max_length,
                   dataset={"path": str(dataset_dir), "fingerprint": manifest["fingerprint"]})
    (path / RUN_INFO).write_text(json.dumps(info.to_json()), encoding="utf-8")
    summary = {"wall_s": 12.5, "trainable_params": sum(p.numel() for p in trainable),
               "peak_memory_mb": 321.0}
    lines = [{"step": steps, "epoch": 1.0, "loss": float(loss.detach())}, {"summary": summary}]
    (path / METRICS).write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path
