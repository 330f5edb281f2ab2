"""`doppel bot RUN_DIR --token-file FILE`: the twin answers in Telegram."""

from __future__ import annotations

import logging

from doppel.bot.options import BotOptions
from doppel.options import command_from_options


@command_from_options
def command(options: BotOptions) -> None:
    """Run the twin as a Telegram bot (long polling; stop it with Ctrl-C or SIGTERM)."""
    from doppel.bot.app import serve
    from doppel.bot.options import BotSettings, read_token
    from doppel.infer import options as opt

    token = read_token(options.token_file)
    say = logging.getLogger("doppel.bot").info
    serve(token, BotSettings.from_options(options),
          lambda: opt.load_engine(options.load, options.recall, say))
