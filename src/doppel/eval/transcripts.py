"""Scripted chats ("hey", "what's up?"): the model as the user with each top friend, and back."""

from __future__ import annotations

from doppel.eval.generate import reply_all
from doppel.eval.language import SCRIPTS
from doppel.eval.markdown import escape
from doppel.eval.options import EvalOptions
from doppel.eval.results import Transcript

__all__ = ["Transcript", "markdown", "plan_transcripts", "run_chats"]


def plan_transcripts(
    me: str, friends: list[str], trained: set[str], languages: list[str]
) -> list[Transcript]:
    """Both directions with each friend, in each language (noting whom the run never learned)."""
    return [
        Transcript(respondent, partner, lang, trained=respondent in trained)
        for friend in friends
        for respondent, partner in ((me, friend), (friend, me))
        for lang in languages
    ]


def run_chats(engine, chats: list[Transcript], options: EvalOptions) -> list[Transcript]:
    """Play every scripted line of every chat, batching all chats at each step."""
    done = [Transcript(c.respondent, c.partner, c.language, trained=c.trained) for c in chats]
    steps = max((len(SCRIPTS[c.language]) for c in chats), default=0)
    for step in range(steps):
        for chat in done:
            chat.lines.append((chat.partner, SCRIPTS[chat.language][step]))
        histories = [[line for line in c.lines if line[1]] for c in done]  # skip empty replies
        replies = reply_all(engine, histories, [c.respondent for c in done], options)
        for chat, reply in zip(done, replies, strict=True):
            said = [(chat.respondent, message) for message in reply]
            chat.lines += said or [(chat.respondent, "")]
    return done


def markdown(chats_by_model: dict[str, list[Transcript]], level: int = 3) -> str:
    """Side by side per chat: each model's version of the same scripted conversation."""
    if not any(chats_by_model.values()):
        return "_No scripted chats: the dataset has no friend to chat with._\n"
    first = next(iter(chats_by_model.values()))
    parts = []
    for index, chat in enumerate(first):
        who, partner = escape(chat.respondent), escape(chat.partner)
        note = "" if chat.trained else f"; the run was not trained to play {who}"
        parts.append(f"{'#' * level} The model as {who}, with {partner} ({chat.language}{note})\n")
        for model, chats in chats_by_model.items():
            parts.append(f"**{escape(model)}**\n")
            for speaker, text in chats[index].lines:
                parts.append(f"> **{escape(speaker)}:** {escape(text) or '_(no reply)_'}  ")
            parts.append("")
    return "\n".join(parts) + "\n"
