"""The whole experiment end to end: sample export -> dataset -> run -> scripted chat -> eval.

`doppel demo` (and `make demo`) runs it on the bundled sample with the embedded model;
`doppel compare` trains LoRA and full fine-tuning on the same data and evaluates them side by side.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from doppel.errors import DoppelError

SCRIPT = ["hey", "what's up?"]
QUICK_TRAIN = {"max_steps": 16, "max_length": 256, "learning_rate": 1e-3, "save_steps": 1000}
CPU_COMPARE = {"lora": ("cpu-demo", {}), "full": ("cpu-full", {})}  # recipe, overrides


@dataclass
class Outputs:
    root: Path
    paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    eval: object | None = None

    @classmethod
    def start(cls, root: Path, force: bool) -> Outputs:
        """Outputs under a root that is new, empty, or may be replaced (--force)."""
        root = Path(root)
        if root.exists() and any(root.iterdir()) and not force:
            raise DoppelError(f"{root} already exists; pass --force to replace it")
        return cls(root)


@contextlib.contextmanager
def _step(console: Console, outputs: Outputs, name: str, title: str) -> Iterator[None]:
    """Print a heading for a step and record how long it took."""
    console.print(Rule(f"[bold]{title}"))
    started = time.perf_counter()
    yield
    outputs.timings[name] = round(time.perf_counter() - started, 1)


def train_run(dataset: Path, out: Path, recipe: str, overrides: dict, force: bool = True) -> Path:
    from doppel.train.config import load_config
    from doppel.train.run import train

    return train(dataset, out, load_config(recipe, overrides), force=force)


def scripted_chat(run: Path, out: Path, console: Console) -> Path:
    """The reference's opening lines, sent to the model playing the exporting user."""
    from doppel.commands.chat import command as chat

    script = out.with_suffix(".script.txt")
    script.write_text("\n".join([*SCRIPT, f"/save {out}"]) + "\n", encoding="utf-8")
    chat(run_dir=str(run), script=script, seed=0)
    script.unlink()
    return out


def evaluate_into(outputs: Outputs, runs: list[Path], dataset: Path, quick: bool) -> None:
    """The eval report of these runs, under outputs.root/eval."""
    from doppel.eval.options import EvalOptions
    from doppel.eval.runner import evaluate

    # the demo keeps eval to a few minutes on a laptop CPU: short replies, but 48 contexts (the
    # default) unless --quick; `doppel eval` without --quick is the thorough version
    options = EvalOptions.quick(force=True, **({} if quick else {"max_contexts": 48}))
    outputs.eval = evaluate(runs, dataset, outputs.root / "eval", options)
    outputs.paths["report"] = outputs.eval.report_html


def run_demo(
    out_dir: Path, quick: bool = False, force: bool = False, model: str | None = None
) -> Outputs:
    """Every step of the product on the bundled sample; returns where everything is."""
    from doppel.commands.prepare import show_summary
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset
    from doppel.sample import write_sample_export

    console = Console(highlight=False)
    outputs = Outputs.start(out_dir, force)
    out_dir = outputs.root
    paths = outputs.paths
    with _step(console, outputs, "sample", "1/5 write the sample Telegram export"):
        paths["export"] = write_sample_export(out_dir / "export", force=True)
        console.print(f"sample export: {paths['export']}")
    with _step(console, outputs, "prepare", "2/5 prepare: export -> conversations"):
        paths["dataset"] = out_dir / "dataset"
        options = PrepareOptions(force=True)
        show_summary(prepare_dataset(paths["export"], paths["dataset"], options), options.mask)
    with _step(
        console, outputs, "train", "3/5 train: LoRA on the embedded model (cpu-demo recipe)"
    ):
        overrides = {**(QUICK_TRAIN if quick else {}), "model": model}
        paths["run"] = train_run(paths["dataset"], out_dir / "run", "cpu-demo", overrides)
    with _step(console, outputs, "chat", "4/5 chat: the model plays you"):
        paths["transcript"] = scripted_chat(paths["run"], out_dir / "transcript.md", console)
    with _step(console, outputs, "eval", "5/5 eval: fine-tuned vs base on held-out conversations"):
        evaluate_into(outputs, [paths["run"]], paths["dataset"], quick)
    print_summary(console, outputs)
    return outputs


def print_summary(console: Console, outputs: Outputs) -> None:
    from rich.table import Table

    console.print(Rule("[bold]done"))
    if outputs.eval is not None:
        run = outputs.eval.runs[0]
        table = Table(title="fine-tuned vs base (held-out conversations)")
        for column in (
            "speaker",
            "perplexity base -> tuned",
            "attributed to speaker base -> tuned",
            "ceiling",
        ):
            table.add_column(column)
        for speaker in run.speakers:
            table.add_row(
                speaker,
                _pair(run.base_perplexity.get(speaker), run.perplexity.get(speaker), ".1f"),
                _pair(
                    run.base_attribution_share.get(speaker),
                    run.attribution_share.get(speaker),
                    ".0%",
                ),
                _fmt(run.ceiling.get(speaker), ".0%"),
            )
        console.print(table)
    for name, path in outputs.paths.items():
        console.print(f"{name:>10}: {path}")
    console.print(f"   timings: {', '.join(f'{k} {v:.0f}s' for k, v in outputs.timings.items())}")
    if "run" in outputs.paths:
        console.print(
            f"\nTalk to it:  doppel chat {outputs.paths['run']}\n"
            f"Serve it:    doppel serve {outputs.paths['run']}   (then open http://127.0.0.1:8000)"
        )


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _pair(before, after, spec: str) -> str:
    return f"{_fmt(before, spec)} -> {_fmt(after, spec)}"


def run_compare(
    dataset: Path,
    out_dir: Path,
    quick: bool = False,
    force: bool = False,
    recipes: dict[str, tuple[str, dict]] | None = None,
) -> Outputs:
    """The reference experiment: LoRA and full fine-tuning on the same data, evaluated together."""

    console = Console(highlight=False)
    outputs = Outputs.start(out_dir, force)
    out_dir = outputs.root
    for method, (recipe, overrides) in (recipes or CPU_COMPARE).items():
        with _step(console, outputs, method, f"train {method} ({recipe})"):
            merged = {**(QUICK_TRAIN if quick else {}), **overrides}
            outputs.paths[method] = train_run(dataset, out_dir / method, recipe, merged)
    with _step(console, outputs, "eval", "eval: side by side on held-out conversations"):
        evaluate_into(outputs, [outputs.paths[m] for m in recipes or CPU_COMPARE], dataset, quick)
    print_summary(console, outputs)
    return outputs
