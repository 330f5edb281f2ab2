"""The one error type users see: a one-line message and exit code 2, never a traceback."""


class DoppelError(Exception):
    """A problem with the user's input or environment, worded as what went wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def print_error(message: object) -> None:
    """The one-line form every DoppelError takes on stderr."""
    from rich.console import Console
    from rich.markup import escape

    # escaped: a message may hold brackets (`pip install 'doppel[llama]'`, a path) that are text
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(message))}", highlight=False,
                               soft_wrap=True)
