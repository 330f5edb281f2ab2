"""The bot's log: doppel's lines and libraries' warnings on stderr, never the token, and no
message text unless --verbose."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator


class _Redacting(logging.Formatter):
    """Whatever a library logs (a URL, an exception), the token never reaches the log; nor,
    without --verbose, the data python-telegram-bot quotes (an update it cannot parse)."""

    def __init__(self, token: str, verbose: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        self.token = token
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if not self.verbose and record.name.startswith("telegram") and record.args:
            record = logging.makeLogRecord({**record.__dict__, "args": None,
                                            "msg": f"{record.msg} (data not shown)"})
        return super().format(record).replace(self.token, "<token>")  # reprs hold it too


@contextlib.contextmanager
def bot_logging(verbose: bool, token: str) -> Iterator[None]:
    """doppel's log lines (and libraries' warnings) on stderr while the bot runs. httpx logs
    every request URL, which holds the token: it stays at WARNING even with --verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Redacting(token, verbose))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("doppel.bot", "httpx", "httpcore")}
    root.addHandler(handler)
    logging.getLogger("doppel.bot").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
