"""`doppel serve RUN_DIR`: the OpenAI-compatible API and the web chat page."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from doppel.errors import DoppelError
from doppel.infer import options as opt


def command(
    run_dir: opt.RunDir,
    host: Annotated[str, typer.Option(
        help="Address to listen on; anything but loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[str | None, typer.Option(
        envvar="DOPPEL_API_KEY",
        help="Require `Authorization: Bearer KEY` on /v1.")] = None,
    queue_size: Annotated[int, typer.Option(
        min=0, help="Requests that may wait while one generates; more get 503.")] = 8,
    timeout: Annotated[float, typer.Option(
        min=1, help="Seconds a request may take, waiting included.")] = 120.0,
    temperature: opt.Temperature = opt.SamplingParams.temperature,
    top_p: opt.TopP = opt.SamplingParams.top_p,
    top_k: opt.TopK = opt.SamplingParams.top_k,
    repetition_penalty: opt.RepetitionPenalty = opt.SamplingParams.repetition_penalty,
    max_new_tokens: opt.MaxNewTokens = opt.SamplingParams.max_new_tokens,
    seed: opt.Seed = None,
    merge: opt.Merge = True,
    max_length: opt.MaxLength = None,
    dtype: opt.Dtype = "auto",
) -> None:
    """Serve the model: OpenAI-compatible /v1/chat/completions and a web chat page at /."""
    import uvicorn
    from rich.console import Console

    from doppel.infer.server import create_app

    check_exposure(host, api_key)
    defaults = opt.sampling(temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)
    console = Console(stderr=True, highlight=False)
    with console.status(f"loading {run_dir}", spinner="dots"):
        engine = opt.load_engine(run_dir, merge, max_length, dtype)
    app = create_app(engine, api_key=api_key, queue_size=queue_size, timeout_s=timeout,
                     defaults=defaults)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"doppel: chat page and API on http://{shown}:{port}/ "
                  f"(personas: {', '.join(engine.personas) or 'any name'})")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without a key: chat logs are private."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # a host name could resolve anywhere
    if not loopback and not api_key:
        raise DoppelError(f"--host {host} is reachable from other machines; pass --api-key KEY "
                          "(or set DOPPEL_API_KEY), or keep the default --host 127.0.0.1")
