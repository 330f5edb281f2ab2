"""A synthetic full-account Telegram export shaped like a TV script: six friends, long scenes.

Usage: python bench/synth_script.py OUT.json MESSAGES   (e.g. /tmp/script.json 31000)

The shape of the export issue 14 measured eval on (a sitcom script turned into an export): the
user and five friends, a quarter of the messages the user's, all in one plain English register,
in five private chats whose conversations (scenes) run a hundred messages or more. Eval's cost
follows this shape (long histories, full 512-token training windows), which
bench/synth_export.py's many short, mixed-script chats do not have.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

from synth_export import ME, START, run_from_command_line

FRIENDS = [(3_000_001 + i, name) for i, name in
           enumerate(("Rachel Green", "Ross Geller", "Monica Geller", "Joey Tribbiani",
                      "Phoebe Buffay"))]
WORDS = ("i", "you", "we", "it", "that", "the", "a", "is", "was", "what", "so", "oh", "no",
         "yeah", "okay", "just", "know", "think", "really", "right", "well", "go", "get", "got",
         "can't", "don't", "i'm", "it's", "coffee", "apartment", "date", "tonight", "guys",
         "believe", "again", "never", "always", "with", "about", "thing", "love", "wait", "hey",
         "come", "on", "look", "mean", "like", "want", "here", "there", "now", "tell", "me")
SCENE = (60, 260)  # messages in one conversation (a scene), drawn uniformly
ME_SHARE = 0.26  # the export: 8k of 31k messages were the user's


def _line(rng: random.Random, words: tuple[int, int]) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
    return text[0].upper() + text[1:] + rng.choice(".?!.")


def _message(rng: random.Random, speaker: tuple[int, str], number: int, when: int) -> str:
    # the user's lines are short (47 characters on the issue's export), the friends' a bit longer
    text = _line(rng, (3, 10) if speaker[0] == ME[0] else (4, 16))
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    body = {"id": number, "type": "message", "date": stamp, "date_unixtime": str(when),
            "from": speaker[1], "from_id": f"user{speaker[0]}", "text": text,
            "text_entities": [{"type": "plain", "text": text}]}
    return "\n".join("     " + line for line in json.dumps(body, indent=1).splitlines())


def write_export(path: Path, total: int, seed: int = 0) -> int:
    """Write `total` messages (rounded down to a multiple of five); returns the size in bytes."""
    rng = random.Random(seed)
    me = (ME[0], f"{ME[1]} {ME[2]}")
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        info = {"user_id": ME[0], "first_name": ME[1], "last_name": ME[2],
                "phone_number": "+1 555 0100", "username": "@alex", "bio": ""}
        out.write('{\n "about": "Here is the data you requested.",\n "personal_information": '
                  + json.dumps(info, indent=1).replace("\n", "\n ") + ',\n "chats": {\n'
                  '  "about": "This page lists all chats from this export.",\n  "list": [\n')
        size = total // len(FRIENDS)
        for index, friend in enumerate(FRIENDS):
            out.write(f'   {{\n    "name": "{friend[1]}",\n    "type": "personal_chat",\n'
                      f'    "id": {friend[0]},\n    "messages": [\n')
            when, left_in_scene = START + index * 97, 0
            for number in range(1, size + 1):
                if left_in_scene == 0:
                    when, left_in_scene = when + 86_400, rng.randint(*SCENE)
                when += rng.randint(10, 120)
                left_in_scene -= 1
                speaker = me if rng.random() < ME_SHARE else friend
                sep = ",\n" if number < size else "\n"
                out.write(_message(rng, speaker, number, when) + sep)
            out.write("    ]\n   }" + (",\n" if index < len(FRIENDS) - 1 else "\n"))
        out.write("  ]\n }\n}\n")
    return path.stat().st_size


if __name__ == "__main__":
    run_from_command_line(write_export, __doc__)
