"""Which words are facts: the one rule that eval's fact test and the bench's probes share.

A fact is a name (of a person, a pet, a place), a number or date, or a word that belongs to one
chat far more than to the others, and it recurs: at least MIN_CONVERSATIONS conversations of
that chat hold it. "Belongs" is salience across scopes: the share of its chat's conversations
that hold the word over its share of the other chats' conversations (add-one smoothed), among
the chats that write in its script (a friend you write Russian with owns no common Russian word).
A name belongs to its chat when it is never said elsewhere or its salience is at least SALIENCE,
and comes up in at most NAME_CHAT_SHARE of its chat's conversations. A number or any other word
needs WORD_SALIENCE (a chat's own topic), two people saying it, and at most WORD_CHAT_SHARE of its
chat's conversations (a word in more is how someone talks, not what they talk about). A merely
uncommon word ("asks", "bowl") is spread over chats and is not picked; a word salad is no one's
and picks nothing; with one chat only, nothing is salient and only its names count. The people's
own names ("Hi Alex") greet rather than tell, and are left out.

Words are compared by their Snowball stem, so "Звенигородом" and "Звенигороде" are one place
and "pelicans" is "pelican". A name is a word its writers capitalise mid-sentence: in text that
uses both cases (someone who writes all in lowercase, or shouts, tells nothing), capitalised in
at least CAPITAL_SHARE of its mid-sentence uses. Markers ("[photo]"), links and clock times are not
words said. Deterministic, no model: counts over the dataset's own conversations.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import snowballstemmer

if TYPE_CHECKING:
    from doppel.data.dataset import Dataset

WORD = re.compile(r"\w+")
# not said: markers ("[photo]", "[voice 0:07]", "[phone]") and links
_UNSAID = re.compile(r"\[[^\[\]\n]{1,40}\]|(?:https?://|www\.)\S+")
_NUMBER = re.compile(r"\d{2,}[^\W\d_]{0,2}")  # "18", "2024", "18th", "5к": a date, an amount
MIN_CHARS = 4  # shorter words are too often small talk ("lol"); a name counts from 3
NAME_CHARS = 3
MIN_CONVERSATIONS = 2  # a fact recurs: this many of its chat's conversations hold it
SALIENCE = 3.0  # a name's share of its chat over its share elsewhere, at least
WORD_SALIENCE = 6.0  # the same for a number or another word: only what one chat talks about
# a fact comes up now and then: a word in more of its chat's conversations than this is how
# someone talks ("quite", "things"), not what they talk about (a name may come up more often)
WORD_CHAT_SHARE = 0.1
NAME_CHAT_SHARE = 0.25
CAPITAL_SHARE = 2 / 3  # of its mid-sentence uses in cased text, this share capitalised: a name
KINDS = ("name", "number", "word")
_MID = frozenset(",;:-–—(\"'«»")  # after these (or a word) a capital is no sentence start


@dataclass(frozen=True)
class FactWord:
    """One word the rule picked, and why: its kind and the chat it belongs to."""

    word: str  # its most used form, casefolded (what a reader sees)
    stem: str  # what is compared
    kind: str  # one of KINDS
    chat_id: str  # the chat it belongs to
    conversations: int  # of that chat's conversations, those holding it
    elsewhere: int  # of the other chats' conversations, those holding it
    salience: float


@cache
def _stemmer(language: str):
    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=1 << 18)
def script(word: str) -> str:
    """"cyrillic", "latin", "number" or "other": salience compares a word with the chats that
    write in its script (a friend you write Russian with owns no common Russian word)."""
    if _NUMBER.fullmatch(word):
        return "number"
    if any("\u0400" <= ch <= "\u04ff" for ch in word):
        return "cyrillic"
    if word.isascii() or all(unicodedata.name(ch, "").startswith("LATIN")
                             for ch in word if ch.isalpha()):
        return "latin"  # "zürich" and "café" too
    return "other"


@lru_cache(maxsize=1 << 18)
def stem(word: str) -> str:
    """The casefolded Snowball stem (Russian for Cyrillic, English for Latin letters; other
    scripts and numbers as they are)."""
    word = word.casefold()
    if not word.isalpha():
        return word
    kind = script(word)
    if kind == "cyrillic":
        return _stemmer("russian").stemWord(word)
    return _stemmer("english").stemWord(word) if kind == "latin" else word


def stems(text: str) -> set[str]:
    """The stems of a text's words."""
    return {stem(w) for w in WORD.findall(text)}


def _clock(text: str, start: int, end: int) -> bool:
    """Whether the digits at [start, end) are part of a time ("19:30", "0:07"): no fact."""
    return (text[end:end + 1] == ":" and text[end + 1:end + 2].isdigit()) or (
        text[start - 1:start] == ":" and start > 1 and text[start - 2].isdigit())


def said_words(text: str) -> tuple[str, bool, Iterator[re.Match]]:
    """The text with what was not said blanked (markers, links), whether it uses both cases, and
    its words (clock times left out)."""
    if "[" in text or "http" in text or "www." in text:
        text = _UNSAID.sub(" ", text)
    cased = any(ch.isupper() for ch in text) and any(ch.islower() for ch in text)
    words = (m for m in WORD.finditer(text)
             if not (m.group()[0].isdigit() and _clock(text, m.start(), m.end())))
    return text, cased, words


