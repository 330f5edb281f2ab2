"""The one error type users see: a one-line message and exit code 2, never a traceback."""


class DoppelError(Exception):
    """A problem with the user's input or environment, worded as what went wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
