"""The people of the sample export and their strongly distinctive, learnable writing styles.

Each style turns a neutral sentence into that person's burst of messages, and has its own stock
phrases (how they greet, answer "what's up?", react, agree, say bye). Alex Morgan, the exporting
user, writes short lowercase bursts ("heyy", "not much lol, you?"); the friends are a long-sentence
writer, a Russian speaker, an ALL-CAPS shouter, a terse one and an emoji lover.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from doppel.sample.textparts import styled
from doppel.sample.topics import TOPIC_EMOJI, lower_first

Voice = Callable[[str, random.Random, str], list[str]]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _led(text: str) -> bool:
    """Whether a sentence already opens with a lead-in ("Also, ...", "Кстати, ...")."""
    return "," in text[:14]


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def combos(heads: list[str], tails: list[str]) -> list[str]:
    """Every head with every tail: a stock reaction that still varies ("lol", "no way lol")."""
    return [h + t for h in heads for t in tails if not t.strip() or t.strip() not in h]


@dataclass(eq=False)
class Style:
    """How one person writes in one language."""

    lang: str
    voice: Voice
    phrases: dict[str, list[str]]
    stickers: list[str]
    pad: float = 0.0  # chance that a one-message turn gets a stock reaction next to it
    terse: bool = False  # answers from the topics' terse templates

    def phrase(self, key: str, rng: random.Random) -> str:
        return rng.choice(self.phrases[key])

    def say(self, text: str, rng: random.Random, topic: str) -> list[str]:
        """A burst of messages saying `text` (already filled markup) in this style."""
        burst = styled(text, lambda t: self.voice(t, rng, topic))
        if len(burst) == 1 and rng.random() < self.pad:
            react = self.phrase("react", rng)
            burst = [react, *burst] if rng.random() < 0.5 else [*burst, react]
        return burst


@dataclass(eq=False)
class Person:
    key: str
    user_id: int
    first_name: str
    last_name: str
    username: str
    phone: str
    styles: dict[str, Style] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)  # sticker, voice, gif per turn

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def from_id(self) -> str:
        return f"user{self.user_id}"


# --- voices: neutral sentence -> burst -------------------------------------------------------

_ALEX_SWAPS = [("going to", "gonna"), ("want to", "wanna"), ("kind of", "kinda"),
               ("i don't know", "idk"), ("to be honest", "tbh"), ("i am ", "im "),
               ("you are", "ur"), ("really", "rly"), ("tomorrow", "tmrw"), ("because", "bc")]
_ALEX_SUFFIX = [" lol", " lol", " haha", " 😂", " 🙃", " lmao", " lol 😂", " haha 🙃", " tbh"]
_ALEX_PREFIX = ["ngl ", "honestly ", "lowkey ", "wait ", "omg ", "also ", "btw ", "ok so "]
_ALEX_RU_SUFFIX = [" лол", " ахах", " 😂", " 🙃", " ахахах", " лол 😂"]
_ALEX_RU_PREFIX = ["кстати ", "блин ", "короче ", "слушай ", "ну "]


def _lower_burst(text: str, rng: random.Random, prefixes: list[str], suffixes: list[str]
                 ) -> list[str]:
    """Alex: lowercase, no apostrophes, no final punctuation, a laugh or emoji tacked on."""
    out = []
    for sentence in sentences(text.lower().replace("'", "").replace("’", "")):
        sentence = sentence.rstrip(".!")
        if sentence.endswith("?") and rng.random() < 0.5:
            sentence = sentence[:-1]
        out.append(sentence.replace(", ", " ") if rng.random() < 0.3 else sentence)
    if rng.random() < 0.4:
        out[-1] += rng.choice(suffixes)
    if rng.random() < 0.2 and not _led(out[0]):
        out[0] = rng.choice(prefixes) + out[0]
    return out


def alex_en(text: str, rng: random.Random, topic: str) -> list[str]:
    lowered = text.lower()
    for long, short in _ALEX_SWAPS:
        lowered = lowered.replace(long, short)
    return _lower_burst(lowered, rng, _ALEX_PREFIX, _ALEX_SUFFIX)


def alex_ru(text: str, rng: random.Random, topic: str) -> list[str]:
    return _lower_burst(text, rng, _ALEX_RU_PREFIX, _ALEX_RU_SUFFIX)


_SAM_PREFIX = ["Honestly, ", "To be fair, ", "I have to say, ", "Well, ", "Funnily enough, ",
               "As it happens, ", "Oh, ", "You know, "]
_SAM_MORE = [
    "I have been thinking about it all week, to be honest.",
    "Let me know what you think when you have a moment.",
    "It is funny how these things work out, isn't it?",
    "I would really value your opinion on this.",
    "Anyway, I hope your week is going well so far.",
    "I suppose we will see how it goes.",
    "It reminded me of the time we got lost on the way back from the lake.",
    "Either way, I am quite looking forward to it.",
    "My sister keeps telling me I overthink these things, and she may well be right.",
    "I should probably write that down before I forget.",
    "That said, I am open to other suggestions, of course.",
    "It has been a long week, so I could use something to look forward to.",
    "I read an article about it yesterday, which was rather interesting.",
    "Perhaps we can talk about it properly over coffee.",
    "I realise that might sound a little dramatic, but I mean it.",
    "There is no rush at all, so take your time.",
    "I did not expect that, if I am completely honest with you.",
    "We should really do this more often, you and I.",
]


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def sam(text: str, rng: random.Random, topic: str) -> list[str]:
    """Sam: whole, properly punctuated sentences, strung into one long message."""
    parts = [_sentence_case(s) for s in sentences(text)]
    if rng.random() < 0.35 and not _led(parts[0]):
        parts[0] = rng.choice(_SAM_PREFIX) + lower_first(parts[0])
    for chance in (0.65, 0.2):
        if rng.random() < chance:
            parts.append(rng.choice([m for m in _SAM_MORE if m not in parts]))
    if len(parts) > 2 and rng.random() < 0.15:
        return [" ".join(parts[:-1]), parts[-1]]
    return [" ".join(parts)]


_JAKE_PREFIX = ["DUDE ", "BRO ", "YO ", "MAN ", "OK ", "OMG "]


def _shout(sentence: str, rng: random.Random) -> str:
    sentence = sentence.upper().rstrip(".!")
    if rng.random() < 0.15 and not sentence.endswith("?"):
        sentence += rng.choice([" LOL", " HAHA", " MAN", " BRO", " FOR REAL"])
    if sentence.endswith("?"):
        return sentence + rng.choice(["!!", "??", "!!!"])
    return sentence + rng.choice(["!!!", "!!!", "!!!!"])


def jake(text: str, rng: random.Random, topic: str) -> list[str]:
    """Jake: ALL CAPS, every sentence ends in "!!!", often one sentence per message."""
    shouted = [_shout(s, rng) for s in sentences(text)]
    if rng.random() < 0.25:
        shouted[0] = rng.choice(_JAKE_PREFIX) + shouted[0]
    return shouted if rng.random() < 0.6 else [" ".join(shouted)]


def nora(text: str, rng: random.Random, topic: str) -> list[str]:
    """Nora: a word or two and a full stop (her text already comes from terse templates)."""
    text = text.strip()
    return [text if text.endswith((".", "?")) else text + "."]


_PRIYA_EMOJI = ["😍", "😂", "🙌", "✨", "😭", "💕", "🥰", "🔥", "🤩", "😊", "💃", "🌸"]


def _emojis(rng: random.Random, topic: str) -> str:
    pool = TOPIC_EMOJI.get(topic, []) + _PRIYA_EMOJI
    return "".join(rng.choice(pool) for _ in range(rng.choice([1, 2, 2, 3])))


def priya(text: str, rng: random.Random, topic: str) -> list[str]:
    """Priya: emoji after every sentence, stretched words, double exclamation marks."""
    out = []
    for sentence in sentences(text):
        if rng.random() < 0.5:
            sentence = lower_first(sentence)
        sentence = sentence.replace(" so ", " sooo ").replace("!", "!!").rstrip(".")
        out.append(f"{sentence} {_emojis(rng, topic)}")
    return out if rng.random() < 0.5 else [" ".join(out)]


_DIMA_PREFIX = ["Слушай, ", "Кстати, ", "Короче, ", "Ну ", "Блин, ", "Так, ", "Вообще, "]


def _dima_end(sentence: str, rng: random.Random) -> str:
    if not sentence.endswith("."):
        return sentence
    roll = rng.random()
    if roll < 0.3:
        return sentence[:-1] + ")"
    if roll < 0.4:
        return sentence[:-1] + ")))"
    return sentence if roll < 0.7 else sentence[:-1]


def dima(text: str, rng: random.Random, topic: str) -> list[str]:
    """Dima: proper Russian sentences, a ")" smile in place of many full stops."""
    out = [_dima_end(s, rng) for s in sentences(text)]
    if rng.random() < 0.35 and not _led(out[0]):
        out[0] = rng.choice(_DIMA_PREFIX) + out[0][:1].lower() + out[0][1:]
    return out if rng.random() < 0.4 else [" ".join(out)]


# --- the people ------------------------------------------------------------------------------

ALEX_EN = Style("en", alex_en, {
    "hello": ["heyy", "heyy", "heyy", "yo", "hii", "heyy 🙃"],
    "whatsup": ["heyy whats up", "yo whats up", "heyy hows it going", "heyy whats up?"],
    "reply_hello": ["heyy", "heyy", "heyy", "heyy 🙃", "hii", "yo", "heyy whats up"],
    "reply_whatsup": ["not much lol, you?", "not much lol, you?", "not much lol, you?",
                      "not much haha, you?", "nm lol, you?", "not much lol, just chilling. you?"],
    "status": combos(["same", "just got home", "just chilling", "bored", "tired ngl",
                      "nothing much, just work", "eating", "procrastinating as usual",
                      "watching youtube", "lying in bed"], [" lol", " haha", " 🙃", ""]),
    "react": combos(["lol", "haha", "lmao", "omg", "wait", "no way", "fr", "true", "same",
                     "yeah", "oof", "nice", "damn", "ngl thats wild", "haha yeah", "ok wait"],
                    ["", "", " lol", " haha", " 😂", " 🙃"]),
    "agree": combos(["yeah", "ok bet", "sounds good", "im down", "yess", "deal", "ok cool",
                     "works for me", "im in", "sure"], ["", " lol", " haha", " 🙃"]),
    "bye": combos(["ok cya", "gtg", "night", "talk later", "ok ttyl", "cya", "ok night",
                   "ok gtg", "bye"], ["", " lol", " haha", " 🙃", " 😂"]),
}, stickers=["😂", "🙃", "👍", "😅", "🤷"], pad=0.3)

ALEX_RU = Style("ru", alex_ru, {
    "hello": ["привеет", "привеет", "хай", "приветик", "привет 🙃"],
    "whatsup": ["привеет как дела", "как ты", "привет, как оно", "привеет как ты?"],
    "reply_hello": ["привеет", "привеет", "хай", "приветик 🙃"],
    "reply_whatsup": ["да норм лол, ты как?", "да норм лол, ты как?",
                      "ничего особенного лол, ты как?", "норм ахах, ты как?"],
    "status": ["да тоже норм", "только домой пришел", "валяюсь лол", "работаю 🙃",
               "да ничего, устал немного"],
    "react": combos(["ахах", "лол", "ахахах", "жесть", "да ладно", "серьезно", "ну да", "капец",
                     "круто", "понял", "ого", "ну класс"], ["", "", " лол", " 😂", " 🙃"]),
    "agree": combos(["давай", "го", "ок давай", "я за", "договорились", "давай го"],
                    ["", " лол", " 🙃"]),
    "bye": combos(["давай, пока", "ок до связи", "спокойной", "ладно, пока", "пока"],
                  ["", " лол", " 🙃", " 😂"]),
}, stickers=["😂", "🙃", "👍"], pad=0.3)

SAM = Style("en", sam, {
    "hello": ["Hey Alex!", "Hi Alex, how are you?", "Hello Alex! I hope you are well."],
    "whatsup": ["Hey Alex, what's up?", "Hi! What's up with you these days?",
                "Hey, how are you doing?"],
    "reply_hello": ["Hi Alex! How are you doing?", "Hey! Good to hear from you.",
                    "Hello! I was just about to message you, actually."],
    "reply_whatsup": [
        "Not much, honestly. I have just finished work and I am making some tea. How about you?",
        "Nothing special, I am just reading on the sofa. What about you?",
        "Not a lot, to be honest. It has been a quiet day. How are things with you?"],
    "status": ["Not much either, I am just catching up on emails.",
               "I am fine, thank you. It has been a long day, but a good one.",
               "All good here, I have just come back from a walk by the river."],
    "react": ["Ha, that is genuinely funny, I have to admit.", "Oh, that sounds wonderful.",
              "I completely agree with you on that.",
              "That is a fair point, I had not thought of it that way.",
              "Oh no, I am sorry to hear that.", "That is brilliant, well done.",
              "Really? I would never have guessed."],
    "agree": ["That sounds like a great plan to me.", "Yes, count me in, I would love to.",
              "Perfect, let us do that then."],
    "bye": ["Talk soon, and have a lovely evening.",
            "I have to go now, but let us catch up properly soon.",
            "Good night, Alex. Speak tomorrow."],
}, stickers=[])

JAKE = Style("en", jake, {
    "hello": ["HEY!!!", "YO ALEX!!!", "HEY MAN!!!", "YOOO!!!"],
    "whatsup": ["WHAT'S UP MAN!!!", "YO WHAT'S UP!!!", "HEY!!! WHAT'S UP???"],
    "reply_hello": ["HEY!!!", "YOOO!!!", "ALEX!!! WHAT'S UP!!!"],
    "reply_whatsup": ["NOTHING MUCH!!! YOU???", "CHILLING!!! YOU???",
                      "JUST GOT BACK FROM THE GYM!!! YOU???"],
    "status": ["SAME!!!", "BORED OUT OF MY MIND!!!", "JUST WOKE UP LOL!!!"],
    "react": combos(["LMAO", "NO WAY", "THAT'S INSANE", "HAHAHA", "LET'S GOOO", "BRO", "DUDE",
                     "WHAT", "NICE", "CLASSIC"], ["!!!", "!!!!", "???"]),
    "agree": ["LET'S GO!!!", "I'M IN!!!", "DEAL!!!", "100%!!!"],
    "bye": ["LATER!!!", "PEACE!!!", "CATCH YOU LATER!!!"],
}, stickers=["🔥", "💪", "😎", "🤣"], pad=0.3)

NORA = Style("en", nora, {
    "hello": ["hey.", "hi."],
    "whatsup": ["what's up?", "hey. what's up?"],
    "reply_hello": ["hi.", "hey."],
    "reply_whatsup": ["working. you?", "not much. you?", "tired. you?", "cooking. you?",
                      "reading. you?", "nothing. you?"],
    "status": ["same.", "fine.", "busy.", "ok."],
    "react": ["ok.", "sure.", "fine.", "noted.", "huh.", "nice.", "right.", "k."],
    "agree": ["ok.", "sure.", "fine.", "works.", "deal."],
    "bye": ["bye.", "later.", "night."],
}, stickers=["👍"], terse=True)

PRIYA = Style("en", priya, {
    "hello": ["heyyy 👋✨", "hiii 💕", "hey hey 😊", "omg hi 🥰"],
    "whatsup": ["heyyy what's up? 😊", "hiii how are you?? 💕", "what's up babe ✨"],
    "reply_hello": ["heyyy 👋😊", "hiii 💕✨", "omg hiii 🥰"],
    "reply_whatsup": ["not much!! just chilling 😌✨ you?", "sooo tired 😩 but good!! you?",
                      "nothing much, watching netflix 🍿 hbu?"],
    "status": ["same same 😂", "omg same 😩", "all good!! ✨"],
    "react": combos(["omg", "hahaha", "yesss", "nooo", "wait what", "aww", "love that", "stoppp",
                     "sooo good", "yay"], [" 😍", " 😂😂", " 🙌✨", " 😭", " 💕", " 🥰🥰", " 🔥"]),
    "agree": ["yesss let's do it 🙌✨", "omg yes 😍", "count me in 💃✨"],
    "bye": ["byeee 💕👋", "night night 🌙✨", "talk later 😘"],
}, stickers=["🥰", "😍", "🎉", "💕", "😭"], pad=0.3)

DIMA = Style("ru", dima, {
    "hello": ["Привет!", "Здарова)", "Привет)", "Хей!"],
    "whatsup": ["Привет, как дела?", "Как ты?", "Здарова, как жизнь?"],
    "reply_hello": ["Привет)", "О, привет!", "Здорово!", "Привет-привет)"],
    "reply_whatsup": ["Да ничего особенного, работаю. А ты как?",
                      "Нормально, вот домой еду. Ты как?", "Всё хорошо, спасибо) Ты как?"],
    "status": ["Да тоже нормально.", "Устал немного, а так норм)", "Только с работы пришёл."],
    "react": ["Ахаха)))", "Жесть", "Да ну!", "Понятно)", "Класс!", "Ну ты даёшь)", "Ого!",
              "Бывает)", "Серьёзно?", "Ахах, понял)"],
    "agree": ["Давай!", "Договорились)", "Ок, идёт.", "Отлично, давай так."],
    "bye": ["Давай, до связи!", "Ок, пока)", "Спокойной ночи!", "Ладно, побежал. Пока!"],
}, stickers=["😂", "👍", "🤝"], pad=0.15)


def people() -> dict[str, Person]:
    """The exporting user ("me", key "alex") and five friends, built fresh for every export."""
    return {
        "alex": Person("alex", 5074184129, "Alex", "Morgan", "alexmorgan", "+1 415 555 0100",
                       {"en": ALEX_EN, "ru": ALEX_RU}, {"sticker": 0.04, "gif": 0.01}),
        "sam": Person("sam", 1843920571, "Sam", "Carter", "samcarter", "+1 415 555 0142",
                      {"en": SAM}, {}),
        "dima": Person("dima", 937162845, "Dima", "Volkov", "dvolkov", "+7 916 555 1234",
                       {"ru": DIMA}, {"sticker": 0.04, "voice": 0.07}),
        "jake": Person("jake", 6120583749, "Jake", "Rivera", "jakerivera", "+1 628 555 0177",
                       {"en": JAKE}, {"sticker": 0.06, "gif": 0.03}),
        "nora": Person("nora", 2958471630, "Nora", "Lind", "noralind", "+46 70 555 0123",
                       {"en": NORA}, {"sticker": 0.01}),
        "priya": Person("priya", 7301846295, "Priya", "Shah", "priyashah", "+44 7700 900456",
                        {"en": PRIYA}, {"sticker": 0.08, "voice": 0.02}),
    }
