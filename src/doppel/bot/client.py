"""Talking to a Bot API server: python-telegram-bot does the protocol (long polling with backoff
on network errors, 429s waited out by its AIORateLimiter, a custom server URL for self-hosted Bot
API servers and tests); here are the settings, the start-up errors in the owner's words, and one
gap filled (an update it cannot read)."""

from __future__ import annotations

import logging
import warnings

from telegram import Bot, Update
from telegram import __version__ as TG_VERSION
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder, ExtBot
from telegram.warnings import PTBUserWarning

from doppel.bot.options import BotSettings
from doppel.errors import DoppelError

log = logging.getLogger("doppel.bot")
RATE_LIMIT_RETRIES = 5  # 429s in a row before a send is given up


def build_application(token: str, settings: BotSettings):
    api = settings.api_url.rstrip("/")
    bot = TolerantBot(token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot",
                      rate_limiter=AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
    return ApplicationBuilder().bot(bot).build()


class TolerantBot(ExtBot):
    """An ExtBot that skips an update it cannot read instead of fetching it forever.

    python-telegram-bot parses a whole getUpdates batch at once; one update it cannot read (a
    field its version requires and the server left out) fails the batch, and its Updater logs
    and asks again for the same offset, in a loop. Here the batch is fetched again raw and each
    unreadable update becomes an empty one, so the offset moves past it.
    """

    async def get_updates(self, offset=None, limit=None, timeout=None, allowed_updates=None,
                          **kwargs):
        try:
            return await super().get_updates(offset, limit, timeout, allowed_updates, **kwargs)
        except TelegramError:
            raise
        except Exception:
            query = {"offset": offset, "limit": limit, "allowed_updates": allowed_updates}
            with warnings.catch_warnings():  # "use get_updates": that is what failed
                warnings.simplefilter("ignore", PTBUserWarning)
                raw = await self.do_api_request("getUpdates", api_kwargs={
                    key: value for key, value in query.items() if value is not None})
            return tuple(_readable(item, self) for item in raw)


def _readable(item: dict, bot: Bot) -> Update:
    try:
        return Update.de_json(item, bot)
    except Exception as error:
        log.warning("skipped update %s that python-telegram-bot %s cannot read (%s)",
                    item.get("update_id"), TG_VERSION, type(error).__name__)
        return Update(item["update_id"])


async def connect(application, api_url: str, token: str) -> None:
    """getMe, with the ways it fails worded for the owner. Telegram's own wording of a rejected
    token quotes the token, so only ours is shown."""
    from telegram.error import InvalidToken, NetworkError, TelegramError

    try:
        await application.initialize()
    except InvalidToken:
        raise DoppelError(f"the Bot API at {api_url} rejected the token; copy it again from "
                          "@BotFather (/token)") from None
    except NetworkError as error:
        raise DoppelError(f"cannot reach the Bot API at {api_url} ({_redact(error, token)}); "
                          "check --api-url and the network") from None
    except TelegramError as error:
        raise DoppelError(f"the Bot API at {api_url} answered getMe with an error: "
                          f"{_redact(error, token)}") from None


def _redact(error: Exception, token: str) -> str:
    return str(error).replace(token, "<token>")
