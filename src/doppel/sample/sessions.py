"""One conversation (session) of the sample export: greetings, a topic or two, media, goodbye.

A session is a list of `Line`s with gaps in seconds; the generator places them on the calendar
and gives them Telegram ids. Each turn is a burst of one or more messages by one person.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from doppel.sample.personas import Person, Style
from doppel.sample.topics import SLOTS_EN, SLOTS_RU, TOPICS_EN, TOPICS_RU, bind, fill, vary

PHOTO_TOPICS = ("food", "travel", "weekend", "fitness")
FORWARDS = {
    "en": [("Tech Insider", "Apple is reportedly working on a foldable iPad for 2026. "
                            "<link:https://techinsider.example.com/foldable-ipad>"),
           ("Daily Memes", "Me: I'll go to bed early tonight.\nAlso me at 3 am: one more episode."),
           ("City Events", "<bold:This weekend>: open air cinema in the park, free entry. "
                           "Details: <link:https://cityevents.example.com/cinema>"),
           ("The Food Lab",
            "The secret to crispy potatoes is a spoon of baking soda in the water."),
           ("Space Facts", "A day on Venus is longer than its year."),
           ("Daily Memes", "Nobody:\nAbsolutely nobody:\nMy cat at 4 am: zoomies.")],
    "ru": [("Мемы каждый день",
            "Когда сказал, что на минутку зайдёшь в магазин, а вышел с тремя пакетами."),
           ("IT Новости", "Вышла новая версия Python, обещают ускорение на 20%. "
                          "<link:https://itnews.example.ru/python>"),
           ("Афиша города", "<bold:В субботу>: бесплатный концерт в парке Горького.")],
}


@dataclass(eq=False)
class Line:
    """One exported message or service event, before it has a date and an id."""

    speaker: Person
    kind: str = "text"  # text photo sticker voice gif forward call pin create_group invite
    text: str = ""  # markup (see textparts); a photo's caption
    gap: float = 0.0  # seconds after the previous line of the chat
    reply_to: Line | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    time: int = 0
    id: int = 0


@dataclass
class ChatPlan:
    """A chat to generate: who is in it, which language, how often they talk."""

    id: int
    name: str
    type: str
    lang: str
    members: list[Person]  # the exporting user first
    rate: float  # sessions per day
    weights: list[float]  # how talkative each member is (group chats)
    specials: list[list[tuple[str, str]]] = field(default_factory=list)  # scripted exchanges


def reply_gap(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.6:
        return rng.uniform(8, 90)
    return rng.uniform(90, 600) if roll < 0.92 else rng.uniform(600, 3600)


def burst_gap(rng: random.Random, text: str) -> float:
    return rng.uniform(2, 8) + 0.2 * len(text)


class Session:
    """Builds one session line by line; `run` is the whole script."""

    def __init__(self, rng: random.Random, chat: ChatPlan) -> None:
        self.rng = rng
        self.chat = chat
        self.lines: list[Line] = []
        self.topics = TOPICS_RU if chat.lang == "ru" else TOPICS_EN
        self.slots = SLOTS_RU if chat.lang == "ru" else SLOTS_EN
        self.topic = "weekend"
        self.bound: dict[str, str] = {}
        self.question: Line | None = None  # the open question a reply may quote
        self.used: set[str] = set()  # templates said already (only looked up, never iterated)

    def style(self, person: Person) -> Style:
        return person.styles[self.chat.lang]

    def add(self, line: Line, slow: bool) -> Line:
        previous = self.lines[-1] if self.lines else None
        if previous is None:
            line.gap = 0.0
        elif slow or previous.speaker is not line.speaker:
            line.gap = reply_gap(self.rng)
        else:
            line.gap = burst_gap(self.rng, line.text)
        self.lines.append(line)
        return line

    def say(self, speaker: Person, texts: list[str], reply_to: Line | None = None) -> list[Line]:
        lines = [self.add(Line(speaker, text=text), slow=i == 0) for i, text in enumerate(texts)]
        if reply_to is not None:
            lines[0].reply_to = reply_to
        return lines

    def phrase(self, speaker: Person, key: str) -> list[Line]:
        return self.say(speaker, [self.style(speaker).phrase(key, self.rng)])

    def pick(self, templates: list[str]) -> str:
        """A template not yet used in this session, if one turns up in a few tries."""
        for _ in range(4):
            template = self.rng.choice(templates)
            if template not in self.used:
                break
        self.used.add(template)
        return template

    def content(self, speaker: Person, intent: str) -> list[str]:
        style = self.style(speaker)
        bank = self.topics[self.topic]
        if style.terse:
            text = fill(self.pick(bank["terse"]), self.slots, self.bound, self.rng)
        else:
            template = vary(self.pick(bank[intent]), self.chat.lang, self.rng, intent)
            text = fill(template, self.slots, self.bound, self.rng)
        return style.say(text, self.rng, self.topic)

    def turn(self, speaker: Person, intent: str) -> None:
        """One burst by `speaker`: topic content, or a stock reaction, plus maybe some media."""
        style = self.style(speaker)
        if intent in ("react", "agree") and not (style.terse and self.rng.random() < 0.6):
            texts = [style.phrase(intent, self.rng)]
            if self.rng.random() < 0.4:
                texts += self.content(speaker, "detail")
        else:
            texts = self.content(speaker, intent)
        quoting = self.question if intent == "answer" else None
        if quoting is not None and quoting.speaker is not speaker:
            group = self.chat.type != "personal_chat"
            if not self.rng.random() < (0.35 if group else 0.12):
                quoting = None
        lines = self.say(speaker, texts, quoting)
        self.question = lines[-1] if intent in ("question", "intro") else None
        self.media(speaker)

    def media(self, speaker: Person) -> None:
        rng, rates, style = self.rng, speaker.rates, self.style(speaker)
        if style.stickers and rng.random() < rates.get("sticker", 0.0):
            self.add(Line(speaker, "sticker", extra={"emoji": rng.choice(style.stickers)}), False)
        if rng.random() < rates.get("voice", 0.0):
            self.add(Line(speaker, "voice", extra={"duration": rng.randint(3, 95)}), False)
        if rng.random() < rates.get("gif", 0.0):
            self.add(Line(speaker, "gif", extra={"duration": rng.randint(2, 6)}), False)
        if self.topic in PHOTO_TOPICS and rng.random() < 0.06:
            caption = self.content(speaker, "detail")[0] if rng.random() < 0.5 else ""
            self.add(Line(speaker, "photo", text=caption, extra=_photo_size(rng)), False)

    def next_speaker(self, current: Person, cast: list[Person]) -> Person:
        others = [p for p in cast if p is not current]
        if len(others) == 1:
            return others[0]
        weights = [self.chat.weights[self.chat.members.index(p)] for p in others]
        return self.rng.choices(others, weights)[0]

    def greet(self, opener: Person, cast: list[Person]) -> None:
        kind = self.rng.choices(["hello", "whatsup", "none"], [55, 30, 15])[0]
        if kind == "none":
            return
        self.phrase(opener, kind)
        answering = [p for p in cast if p is not opener][: self.rng.randint(1, 3)]
        for friend in answering:
            self.phrase(friend, "reply_" + kind)
        if kind == "hello" and self.rng.random() < 0.35:
            self.phrase(opener, "whatsup")
            self.phrase(answering[0], "reply_whatsup")
            kind = "whatsup"
        if kind == "whatsup" and self.rng.random() < 0.6:
            self.phrase(opener, "status")

    def discuss(self, opener: Person, cast: list[Person]) -> Person:
        self.topic = self.rng.choice(list(self.topics))
        self.bound = bind(self.slots, self.rng)
        speaker = opener
        self.turn(speaker, "intro")
        for _ in range(self.rng.randint(4, 9)):
            speaker = self.next_speaker(speaker, cast)
            if self.question is not None:
                intent = "answer"
            else:
                intent = self.rng.choices(["question", "detail", "react", "agree"], [3, 4, 2, 1])[0]
            self.turn(speaker, intent)
        return speaker

    def forward(self, speaker: Person, friend: Person) -> None:
        source, text = self.rng.choice(FORWARDS[self.chat.lang])
        self.add(Line(speaker, "forward", text=text, extra={"from": source}), True)
        self.phrase(friend, "react")

    def scripted(self, exchange: list[tuple[str, str]]) -> None:
        """A hand-written exchange (a phone number, a pinned plan...) that must appear verbatim."""
        cast = {p.key: p for p in self.chat.members}
        for key, text in exchange:
            if key == "pin":
                self.add(Line(self.lines[-1].speaker, "pin", reply_to=self.lines[-1]), False)
            else:
                self.add(Line(cast[key], text=text), self.lines[-1].speaker is not cast[key])

    def close(self, last: Person, cast: list[Person]) -> None:
        other = self.next_speaker(last, cast)
        roll = self.rng.random()
        if self.chat.type == "personal_chat" and roll < 0.08:
            actor = self.rng.choice([last, other])
            missed = self.rng.random() < 0.25
            extra = {"reason": "missed"} if missed else {
                "reason": "hangup", "duration": self.rng.randint(20, 1800)}
            self.add(Line(actor, "call", extra=extra), True)
        elif roll < 0.55:
            self.phrase(last, "bye")
            if self.rng.random() < 0.6:
                self.phrase(other, "bye")


def build_session(rng: random.Random, chat: ChatPlan,
                  scripted: list[tuple[str, str]] | None = None) -> list[Line]:
    """The lines of one conversation in `chat` (its first member is the exporting user)."""
    session = Session(rng, chat)
    me, friends = chat.members[0], chat.members[1:]
    if len(friends) == 1:
        cast = [me, friends[0]]
    else:
        cast = [me, *rng.sample(friends, rng.randint(2, len(friends)))]
    opener = me if rng.random() < 0.45 else rng.choice(cast[1:])
    session.greet(opener, [opener] + [p for p in cast if p is not opener])
    last = session.discuss(opener, cast)
    if rng.random() < 0.3:
        last = session.discuss(session.next_speaker(last, cast), cast)
    if rng.random() < 0.06:
        session.forward(last, session.next_speaker(last, cast))
    if scripted:
        session.scripted(scripted)
        last = session.lines[-1].speaker
    session.close(last, cast)
    return session.lines


def _photo_size(rng: random.Random) -> dict[str, int]:
    wide = rng.random() < 0.6
    return {"width": 1280 if wide else 960, "height": 960 if wide else 1280}
