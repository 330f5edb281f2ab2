"""What retrieval searches with: the words of the conversation's last turns."""

from __future__ import annotations

from collections.abc import Sequence


def query_from_history(history: Sequence[tuple[str, str]], turns: int = 2) -> str:
    """The text of the last `turns` turns of `history` ((speaker, text) pairs; consecutive
    lines by one speaker are one turn), joined: what the friend just said and the answer
    before it are what a memory should be about."""
    picked: list[str] = []
    speakers: list[str] = []
    for speaker, text in reversed(history):
        if not speakers or speakers[-1] != speaker:
            if len(speakers) == turns:
                break
            speakers.append(speaker)
        picked.append(text)
    return "\n".join(reversed(picked))
