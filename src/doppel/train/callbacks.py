"""Trainer callbacks: one rich progress bar (loss, tokens/s, ETA) and metrics.jsonl, rank 0 only."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class MetricsLog(TrainerCallback):
    """Appends every log line (train loss, val loss, throughput) to metrics.jsonl on rank 0."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last_tokens = 0
        self._last_time = time.perf_counter()
        self.tokens_per_s: float = 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        seen = state.num_input_tokens_seen or 0
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        for key, value in logs.items():
            name = {"eval_loss": "val_loss", "learning_rate": "lr"}.get(key, key)
            if isinstance(value, int | float):
                row[name] = value
        if "loss" in row and now > self._last_time:
            self.tokens_per_s = (seen - self._last_tokens) / (now - self._last_time)
            row["tokens_per_s"] = round(self.tokens_per_s, 1)
            row["tokens_seen"] = seen
            self._last_tokens, self._last_time = seen, now
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


class RichProgress(TrainerCallback):
    """The run's single progress bar; replaces the Trainer's tqdm bars."""

    def __init__(self, metrics: MetricsLog) -> None:
        self.metrics = metrics
        self.progress = None
        self.task = None
        self.loss = float("nan")

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=state.max_steps, completed=state.global_step, loss="-", tps="-"
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(
                self.task, loss=f"{logs['loss']:.3f}", tps=f"{self.metrics.tokens_per_s:,.0f}"
            )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.progress is not None and metrics and "eval_loss" in metrics:
            self.progress.console.print(
                f"step {state.global_step}: val loss {metrics['eval_loss']:.4f}"
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
