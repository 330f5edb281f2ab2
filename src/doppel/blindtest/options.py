"""`doppel blindtest`'s flags: the test (data, judges, items, rivals), where it is kept, and the
server (the same --host/--port/--api-key rules as `doppel serve`), sampling and the model."""

from __future__ import annotations

from pathlib import Path

from doppel.infer.options import ListenOptions, LoadOptions
from doppel.infer.sampling import SamplingParams
from doppel.options import Options, option


class BlindtestOptions(Options):
    """Prepare a blind test once (candidates generated and stored), then serve it."""

    data: Path | None = option(None, "The dataset folder the run was trained on; its held-out "
                               "turns become the test (needed to prepare or add judges).",
                               metavar="DATASET")
    judge: tuple[str, ...] = option(
        (), "A friend who takes the test (a speaker's name in the data; repeat for more): each "
        "gets a personal link and sees only chats they were part of. 'me' is you: any chat.",
        metavar="NAME")
    items: int = option(20, "Items per judge (held-out turns of the persona).", ge=1, le=500)
    against: tuple[str, ...] = option(
        (), "A third candidate from another model (repeat for more): 'base' (the run's base "
        "model), another run folder, or a model name.", metavar="MODEL")
    persona: str | None = option(None, "Whose replies are tested (default: the run's exporting "
                                 "user).", flags=("--as",))
    history_turns: int = option(8, "Turns of chat shown before each reply, at most.", ge=1)
    store: Path | None = option(None, "SQLite file holding the test and its answers (default: "
                                "RUN_DIR's name + .blindtest.sqlite, next to the run folder).",
                                metavar="FILE")
    results: bool = option(False, "Print the results so far (twin-picked share per judge with "
                           "95% intervals, ratings, the items that fooled judges most) and exit.")
    serve: bool = option(True, "Serve the test after preparing it (--no-serve: print the links "
                         "and exit).")
    listen: ListenOptions = ListenOptions()
    sampling: SamplingParams = SamplingParams()
    load: LoadOptions
