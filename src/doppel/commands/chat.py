"""`doppel chat RUN_DIR`: talk to the model in the terminal, or replay a script of messages."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from doppel.errors import DoppelError
from doppel.infer import options as opt
from doppel.infer.options import ChatOptions
from doppel.options import command_from_options


@command_from_options
def command(options: ChatOptions) -> None:
    """Chat with the model in the terminal: it plays one person, you write as another."""
    from doppel.infer.chat import ChatSession
    from doppel.present import play_chat

    script = options.script
    lines = _read_script(script) if script else None
    console = Console(highlight=False, soft_wrap=True)
    notes = Console(stderr=True, highlight=False, soft_wrap=True)  # not part of the transcript
    with console.status(f"loading {options.load.run}", spinner="dots"):
        engine = opt.load_engine(options.load, options.recall, notes.print)
    session = ChatSession.start(engine, options.persona, options.me, options.sampling)
    play_chat(console, session, lines)


def _read_script(path: Path) -> list[str]:
    if not path.is_file():
        raise DoppelError(f"script {path} does not exist; write one message per line")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
