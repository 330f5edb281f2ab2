"""`doppel train`'s own options, beside the training settings (TrainConfig: a recipe's keys, which
its flags override and run.json records)."""

from __future__ import annotations

from pathlib import Path

from doppel.options import Options, force_option, option, output_option


class TrainCommand(Options):
    """The dataset, the run folder, the recipe and how to go about the run."""

    dataset_dir: Path = option(help="Dataset folder from `doppel prepare`.", argument=True,
                               metavar="DATASET_DIR")
    output: Path = output_option("Run folder to write.")
    recipe: str | None = option(None, "Shipped recipe name or YAML path (default cpu-demo); it "
                                "gives every setting the flags below do not.")
    resume: bool = option(False, "Continue from the run folder's last checkpoint.")
    force: bool = force_option("an existing run folder")
    dry_run: bool = option(False, "Print the resolved config, token and step counts and a memory "
                           "estimate, without loading weights.")
    prefer: bool = option(False, "A preference stage on the LoRA run given with --from: DPO "
                          "from the run's own replies (rejected) to your real ones (chosen) at "
                          "your train-split turns, into a new run folder (-o). Its settings: the "
                          "recipe's prefer: block (--recipe, else the run's recipe.yaml), the "
                          "--prefer-* flags, and --learning-rate, --epochs, --grad-accum, "
                          "--max-steps, --max-length, --seed, --nproc for the stage.")
    from_run: Path | None = option(None, "The run folder --prefer starts from.",
                                   flags=("--from",), metavar="RUN_DIR")
    votes: Path | None = option(None, "With --prefer: the run's blind test answers "
                                "(RUN.blindtest.sqlite); replies friends spotted as the twin's "
                                "join the rejected ones.", metavar="FILE")