def _case(text: str, match: re.Match, cased: bool) -> str:
    """What a word's case tells: "capital" or "lower" mid-sentence, or "" (nothing: a sentence
    start, text written in one case, a shouted word, a number)."""
    word = match.group()
    if not cased or word.isupper() or not word[0].isalpha():
        return ""
    at = match.start() - 1
    while at >= 0 and text[at].isspace():  # the character before the word (no copy)
        at -= 1
    if at >= 0 and (text[at].isalnum() or text[at] in _MID):
        return "capital" if word[0].isupper() else "lower"
    return "" if word[0].isupper() else "lower"


@dataclass
class _Word:
    chats: Counter = field(default_factory=Counter)  # chat id -> conversations holding it
    forms: Counter = field(default_factory=Counter)
    speakers: set[str] = field(default_factory=set)  # person ids
    capital: int = 0  # capitalised mid-sentence
    lower: int = 0  # written lowercase in cased text

    def kind(self, word: str) -> str | None:
        """Its kind of fact by its shape, or None where it is too short to be one."""
        if script(word) == "number":
            return "number"
        if self.capital and self.capital >= CAPITAL_SHARE * (self.capital + self.lower):
            return "name" if len(word) >= NAME_CHARS else None
        return "word" if len(word) >= MIN_CHARS else None


@dataclass
class WordCounts:
    """One pass over a dataset's conversations: per stem, which chats' conversations hold it,
    who says it and how it is written; per chat and script, its conversations."""

    words: dict[str, _Word] = field(default_factory=dict)
    chats: Counter = field(default_factory=Counter)  # (chat id, script) -> conversations
    people: frozenset[str] = frozenset()  # the stems of the speakers' own names: no fact

    @classmethod
    def of(cls, dataset: Dataset) -> WordCounts:
        """Empty counts that know `dataset`'s people (whose names are greetings, not facts)."""
        names = [s.get("name", "") for s in dataset.manifest.get("speakers", {}).values()]
        return cls(people=frozenset(stem(w) for name in [*names, dataset.me_name]
                                    for w in WORD.findall(name)))

    def add(self, chat_id: str, said: Iterable[tuple[str, str]],
            among: Collection[str] | None) -> set[str]:
        """Count one conversation's (speaker id, text) pairs; returns the stems it holds (of
        `among`, when given)."""
        seen: set[str] = set()
        scripts = {"number"}  # any conversation could name a number: they compare with all
        for speaker, said_text in said:
            text, cased, words = said_words(said_text)
            for match in words:
                word = match.group()
                scripts.add(script(word))
                key = stem(word)
                if among is not None and key not in among:
                    continue
                found = self.words.get(key)
                if found is None:
                    found = self.words[key] = _Word()
                found.forms[word.casefold()] += 1
                found.speakers.add(speaker)
                case = _case(text, match, cased)
                if case:
                    setattr(found, case, getattr(found, case) + 1)
                if key not in seen:
                    seen.add(key)
                    found.chats[chat_id] += 1
        for name in scripts:
            self.chats[chat_id, name] += 1
        return seen

    def pick(self) -> dict[str, FactWord]:
        """The fact words (by stem) under the rule in the module's docstring."""
        totals: Counter = Counter()
        for (_, name), count in self.chats.items():
            totals[name] += count
        picked = {}
        for key, found in self.words.items():
            fact = self._judge(key, found, totals)
            if fact is not None:
                picked[key] = fact
        return picked

    def _judge(self, key: str, found: _Word, totals: Counter) -> FactWord | None:
        word = min(found.forms, key=lambda f: (-found.forms[f], f))
        kind = found.kind(word)
        if kind is None or key in self.people or (kind != "name" and len(found.speakers) < 2):
            return None
        name = script(word)
        chat, held = max(found.chats.items(),
                         key=lambda item: (item[1] / self.chats[item[0], name], item[0]))
        if held < MIN_CONVERSATIONS:
            return None
        elsewhere = sum(found.chats.values()) - held
        share = held / self.chats[chat, name]
        if share > (NAME_CHAT_SHARE if kind == "name" else WORD_CHAT_SHARE):
            return None
        salience = share / ((elsewhere + 1) / (totals[name] - self.chats[chat, name] + 1))
        if kind == "name" and elsewhere and salience < SALIENCE:
            return None
        if kind != "name" and salience < WORD_SALIENCE:
            return None
        return FactWord(word, key, kind, chat, held, elsewhere, round(salience, 2))


def count_words(dataset: Dataset, among: Collection[str] | None = None) -> WordCounts:
    """Count every conversation of `dataset` (only the stems of `among`, when given: a large
    export has millions of words)."""
    counts = WordCounts.of(dataset)
    for conversation in dataset.conversations():
        counts.add(conversation.chat_id,
                   ((m.speaker_id, m.text) for m in conversation.messages), among)
    return counts


def fact_words(dataset: Dataset, among: Collection[str] | None = None) -> dict[str, FactWord]:
    """The dataset's fact words by stem (of `among`'s stems, when given)."""
    return count_words(dataset, among).pick()
