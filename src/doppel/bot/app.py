"""The bot's life: connect (bad token or unreachable server: one line), load the model, poll
Telegram, answer, and on SIGINT/SIGTERM drop the reply in progress, close the session, exit 0.

python-telegram-bot does the protocol: long polling with backoff on network errors, 429s waited
out by its AIORateLimiter, a custom server URL for self-hosted Bot API servers and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from telegram import Bot, Update
from telegram import __version__ as TG_VERSION
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder, ExtBot
from telegram.warnings import PTBUserWarning

from doppel.bot.handlers import COMMANDS, Twin
from doppel.bot.options import BotSettings
from doppel.bot.outgoing import Sender
from doppel.bot.replies import ReplyQueue, Responder
from doppel.bot.store import ChatStore
from doppel.errors import DoppelError

log = logging.getLogger("doppel.bot")
RATE_LIMIT_RETRIES = 5  # 429s in a row before a send is given up
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(token: str, settings: BotSettings, load_engine: Callable[[], Any]) -> None:
    """Run the bot until SIGINT or SIGTERM (the `doppel bot` command)."""
    with bot_logging(settings.verbose, token):
        asyncio.run(_until_signal(token, settings, load_engine))


async def _until_signal(token: str, settings: BotSettings, load_engine: Callable[[], Any]) -> None:
    stop = asyncio.Event()
    with stop_on_signals(asyncio.get_running_loop(), stop):
        await run_bot(token, settings, load_engine, stop)


async def run_bot(token: str, settings: BotSettings, load_engine: Callable[[], Any],
                  stop: asyncio.Event) -> None:
    """Connect, load, poll and answer until `stop` is set; everything opened is closed again."""
    application = build_application(token, settings)
    await connect(application, settings.api_url, token)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(application.shutdown)
        engine = await asyncio.to_thread(load_engine)
        persona = choose_persona(engine, settings)
        store = ChatStore(settings.state, settings.max_history)
        stack.callback(store.close)
        queue = ReplyQueue()
        application.add_handlers(Twin(settings, persona, store, queue).handlers())
        application.add_error_handler(_log_error)
        await application.bot.set_my_commands(list(COMMANDS.items()))
        await application.start()
        stack.push_async_callback(application.stop)
        await application.updater.start_polling(allowed_updates=["message"])
        stack.push_async_callback(application.updater.stop)
        sender = Sender(application.bot, settings.retry_wait_s)
        responder = Responder(engine, persona, store, sender, settings.params,
                              settings.delay_per_char, settings.verbose)
        task = asyncio.create_task(responder.serve(queue))
        stack.push_async_callback(_cancel, task)
        me = application.bot.bot
        log.info("@%s plays %s; %s may talk; histories in %s", me.username, persona,
                 ", ".join(map(str, sorted(settings.allow))) or "nobody yet (see the log)",
                 settings.state)
        await stop.wait()
        log.info("stopping")
    log.info("stopped")


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


def choose_persona(engine, settings: BotSettings) -> str:
    """Whom the twin plays: --as, else the run's exporting user; a run plays only its speakers."""
    name = (settings.persona or engine.default_persona).strip()
    known = list(getattr(engine, "personas", []))
    if not name or not engine.can_play(name):
        raise DoppelError(f"this model cannot play {name!r}; choose --as from: {', '.join(known)}")
    strangers = sorted({n for n in settings.friends.values() if known and n not in known})
    if strangers:
        log.warning("--friend names not in the run's data (the twin will not know them): %s",
                    ", ".join(strangers))
    return name


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.wait([task])


async def _log_error(update: object, context) -> None:
    """An update that failed is logged and skipped; the bot keeps running."""
    error = context.error
    log.error("update failed: %s: %s", type(error).__name__, error,
              exc_info=error if log.isEnabledFor(logging.DEBUG) else None)


@contextlib.contextmanager
def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop`; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)


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

