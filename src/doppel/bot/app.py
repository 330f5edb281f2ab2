"""The bot's life: connect (bad token or unreachable server: one line), load the model, poll
Telegram, answer, and on SIGINT/SIGTERM drop the reply in progress, close the session, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from doppel.bot.client import build_application, connect
from doppel.bot.handlers import COMMANDS, Twin
from doppel.bot.logs import bot_logging
from doppel.bot.options import BotSettings
from doppel.bot.outgoing import Sender
from doppel.bot.people import Roster, people_of
from doppel.bot.replies import ReplyQueue, Responder
from doppel.bot.store import ChatStore
from doppel.errors import DoppelError

log = logging.getLogger("doppel.bot")
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
        roster = Roster.resolve(settings.friends, people_of(engine), persona)
        store = ChatStore(settings.state, settings.max_history)
        stack.callback(store.close)
        queue = ReplyQueue()
        twin = Twin(settings, persona, store, queue, roster=roster)
        stack.callback(twin.quiz.close)
        application.add_handlers(twin.handlers())
        application.add_error_handler(_log_error)
        await application.bot.set_my_commands(list(COMMANDS.items()))
        await application.start()
        stack.push_async_callback(application.stop)
        await application.updater.start_polling(allowed_updates=["message", "callback_query"],
                                                error_callback=_polling_trouble)
        stack.push_async_callback(application.updater.stop)
        sender = Sender(application.bot, settings.retry_wait_s)
        responder = Responder(engine, persona, store, sender, settings.params,
                              settings.delay_per_char, settings.verbose, roster=roster)
        task = asyncio.create_task(responder.serve(queue))
        stack.push_async_callback(_cancel, task)
        me = application.bot.bot
        log.info("@%s plays %s; %s may talk; histories in %s", me.username, persona,
                 ", ".join(map(str, sorted(settings.allow))) or "nobody yet (see the log)",
                 settings.state)
        await stop.wait()
        log.info("stopping")
    log.info("stopped")


def choose_persona(engine, settings: BotSettings) -> str:
    """Whom the twin plays: --as (by data/people.py's rule: "sam" is "Sam Carter"), else the
    run's exporting user; a run plays only its speakers."""
    name = (settings.persona or engine.default_persona).strip()
    people = people_of(engine)
    person = people.lookup(name) if people is not None else None
    name = people.label(person) if person is not None else name
    known = list(getattr(engine, "personas", []))
    if not name or not engine.can_play(name):
        raise DoppelError(f"this model cannot play {name!r}; choose --as from: {', '.join(known)}")
    return name


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.wait([task])


def _polling_trouble(error: Exception) -> None:
    """One line per failed poll (the library would log a traceback); it retries with backoff."""
    log.warning("polling Telegram failed (%s: %s); retrying", type(error).__name__, error)


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
