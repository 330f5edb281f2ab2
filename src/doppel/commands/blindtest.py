"""`doppel blindtest RUN_DIR --data DATASET --judge NAME`: "which one is real?" for your friends."""

from __future__ import annotations

from doppel.blindtest.options import BlindtestOptions
from doppel.options import command_from_options


@command_from_options
def command(options: BlindtestOptions) -> None:
    """Prepare a blind test (held-out chats, the real reply and the twin's, shuffled; generated
    once) and serve it: one personal link per judge. --results prints what judges answered."""
    from rich.console import Console

    from doppel.blindtest import session

    console = Console(stderr=True, highlight=False)
    if options.results:
        print(session.results_text(options))
        return
    store = session.open_prepared(options, console)
    try:
        for judge, link in session.links(store, options.listen).items():
            print(f"{judge}: {link}", flush=True)
        if options.serve:
            session.serve(store, options.listen, console)
    finally:
        store.close()
