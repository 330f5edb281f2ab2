"""The `doppel` command: a table of sub-commands, each a typed function in `doppel.commands`.

Usage: doppel --help
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import typer
from rich.console import Console

from doppel import quiet
from doppel.errors import DoppelError, print_error

# Privacy and quiet by default: no hub calls or telemetry unless the user sets these otherwise,
# and no library chatter between doppel's own progress bars. Set before any HF import.
for _key, _value in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                     "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_key, _value)
warnings.filterwarnings("ignore", category=FutureWarning)
# bitsandbytes' lines about a hub kernel doppel never fetches (its built-in CPU kernels run)
quiet.install()

# command name -> module in doppel.commands that defines `command` (typed options = flags = --help)
COMMANDS = {
    "sample-export": "sample_export",
    "prepare": "prepare",
    "train": "train",
    "chat": "chat",
    "serve": "serve",
    "bot": "bot",
    "blindtest": "blindtest",
    "eval": "eval",
    "compare": "compare",
    "demo": "demo",
    "export": "export",
    "memory": "memory",
}

app = typer.Typer(
    help="Turn your chat exports into a language model that chats like you and your friends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _name, _module in COMMANDS.items():
    try:
        _fn = importlib.import_module(f"doppel.commands.{_module}").command
    except ModuleNotFoundError as _missing:  # a command still being built is simply not offered
        if _missing.name != f"doppel.commands.{_module}":
            raise
        continue
    app.command(_name, help=_fn.__doc__)(_fn)


@app.callback()
def _root() -> None:
    """Keeps `doppel COMMAND` a command group, whatever commands are registered."""


def main() -> None:
    """Run the CLI, turning every DoppelError and usage error (a missing argument, an unknown
    flag, a value that is not a number) into one line on stderr and exit code 2."""
    if len(sys.argv) == 1:
        sys.argv.append("--help")  # `doppel` alone: the list of commands
    try:
        # not standalone: usage errors are raised here rather than boxed and printed by typer
        code = app(prog_name="doppel", standalone_mode=False)
    except typer.TyperException as error:  # typer's own click: UsageError, BadParameter, ...
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} -h`)" if context else ""
        print_error(f"{error.format_message()}{hint}")
        sys.exit(getattr(error, "exit_code", 2))
    except DoppelError as error:
        print_error(error)
        sys.exit(error.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        Console(stderr=True).print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)  # a command's typer.Exit(code)
