"""Sending by Telegram's rules: texts cut to 4096 characters, "typing..." kept alive while the twin
thinks, network errors retried with backoff. 429s are the rate limiter's job (app.py), not ours."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from telegram import Bot
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, NetworkError, TelegramError

log = logging.getLogger("doppel.bot")
T = TypeVar("T")
TYPING_EVERY_S = 4.5  # Telegram shows "typing..." for 5 s per sendChatAction
SEND_ATTEMPTS = 4


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Pieces of at most `limit` UTF-16 units (Telegram's measure), cut at a line break or a space
    when one is in the second half of the piece."""
    pieces = []
    while _units(text) > limit:
        cut = _fit(text, limit)
        gap = max(text.rfind("\n", 0, cut), text.rfind(" ", 0, cut))
        if gap > cut // 2:
            cut = gap
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text else pieces


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The longest prefix length within `limit` UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


class Sender:
    """The bot's voice: messages and chat actions, each retried through network trouble."""

    def __init__(self, bot: Bot, retry_wait_s: float = 1.0) -> None:
        self.bot = bot
        self.retry_wait_s = retry_wait_s

    async def send(self, chat_id: int, text: str) -> None:
        for piece in split_text(text):
            await self._retry(lambda piece=piece: self.bot.send_message(chat_id, piece))

    async def member_count(self, chat_id: int) -> int | None:
        """How many members a group has, the twin and any other bot included; None when
        Telegram does not say (the caller then assumes members it has not seen)."""
        try:
            return int(await self.bot.get_chat_member_count(chat_id))
        except TelegramError as error:
            log.info("chat %s: member count unknown: %s", chat_id, error)
            return None

    @contextlib.asynccontextmanager
    async def typing(self, chat_id: int) -> AsyncIterator[None]:
        """Show "typing..." in the chat for as long as the block runs."""
        task = asyncio.create_task(self._keep_typing(chat_id))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])  # unlike `await task`, never swallows our own cancel

    async def _keep_typing(self, chat_id: int) -> None:
        while True:
            try:
                await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramError as error:  # cosmetic: a lost "typing..." is not worth a retry
                log.debug("typing indicator failed: %s", error)
            await asyncio.sleep(TYPING_EVERY_S)

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry network errors with doubling waits. A timeout may have delivered the message
        anyway; a rare duplicate beats a lost reply."""
        wait = self.retry_wait_s
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await call()
            except BadRequest:
                raise
            except NetworkError as error:
                if attempt == SEND_ATTEMPTS:
                    raise
                log.warning("network error (%s); retrying in %.0f s", error, wait)
                await asyncio.sleep(wait)
                wait *= 2
        raise AssertionError("unreachable")
