"""`/quiz`: the blind test of `doppel blindtest`, in Telegram. A friend gets their own items (from
chats they were part of) one at a time, taps the number of the reply they think is real, and the
answer lands in the same store as the web page's.

Only a friend the owner named (--friend ID=NAME) takes it: a first name alone could match the
wrong person in the data, and the items quote private chats.
"""

from __future__ import annotations

import logging
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from doppel.blindtest.store import BlindStore, Item
from doppel.bot.people import Friend, Roster
from doppel.data.people import People
from doppel.errors import DoppelError

log = logging.getLogger("doppel.bot")
PREFIX = "bt"  # callback data: bt:ITEM:PICK
MAX_TEXT = 3500  # Telegram allows 4096; older context lines are dropped to fit


def item_text(item: Item, persona: str, number: int, total: int) -> str:
    """The item as one message: the chat so far, then the numbered candidates."""
    options = [f"{n + 1}) " + ("\n   ".join(messages) or "(no message)")
               for n, messages in enumerate(item.candidates)]
    head = f"Which one is really {persona}'s? ({number} of {total})"
    tail = "\n\n" + "\n".join(options) + "\n\nTap the number of the real one."
    lines = [f"{speaker}: {text}" for speaker, text in item.history]
    while lines and len(head) + len("\n".join(lines)) + len(tail) > MAX_TEXT:
        lines.pop(0)
    return head + "\n\n" + "\n".join(lines) + tail


class Quiz:
    """The blind test store, opened when first asked (it may be prepared while the bot runs)."""

    def __init__(self, path: Path, roster: Roster) -> None:
        self.path = Path(path)
        self.roster = roster  # the --friend map by Telegram user id (bot/people.py)
        self._store: BlindStore | None = None
        self._people: People | bool | None = None  # the test's dataset's (False: gone)

    def store(self) -> BlindStore | None:
        if self._store is None and self.path.is_file():
            try:
                self._store = BlindStore(self.path, create=False)
            except DoppelError as error:
                log.warning("/quiz: %s", error)
        return self._store

    def friend(self, update: Update) -> Friend | None:
        return self.roster.friends.get(update.effective_user.id)

    def judge(self, update: Update) -> str | None:
        """The judge a friend answers as in the store: found by person id in the test's dataset
        (by name for a judge added before ids were kept); None for anyone else or no test."""
        friend, store = self.friend(update), self.store()
        if friend is None or store is None:
            return None
        return store.judge_of(self._person(store, friend), friend.name)

    def _person(self, store: BlindStore, friend: Friend) -> str | None:
        """The friend's person id in the dataset the test was prepared from (the --friend name
        resolved there by data/people.py's rule); None when that dataset is gone."""
        if self._people is None:
            self._people = _test_people(store)
        if self._people is False:
            return None
        if friend.person in self._people.labels:
            return friend.person
        return self._people.lookup(friend.name)

    async def ask(self, update: Update) -> None:
        """Send the judge's next unanswered item, or say why there is none."""
        await self._next(update, update.effective_message.reply_text)

    async def _next(self, update: Update, send) -> None:
        friend, judge, store = self.friend(update), self.judge(update), self.store()
        if friend is None:
            await send("The quiz is for friends the owner named; ask them to add --friend "
                       f"{update.effective_user.id}=YOUR_NAME.")
            return
        if store is None or judge is None:
            await send(f"There is no blind test for you ({friend.name}) yet.")
            return
        items = store.items(judge)
        answered = {answer.item for answer in store.answers(judge)}
        left = [n for n, item in enumerate(items) if item.id not in answered]
        if not left:
            await send(f"You have answered all {len(items)}. Thank you!")
            return
        item = items[left[0]]
        buttons = [InlineKeyboardButton(str(n + 1), callback_data=f"{PREFIX}:{item.id}:{n}")
                   for n in range(len(item.candidates))]
        await send(item_text(item, store.meta()["persona"], left[0] + 1, len(items)),
                   reply_markup=InlineKeyboardMarkup([buttons]))

    async def answer(self, update: Update) -> None:
        """A tapped button: record the pick (the first one counts), then the next item."""
        query = update.callback_query
        judge, store = self.judge(update), self.store()
        try:
            _, item_id, pick = (query.data or "").split(":")
            item = next(i for i in (store.items(judge) if store and judge else [])
                        if i.id == int(item_id))
            if not 0 <= int(pick) < len(item.candidates):
                raise ValueError(pick)
        except (ValueError, StopIteration):
            await query.answer("This button is not part of your quiz.")
            return
        recorded = store.answer(judge, item.id, int(pick), [None] * len(item.candidates),
                                "telegram")
        await query.answer("Saved." if recorded else "You had answered this one already.")
        chat = update.effective_chat.id if update.effective_chat else update.effective_user.id

        async def send(text: str, **kwargs) -> None:
            await update.get_bot().send_message(chat, text, **kwargs)

        await self._next(update, send)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _test_people(store: BlindStore) -> People | bool:
    """The people of the dataset a blind test was prepared from; False when it is gone."""
    from doppel.data.dataset import load_dataset

    path = store.meta().get("dataset")
    try:
        return People.of_manifest(load_dataset(Path(path)).manifest) if path else False
    except DoppelError:
        return False
