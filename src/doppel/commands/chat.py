"""`doppel chat RUN_DIR`: talk to the model in the terminal, or replay a script of messages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from doppel.errors import DoppelError
from doppel.infer import options as opt


def command(
    run_dir: opt.RunDir,
    persona: Annotated[str | None, typer.Option(
        "--as", help="Whom the model plays (default: the exporting user).")] = None,
    me: Annotated[str | None, typer.Option(
        "--me", help="Whom you write as (default: the persona's most frequent partner).")] = None,
    script: Annotated[Path | None, typer.Option(
        help="Send each line of this file as a message (lines starting with / are commands), "
             "print the transcript and exit.")] = None,
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
    """Chat with the model in the terminal: it plays one person, you write as another."""
    from doppel.infer.chat import ChatSession

    lines = _read_script(script) if script else None
    params = opt.sampling(temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)
    console = Console(highlight=False, soft_wrap=True)
    with console.status(f"loading {run_dir}", spinner="dots"):
        engine = opt.load_engine(run_dir, merge, max_length, dtype)
    session = ChatSession.start(engine, persona, me, params)
    if lines is None:
        console.print(f"[dim]{escape(session.persona)} is played by the model; you are "
                      f"{escape(session.me)}. /help lists the commands.[/]")
    for line in lines if lines is not None else _prompt(console, session):
        if line.strip() in ("/quit", "/exit"):
            break
        try:
            _handle(console, session, line, strict=lines is not None)
        except KeyboardInterrupt:  # Ctrl-C stops the reply, not the chat
            if lines is not None:
                raise
            console.print("\n[dim](stopped)[/]")


def _read_script(path: Path) -> list[str]:
    if not path.is_file():
        raise DoppelError(f"script {path} does not exist; write one message per line")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _prompt(console: Console, session):
    """Lines typed by the user, until Ctrl-D."""
    while True:
        try:
            line = console.input(f"[bold green]{escape(session.me)}>[/] ")
        except EOFError:
            console.print()
            return
        if line.strip():
            yield line


def _handle(console: Console, session, line: str, strict: bool) -> None:
    """One line: a slash command, or a message followed by the streamed reply."""
    if line.startswith("/"):
        try:
            console.print(f"[dim]{escape(session.command(line))}[/]")
        except DoppelError as error:
            if strict:
                raise
            console.print(f"[red]{escape(str(error))}[/]")
        return
    if strict:  # a script shows who said what, like the live screen does
        console.print(f"[bold green]{escape(session.me)}:[/] ", end="")
        console.print(line, markup=False)
    _print_reply(console, session, line)


def _print_reply(console: Console, session, line: str) -> None:
    """Each message on its own line, prefixed with the speaker's name, as the tokens come."""
    name = f"[bold cyan]{escape(session.persona)}:[/] "
    current = -1
    for delta in session.say(line):
        if delta.text and delta.message_index != current:
            console.print(("\n" if current >= 0 else "") + name, end="")
            current = delta.message_index
        if delta.text:
            console.print(delta.text, end="", markup=False)
    if current < 0:
        console.print(f"[dim]({escape(session.persona)} says nothing)[/]", end="")
    console.print()
