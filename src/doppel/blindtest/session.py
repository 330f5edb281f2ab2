"""The command's steps: open (or prepare) the store, print links, serve, print results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doppel.blindtest.options import BlindtestOptions
from doppel.blindtest.prepare import prepare
from doppel.blindtest.store import BlindStore, default_store_path
from doppel.errors import DoppelError
from doppel.infer.options import ListenOptions


def store_path(options: BlindtestOptions) -> Path:
    return options.store or default_store_path(options.load.run)


def loader(options: BlindtestOptions):
    """Model spec -> engine with the run's load settings; 'base' is the run's base model."""
    from doppel import engines
    from doppel.runs import read_run_info

    def load(spec: str) -> Any:
        if spec == "base":
            spec = read_run_info(Path(options.load.run)).base_model
        return engines.load_engine(options.load.replace(run=spec))

    return load


def open_prepared(options: BlindtestOptions, console) -> BlindStore:
    """The store with every --judge in it (generating what is missing), or the one there."""
    path = store_path(options)
    if not options.judge:
        store = BlindStore(path, create=False)
        if not store.judges():
            store.close()
            raise DoppelError(f"the blind test at {path} has no judges; add them with --data "
                              "DATASET --judge NAME")
        return store
    existed = path.exists()
    store = BlindStore(path)
    try:
        with console.status("preparing the blind test", spinner="dots"):
            prepare(options, store, loader(options), say=console.print)
    except BaseException:
        store.close()
        if not existed:  # nothing half-made is left behind
            path.unlink(missing_ok=True)
        raise
    return store


def links(store: BlindStore, listen: ListenOptions) -> dict[str, str]:
    return {judge: f"{listen.url}/t/{token}" for judge, token in store.judges().items()}


def serve(store: BlindStore, listen: ListenOptions, console) -> None:
    import uvicorn

    from doppel.blindtest.server import create_app

    console.print(f"doppel: blind test on {listen.url}/ (Ctrl-C to stop; answers are kept in "
                  f"{store.path})")
    uvicorn.run(create_app(store, listen.api_key), host=listen.host, port=listen.port,
                log_level="warning")


def results_text(options: BlindtestOptions) -> str:
    from doppel.blindtest.report import markdown
    from doppel.blindtest.results import compute

    store = BlindStore(store_path(options), create=False)
    try:
        return markdown(compute(store))
    finally:
        store.close()
