"""A small dataset for memory tests: Alex (me) talks with Sam and with Jo alone, and with both
in a group; Sam tells Alex a secret in their own chat; facts come back in later conversations."""

from __future__ import annotations

import json
import random
from pathlib import Path

from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION

ALEX, SAM, JO = ("user1", "Alex"), ("user2", "Sam"), ("user3", "Jo")
SECRET = "4417"  # Sam's vault code: told to Alex in their private chat, never in front of Jo
SECRET_LINE = f"promise you wont tell anyone: the vault code is {SECRET} zebra"
CHATS = {
    "user2": ("Sam", "personal_chat", (ALEX, SAM)),
    "user3": ("Jo", "personal_chat", (ALEX, JO)),
    "group1": ("Friends", "private_group", (ALEX, SAM, JO)),
}
FILLER = ["hey", "what's up", "not much, you?", "same old", "lol", "ok cool", "sounds good",
          "see you later", "haha yes", "how was work", "long day", "tell me about it"]
# (chat, [(speaker, text)]) planted at these conversation numbers; the rest is filler
PLANTED = {
    2: ("user2", [(SAM, SECRET_LINE), (ALEX, "my lips are sealed, the vault is safe")]),
    4: ("user3", [(JO, "my cat Pickles ate my homework again"), (ALEX, "classic Pickles")]),
    6: ("group1", [(JO, "bowling at Starlight Lanes on friday?"), (SAM, "im in"),
                   (ALEX, "count me in")]),
    9: ("user2", [(SAM, "what was the vault code again?"), (ALEX, "you told me, zebra thing")]),
    11: ("user3", [(JO, "what was the vault code again?"), (ALEX, "no idea what you mean")]),
    13: ("user3", [(JO, "Pickles is sick, vet tomorrow"), (ALEX, "poor Pickles")]),
}


def write_memory_dataset(path: Path, conversations: int = 18, seed: int = 0,
                         labels: dict[str, str] | None = None,
                         planted: dict[int, tuple[str, list]] | None = None) -> Path:
    """conversations.jsonl + manifest.json in the dataset contract's shape; one conversation a
    day, the chats taking turns: small talk, or the planted lines where PLANTED (and `planted`,
    over it) says. `labels` renames people by id ({"user2": "Sam Carter"}): ids, not names,
    decide who reads what."""
    labels = labels or {}
    planted = PLANTED | (planted or {})
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    rows, t = [], 1_700_000_000.0
    counts: dict[str, int] = {}
    for index in range(conversations):
        chat_id, lines = planted.get(index, (list(CHATS)[index % 3], []))
        name, kind, people = CHATS[chat_id]
        friends = [p for p in people if p != ALEX]
        said = lines or [(rng.choice(friends), rng.choice(FILLER)), (ALEX, rng.choice(FILLER)),
                         (rng.choice(friends), rng.choice(FILLER)), (ALEX, rng.choice(FILLER))]
        messages = []
        for speaker, text in said:
            t += 60
            messages.append({"speaker_id": speaker[0],
                             "speaker": labels.get(speaker[0], speaker[1]), "time": t,
                             "text": text})
            counts[speaker[0]] = counts.get(speaker[0], 0) + 1
        t += 86_400
        rows.append({"id": f"{chat_id}-{index:04d}", "chat": {"id": chat_id, "name": name,
                                                            "type": kind},
                     "split": "val" if index >= conversations - 2 else "train",
                     "messages": messages})
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows),
                                      encoding="utf-8")
    speakers = {pid: {"name": labels.get(pid, name), "messages": counts.get(pid, 0),
                      "chats": [c for c, (_, _, people) in CHATS.items()
                                if (pid, name) in people]}
                for pid, name in (ALEX, SAM, JO)}
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": ALEX[0], "name": ALEX[1]},
                "speakers": speakers, "fingerprint": f"memory-test-{seed}-{conversations}",
                "chats": [{"id": c, "name": name, "type": kind}
                          for c, (name, kind, _) in CHATS.items()]}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path
