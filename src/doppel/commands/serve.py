"""`doppel serve RUN_DIR`: the OpenAI-compatible API and the web chat page."""

from __future__ import annotations

from doppel.infer import options as opt
from doppel.infer.options import ServeOptions
from doppel.options import command_from_options


@command_from_options
def command(options: ServeOptions) -> None:
    """Serve the model: OpenAI-compatible /v1/chat/completions and a web chat page at /."""
    import uvicorn
    from rich.console import Console

    from doppel.infer.server import create_app

    console = Console(stderr=True, highlight=False)
    with console.status(f"loading {options.load.run}", spinner="dots"):
        engine = opt.load_engine(options.load, options.recall, console.print)
    app = create_app(engine, api_key=options.api_key, queue_size=options.queue_size,
                     timeout_s=options.timeout, defaults=options.sampling,
                     max_batch=options.batch_size)
    host = options.host
    shown = f"[{host}]" if ":" in host else host
    console.print(f"doppel: chat page and API on http://{shown}:{options.port}/ "
                  f"(personas: {', '.join(engine.personas) or 'any name'})")
    uvicorn.run(app, host=host, port=options.port, log_level="warning")
