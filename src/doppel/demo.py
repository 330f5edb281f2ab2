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
from doppel.options import Options, force_option, option, output_option
from doppel.present import experiment_summary, prepare_summary

SCRIPT = ["hey", "what's up?"]
# --quick (the tests' demo): a few short steps already move perplexity and attribution
QUICK_TRAIN = {"max_steps": 8, "max_length": 128, "learning_rate": 1e-3, "save_steps": 1000,
               "val_max_windows": 16}
# the full demo's eval: --quick's short replies, but eval's thorough amounts of held-out data
THOROUGH = ("max_contexts", "ppl_max_tokens", "fact_turns", "rank_candidates")
# --quick's eval skips the scripted chats (a third of its generating): the chat step has one
QUICK_EVAL = {"transcripts": False}
CPU_COMPARE = {"lora": ("cpu-demo", {}), "full": ("cpu-full", {})}  # recipe, overrides


class ExperimentOptions(Options):
    """What `doppel demo` and `doppel compare` share."""

    quick: bool = option(False, "Short training runs and a small eval (for tests).")
    force: bool = force_option()
    model: str | None = option(None, "Model spec (default: the recipe's, smollm2-135m).")


class DemoOptions(ExperimentOptions):
    output: Path = output_option("Folder for every output.", Path("out/demo"))


class CompareOptions(ExperimentOptions):
    dataset_dir: Path = option(help="Dataset folder from `doppel prepare`.", argument=True,
                               metavar="DATASET_DIR")
    output: Path = output_option("Folder for both runs and the report.")
    lora_recipe: str = option("cpu-demo", "Recipe for the LoRA run (GPU: mistral-7b-qlora-24gb).")
    full_recipe: str = option("cpu-full", "Recipe for the full run (GPUs: mistral-7b-full-fsdp).")

    def recipes(self) -> dict[str, tuple[str, dict]]:
        overrides = {"model": self.model}
        return {"lora": (self.lora_recipe, overrides), "full": (self.full_recipe, overrides)}


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
    from doppel.engines import load_engine
    from doppel.infer.chat import ChatSession
    from doppel.infer.options import LoadOptions
    from doppel.infer.sampling import SamplingParams
    from doppel.present import play_chat

    engine = load_engine(LoadOptions(run=str(run)))
    session = ChatSession.start(engine, params=SamplingParams(seed=0))
    play_chat(console, session, [*SCRIPT, f"/save {out}"])
    return out


def evaluate_into(outputs: Outputs, runs: list[Path], dataset: Path, quick: bool) -> None:
    """The eval report of these runs, under outputs.root/eval."""
    from doppel.eval.options import EvalOptions
    from doppel.eval.runner import evaluate

    # the demo keeps eval to a few minutes on a laptop CPU: short replies, but the default
    # amounts of held-out data (THOROUGH) unless --quick; `doppel eval` is the thorough version
    thorough = {name: EvalOptions.model_fields[name].default for name in THOROUGH}
    options = EvalOptions(quick=True, force=True, **(QUICK_EVAL if quick else thorough))
    outputs.eval = evaluate(runs, dataset, outputs.root / "eval", options)
    outputs.paths["report"] = outputs.eval.report_html


def run_demo(
    out_dir: Path, quick: bool = False, force: bool = False, model: str | None = None
) -> Outputs:
    """Every step of the product on the bundled sample; returns where everything is."""
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
        summary = prepare_dataset(paths["export"], paths["dataset"], options)
        prepare_summary(summary, options.mask, console)
    with _step(
        console, outputs, "train", "3/5 train: LoRA on the embedded model (cpu-demo recipe)"
    ):
        overrides = {**(QUICK_TRAIN if quick else {}), "model": model}
        paths["run"] = train_run(paths["dataset"], out_dir / "run", "cpu-demo", overrides)
    with _step(console, outputs, "chat", "4/5 chat: the model plays you"):
        paths["transcript"] = scripted_chat(paths["run"], out_dir / "transcript.md", console)
    with _step(console, outputs, "eval", "5/5 eval: fine-tuned vs base on held-out conversations"):
        evaluate_into(outputs, [paths["run"]], paths["dataset"], quick)
    experiment_summary(console, outputs)
    return outputs


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
    experiment_summary(console, outputs)
    return outputs
