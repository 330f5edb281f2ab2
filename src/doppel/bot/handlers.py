"""What the bot does with each update: who may talk, the slash commands, and which messages go
into a chat's history and ask for a reply. Generation itself happens in replies.py."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from doppel.bot.incoming import addressed, display, message_text, speaker_name, without_mention
from doppel.bot.options import BotSettings
from doppel.bot.people import Roster
from doppel.bot.quiz import PREFIX, Quiz
from doppel.bot.replies import ReplyQueue
from doppel.bot.store import ChatStore

log = logging.getLogger("doppel.bot")
Context = ContextTypes.DEFAULT_TYPE

COMMANDS = {  # shown by Telegram's command menu (setMyCommands) and by /help
    "start": "who the twin is",
    "help": "this list",
    "reset": "forget this chat's history",
    "whoami": "the name the twin knows you by",
    "quiz": "which one is real? a blind test of the twin",
}
REFUSAL = ("Sorry, this twin only talks to people its owner has let in. If you know them, send "
           "them your Telegram id: {id}.")


class Twin:
    """The handlers' shared state: settings, persona, histories and the reply queue."""

    def __init__(self, settings: BotSettings, persona: str, store: ChatStore,
                 queue: ReplyQueue, quiz: Quiz | None = None, roster: Roster | None = None
                 ) -> None:
        self.settings = settings
        # who is who by Telegram user id (bot/people.py); without one, --friend names as given
        self.roster = roster or Roster.resolve(settings.friends, None, persona)
        self.quiz = quiz or Quiz(settings.quiz, self.roster)
        self.persona = persona
        self.store = store
        self.queue = queue
        self._logged_refusals: set[int] = set()

    def handlers(self) -> list[BaseHandler]:
        """New messages only: edits, joins, reactions and update types we do not know pass by."""
        new = filters.UpdateType.MESSAGE
        commands = [CommandHandler(name, getattr(self, f"on_{name}"), filters=new)
                    for name in COMMANDS]
        return [*commands, MessageHandler(new & ~filters.COMMAND, self.on_message),
                CallbackQueryHandler(self.on_quiz_answer, pattern=f"^{PREFIX}:")]

    # --- who may talk -----------------------------------------------------------------------
    async def admitted(self, update: Update) -> bool:
        """Allowed ids talk; in groups, everyone if the group's id is allowed. A stranger is
        logged once per run (with the id to allow) and, in a private chat, told once ever."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None or user.is_bot or chat.type == ChatType.CHANNEL:
            return False
        private = chat.type == ChatType.PRIVATE
        if not private and self.settings.groups == "off":
            return False
        if not private:  # whoever is in a group hears the twin: they count in its scope
            self.store.seen(chat.id, user.id, self.speaker(update))
        allow = self.settings.allow
        if user.id in allow or (not private and chat.id in allow):
            return True
        if user.id not in self._logged_refusals:
            self._logged_refusals.add(user.id)
            where = "" if private else f" in group {chat.id}"
            log.warning("refused user %s (%s)%s: add --allow %s to let them talk", user.id,
                        display(user), where, user.id)
        if private and self.store.first_refusal(user.id, user.full_name):
            await update.effective_message.reply_text(REFUSAL.format(id=user.id))
        return False

    def speaker(self, update: Update) -> str:
        return speaker_name(update.effective_user, self.roster.names(), self.persona)

    # --- messages ---------------------------------------------------------------------------
    async def on_message(self, update: Update, context: Context) -> None:
        message = update.message
        if message is not None:
            self.joined(message)
        if message is None or not await self.admitted(update):
            return
        text = message_text(message)
        if text is None:
            return
        chat = message.chat
        me = context.bot.bot
        answer = True
        if chat.type != ChatType.PRIVATE:
            answer = self.settings.groups == "always" or addressed(message, me)
            text = without_mention(text, me)
        speaker = self.speaker(update)
        self.store.add(chat.id, speaker, text, update.effective_user.id)
        if self.settings.verbose:
            log.info("chat %s: %s: %s", chat.id, speaker, text)
        if answer:
            self.queue.request(chat.id)

    def joined(self, message) -> None:
        """People added to a group are in it from now on, spoken or not."""
        if message.chat.type == ChatType.PRIVATE or self.settings.groups == "off":
            return
        for user in message.new_chat_members or ():
            if not user.is_bot:
                self.store.seen(message.chat.id, user.id,
                                speaker_name(user, self.roster.names(), self.persona))

    # --- commands ---------------------------------------------------------------------------
    async def on_start(self, update: Update, context: Context) -> None:
        if await self.admitted(update):
            await update.message.reply_text(
                f"Hi {self.speaker(update)}! I am {self.persona}'s twin, a language model that "
                f"learned to chat from {self.persona}'s messages. Write as you would to "
                f"{self.persona}. /help lists the commands.")

    async def on_help(self, update: Update, context: Context) -> None:
        if await self.admitted(update):
            await update.message.reply_text(
                "\n".join(f"/{name} - {what}" for name, what in COMMANDS.items()))

    async def on_reset(self, update: Update, context: Context) -> None:
        if await self.admitted(update):
            gone = self.store.reset(update.effective_chat.id)
            log.info("chat %s: history reset (%d messages)", update.effective_chat.id, gone)
            await update.message.reply_text(f"I forgot this chat ({gone} messages).")

    async def on_whoami(self, update: Update, context: Context) -> None:
        if await self.admitted(update):
            await update.message.reply_text(f"I know you as {self.speaker(update)} (Telegram id "
                                            f"{update.effective_user.id}).")

    async def on_quiz(self, update: Update, context: Context) -> None:
        if await self.admitted(update) and update.effective_chat.type == ChatType.PRIVATE:
            await self.quiz.ask(update)

    async def on_quiz_answer(self, update: Update, context: Context) -> None:
        if await self.admitted(update):
            await self.quiz.answer(update)
