"""The dataset's main language, so scripted chats can also greet people in the words they use.

A light guess (script, then common words) is enough here: it only picks which greeting to try.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

from doppel.eval.style import words

# the scripted chat, per language: an opener and a follow-up
SCRIPTS = {
    "en": ("hey", "what's up?"),
    "ru": ("привет", "как дела?"),
    "uk": ("привіт", "як справи?"),
    "de": ("hey", "was geht?"),
    "es": ("hola", "¿qué tal?"),
    "fr": ("salut", "ça va ?"),
    "it": ("ciao", "come va?"),
    "pt": ("oi", "tudo bem?"),
    "nl": ("hoi", "hoe gaat het?"),
    "pl": ("cześć", "co słychać?"),
    "tr": ("selam", "naber?"),
}
COMMON_WORDS = {
    "en": "the and you is to it what that of i my this",
    "de": "und ich nicht das ist du die der ein auch",
    "es": "que de no la el y es lo pero por",
    "fr": "je de le la et pas est que tu les",
    "it": "che di non il è la per sono ma ho",
    "pt": "que não de o e é um eu você com",
    "nl": "de het een en ik niet is dat je van",
    "pl": "nie się to jest że na co ja jak tak",
    "tr": "bir ve bu ne mi ben da çok var",
}
UKRAINIAN_ONLY = set("іїєґІЇЄҐ")


def _script(ch: str) -> str:
    return unicodedata.name(ch, "?").split(" ")[0]


def main_language(texts: Iterable[str], sample: int = 20000) -> str:
    """An ISO 639-1 code for the messages' main language among SCRIPTS ("en" when unsure)."""
    letters: Counter[str] = Counter()
    found: Counter[str] = Counter()
    ukrainian = 0
    vocab = {lang: set(line.split()) for lang, line in COMMON_WORDS.items()}
    for count, text in enumerate(texts):
        if count >= sample:
            break
        letters.update(_script(ch) for ch in text if ch.isalpha())
        ukrainian += sum(ch in UKRAINIAN_ONLY for ch in text)
        for word in words(text):
            found.update(lang for lang, common in vocab.items() if word in common)
    if not letters:
        return "en"
    script = letters.most_common(1)[0][0]
    if script == "CYRILLIC":
        return "uk" if ukrainian > 0.005 * letters["CYRILLIC"] else "ru"
    if script == "LATIN" and found:
        return found.most_common(1)[0][0]
    return "en"
