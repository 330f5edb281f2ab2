"""Everything `doppel bot` can be told: the flags (one definition, one help text) and the settings
they become. Sampling flags are the ones `doppel chat` uses (doppel.infer.options)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from doppel.errors import DoppelError
from doppel.infer.options import LoadOptions, MemoryOptions
from doppel.infer.sampling import SamplingParams
from doppel.options import Options, option

TOKEN_ENV = "DOPPEL_BOT_TOKEN"
API_URL_ENV = "DOPPEL_BOT_API_URL"
TELEGRAM_API = "https://api.telegram.org"


class BotOptions(Options):
    """`doppel bot`: the token's file, who may talk and who they are, groups, pacing, the chat
    state, sampling and the model. Parsed further into BotSettings."""

    token_file: Path | None = option(
        None, f"File holding the bot token from @BotFather (or set {TOKEN_ENV}). Never a flag.")
    persona: str | None = option(None, "Whom the twin plays (default: the run's exporting user).",
                                 flags=("--as",))
    allow: tuple[str, ...] = option(
        (), "Telegram ids who may talk to the twin, comma-separated or repeated (a group's id "
        "lets everyone in it talk). Without it the twin answers nobody and logs who tried.",
        metavar="ID,...")
    friend: tuple[str, ...] = option(
        (), "This Telegram user is NAME of the training data (a name, a first name only one "
        "person has, or an id; repeat for more) and reads their memories; others are called by "
        "their first name and remembered by their Telegram id.", metavar="ID=NAME")
    groups: Literal["mention", "always", "off"] = option(
        "mention", "In groups, answer when mentioned or replied to (mention), every message "
        "(always), or never (off).")
    state: Path | None = option(
        None, "SQLite file with the chat histories (default: RUN_DIR's name + .bot.sqlite, next "
        "to the run folder).")
    quiz: Path | None = option(
        None, "The blind test /quiz asks from (default: RUN_DIR's name + .blindtest.sqlite, next "
        "to the run folder, where `doppel blindtest` keeps it).", metavar="FILE")
    api_url: str = option(TELEGRAM_API, "Bot API server: Telegram's, a self-hosted one, or a "
                          "local fake.", envvar=API_URL_ENV, pattern=r"^https?://")
    delay_per_char: float = option(0.03, "Seconds of 'typing...' per character before each "
                                   "message is sent (0 = at once).", ge=0)
    max_history: int = option(30, "Turns of the chat the twin reads before replying (the "
                              "context window may cut more).", ge=1)
    verbose: bool = option(False, "Log message texts too (they are private: off by default).",
                           flags=("--verbose", "-v"))
    sampling: SamplingParams = SamplingParams()
    recall: MemoryOptions = MemoryOptions()
    load: LoadOptions


@dataclass(frozen=True)
class BotSettings:
    """What the bot does: BotOptions checked and parsed (ids as numbers, friends as a map)."""

    state: Path
    quiz: Path
    allow: frozenset[int]
    friends: dict[int, str]
    persona: str | None
    groups: str
    api_url: str
    delay_per_char: float
    max_history: int
    verbose: bool
    params: SamplingParams
    retry_wait_s: float = 1.0  # first wait after a network error; doubles each try

    @classmethod
    def from_options(cls, options: BotOptions) -> BotSettings:
        """The flags parsed: ids as numbers, friends as a map, the state file's default."""
        from doppel.blindtest.store import default_store_path

        return cls(state=options.state or default_state_path(options.load.run),
                   quiz=options.quiz or default_store_path(options.load.run),
                   allow=parse_ids(options.allow), friends=parse_friends(options.friend),
                   persona=options.persona, groups=options.groups, api_url=options.api_url,
                   delay_per_char=options.delay_per_char, max_history=options.max_history,
                   verbose=options.verbose, params=options.sampling)


def default_state_path(run_dir: str) -> Path:
    """Next to the run folder, never inside it: the run folder is training's output, and a
    restart or a retrain must not lose (or ship) the chats."""
    run = Path(os.path.abspath(Path(run_dir).expanduser()))  # a symlinked run keeps its own
    return run.parent / f"{run.name}.bot.sqlite"


def parse_ids(values: tuple[str, ...]) -> frozenset[int]:
    ids = set()
    for part in (p.strip() for value in values for p in value.split(",")):
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise DoppelError(f"--allow takes numeric Telegram ids, not {part!r}; the bot logs "
                              "the id of everyone it refuses") from None
    return frozenset(ids)


def parse_friends(values: tuple[str, ...]) -> dict[int, str]:
    friends = {}
    for value in values:
        user, sep, name = value.partition("=")
        if not sep or not name.strip() or not user.strip().lstrip("-").isdigit():
            raise DoppelError(f"--friend takes ID=NAME (for example 123456789=Sam), not {value!r}")
        friends[int(user)] = name.strip()
    return friends


def read_token(token_file: Path | None) -> str:
    """The bot token from its file, else from the environment. Never echoed: messages name the
    file, not its content."""
    if token_file is None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise DoppelError(f"no bot token: pass --token-file FILE (the token from @BotFather "
                              f"in it) or set {TOKEN_ENV}")
        return token
    token_file = token_file.expanduser()
    if not token_file.is_file():
        raise DoppelError(f"token file {token_file} does not exist; put the token from "
                          "@BotFather in it")
    token = token_file.read_text(encoding="utf-8", errors="replace").strip()
    if not token:
        raise DoppelError(f"token file {token_file} is empty; put the token from @BotFather in it")
    if any(c.isspace() for c in token):
        raise DoppelError(f"token file {token_file} holds more than one word; it should hold "
                          "only the token from @BotFather")
    return token
