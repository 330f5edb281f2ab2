"""One model, many chats: replies are generated one at a time, in the order chats asked, and each
message of a burst is sent as soon as the model finishes it.

A chat waits in the queue at most once, so a friend who sends ten messages gets one reply to all
ten, and the friend who wrote once meanwhile is not kept waiting behind them. A message that
arrives while the twin is answering goes into the history at once and queues the chat again: the
next reply reads it where it fell, as a person would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from doppel.bot.outgoing import Sender
from doppel.bot.people import Roster
from doppel.bot.store import UNKNOWN_MEMBER, ChatStore
from doppel.infer.engine import SamplingParams

log = logging.getLogger("doppel.bot")
UNIT_MESSAGES = 8  # messages of the chat's end one remembered exchange holds


class ReplyQueue:
    """Chats waiting for a reply, each at most once, first asked first served."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._waiting: set[int] = set()

    def request(self, chat_id: int) -> None:
        if chat_id not in self._waiting:
            self._waiting.add(chat_id)
            self._queue.put_nowait(chat_id)

    async def next(self) -> int:
        chat_id = await self._queue.get()
        self._waiting.discard(chat_id)  # from now on a new message queues the chat again
        return chat_id


class Responder:
    """Turns a chat's history into the twin's messages in that chat."""

    def __init__(self, engine, persona: str, store: ChatStore, sender: Sender,
                 params: SamplingParams, delay_per_char: float, verbose: bool = False,
                 roster: Roster | None = None) -> None:
        self.engine = engine  # doppel.infer.engine.Engine, or anything with its stream()
        self.persona = persona
        self.store = store
        self.sender = sender
        self.params = params
        self.delay_per_char = delay_per_char
        self.verbose = verbose
        # memory: the engine's recall (None: off), in scopes keyed by Telegram user id: only a
        # --friend's id reaches the dataset's memories (bot/people.py), never a name
        self.recall = getattr(engine, "recall", None)
        self.roster = roster or Roster({}, persona, persona)

    async def serve(self, queue: ReplyQueue) -> None:
        """Answer queued chats until cancelled; one failed reply never stops the others."""
        while True:
            chat_id = await queue.next()
            try:
                await self.reply(chat_id)
            except Exception as error:  # a blocked bot, a chat gone: log it, serve the next
                log.error("chat %s: reply failed: %s: %s", chat_id, type(error).__name__, error)

    async def reply(self, chat_id: int) -> None:
        window = self.store.window(chat_id)
        if not window:  # forgotten (/reset) while it waited
            return
        history = [(speaker, text) for speaker, text, _ in window]
        members = await self._members(chat_id)
        memories = await asyncio.to_thread(self._memories, chat_id, members, window)
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        messages: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(text: str | None) -> None:
            loop.call_soon_threadsafe(messages.put_nowait, text)

        worker = asyncio.ensure_future(asyncio.to_thread(self._generate, history, cancel, emit,
                                                         memories))
        sent = 0
        try:
            async with self.sender.typing(chat_id):
                last = loop.time()
                while (text := await messages.get()) is not None:
                    await asyncio.sleep(max(0.0, last + len(text) * self.delay_per_char
                                            - loop.time()))
                    await self._send(chat_id, text)
                    sent, last = sent + 1, loop.time()
            await worker  # a generation error surfaces here
        finally:
            cancel.set()  # shutdown or a failed send: stop the model within a token
            if not worker.done():
                await asyncio.wait([worker])
        log.info("chat %s: replied with %d message(s) in %.1f s", chat_id, sent,
                 time.monotonic() - started)
        if sent and self.recall is not None:  # the store is read here, on its own thread
            rows = self.store.recent(chat_id, UNIT_MESSAGES)
            await asyncio.to_thread(self._remember, chat_id, await self._members(chat_id), rows)

    # --- memory -----------------------------------------------------------------------------
    async def _members(self, chat_id: int) -> dict[int, str]:
        """Everyone the bot has seen in the chat (the store is read here, on its own thread);
        with memory on, a group Telegram counts more people in (the twin included) than that
        also holds UNKNOWN_MEMBER: someone there before the twin who never spoke, whose scope
        nobody knows, so the dataset's memories stay out of that group."""
        members = self.store.members(chat_id)
        if self.recall is None or chat_id > 0 or UNKNOWN_MEMBER in members:
            return members
        count = await self.sender.member_count(chat_id)
        if count is None or count > len(members) + 1:
            return {**members, UNKNOWN_MEMBER: "unseen member"}
        return members

    def _memories(self, chat_id: int, members: Mapping[int, str],
                  window: Sequence[tuple[str, str, float]]) -> tuple | None:
        """What the twin remembers before this reply: the dataset's chats and its own earlier
        exchanges in the scope of everyone it has seen in this chat (by Telegram user id, spoken
        lately or not), from before the history window (what is still in the window needs no
        memory). None: memory is off."""
        if self.recall is None:
            return None
        partners = self.roster.keys(members, chat_id)
        history = [(speaker, text) for speaker, text, _ in window]
        return self.recall.find(history, self.persona, partners=partners, before=window[0][2])

    def _remember(self, chat_id: int, members: Mapping[int, str],
                  rows: Sequence[tuple[int, str, str, float]]) -> None:
        """Index the chat's last messages (`rows`: ChatStore.recent) in the scope of everyone
        in the chat (`members`: ChatStore.members), so the exchange is found once it scrolls out
        of the history window, by them only."""
        from doppel.memory import NewUnit

        if not rows:
            return
        named = {self.roster.key(user, chat_id): name for user, name in members.items()}
        named.pop(self.roster.persona_key, None)
        others = [named[key] for key in sorted(named)]
        named[self.roster.persona_key] = self.persona
        keys = tuple(sorted(named))
        unit = NewUnit(conversation_id=f"bot:{chat_id}:{rows[-1][0]}", chat_id=f"bot:{chat_id}",
                       chat_name=", ".join(others) or self.persona, participants=keys,
                       start=rows[0][3], end=rows[-1][3],
                       lines=tuple((speaker, text) for _, speaker, text, _ in rows),
                       names=tuple(named[key] for key in keys))
        try:
            self.recall.add([unit])
        except Exception as error:  # a full disk must not stop the chat
            log.error("chat %s: could not remember the exchange: %s", chat_id, error)

    async def _send(self, chat_id: int, text: str) -> None:
        """Into the history first, so a message the friend sends once they see this one comes
        after it; out again if Telegram never took it (a cancelled send may have gone out: kept).
        """
        row = self.store.add(chat_id, self.persona, text)
        if self.verbose:
            log.info("chat %s: %s: %s", chat_id, self.persona, text)
        try:
            await self.sender.send(chat_id, text)
        except Exception:
            self.store.remove(row)
            raise

    def _generate(self, history: Sequence[tuple[str, str]], cancel: threading.Event,
                  emit: Callable[[str | None], None], memories: tuple | None = None) -> None:
        """In a worker thread: stream the reply, handing over each message once it is complete."""
        try:
            text, current = "", 0
            if memories is None:
                stream = self.engine.stream(history, self.persona, self.params)
            else:
                stream = self.engine.stream(history, self.persona, self.params, memories)
            with contextlib.closing(stream):
                for delta in stream:
                    if cancel.is_set():
                        return
                    if delta.message_index != current:
                        if text.strip():
                            emit(text.strip())
                        text, current = "", delta.message_index
                    text += delta.text
            if text.strip():
                emit(text.strip())
        finally:
            emit(None)
