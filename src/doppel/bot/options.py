"""Everything `doppel bot` can be told: the flags (one definition, one help text) and the settings
they become. Sampling flags are the ones `doppel chat` uses (doppel.infer.options)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from doppel.errors import DoppelError
from doppel.infer.engine import SamplingParams

TOKEN_ENV = "DOPPEL_BOT_TOKEN"
API_URL_ENV = "DOPPEL_BOT_API_URL"
TELEGRAM_API = "https://api.telegram.org"
GROUP_MODES = ("mention", "always", "off")

TokenFile = Annotated[Path | None, typer.Option(
    help=f"File holding the bot token from @BotFather (or set {TOKEN_ENV}). Never a flag.")]
Persona = Annotated[str | None, typer.Option(
    "--as", help="Whom the twin plays (default: the run's exporting user).")]
Allow = Annotated[list[str] | None, typer.Option(
    metavar="ID,...",
    help="Telegram ids who may talk to the twin, comma-separated or repeated (a group's id lets "
         "everyone in it talk). Without it the twin answers nobody and logs who tried.")]
Friend = Annotated[list[str] | None, typer.Option(
    metavar="ID=NAME",
    help="This Telegram user is NAME of the training data (repeat for more); others are known "
         "by their first name.")]
Groups = Annotated[str, typer.Option(
    help="In groups, answer when mentioned or replied to (mention), every message (always), "
         "or never (off).")]
State = Annotated[Path | None, typer.Option(
    help="SQLite file with the chat histories (default: RUN_DIR's name + .bot.sqlite, next to "
         "the run folder).")]
ApiUrl = Annotated[str, typer.Option(
    envvar=API_URL_ENV, help="Bot API server: Telegram's, a self-hosted one, or a local fake.")]
DelayPerChar = Annotated[float, typer.Option(
    help="Seconds of 'typing...' per character before each message is sent (0 = at once).")]
MaxHistory = Annotated[int, typer.Option(
    help="Turns of the chat the twin reads before replying (the context window may cut more).")]
Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Log message texts too (they are private: off by default).")]


@dataclass(frozen=True)
class BotSettings:
    """What the bot does, parsed and checked; the flags' defaults are the class attributes."""

    state: Path
    allow: frozenset[int] = frozenset()
    friends: dict[int, str] = field(default_factory=dict)
    persona: str | None = None
    groups: str = "mention"
    api_url: str = TELEGRAM_API
    delay_per_char: float = 0.03
    max_history: int = 30
    verbose: bool = False
    params: SamplingParams = field(default_factory=SamplingParams)
    retry_wait_s: float = 1.0  # first wait after a network error; doubles each try

    @classmethod
    def from_flags(cls, run_dir: str, state: Path | None, allow: list[str] | None,
                   friend: list[str] | None, **rest) -> BotSettings:
        settings = cls(state=state or default_state_path(run_dir), allow=parse_ids(allow or []),
                       friends=parse_friends(friend or []), **rest)
        settings.check()
        return settings

    def check(self) -> None:
        problems = []
        if self.groups not in GROUP_MODES:
            problems.append(f"--groups must be one of {', '.join(GROUP_MODES)}, "
                            f"not {self.groups!r}")
        if self.delay_per_char < 0:
            problems.append("--delay-per-char must be >= 0")
        if self.max_history < 1:
            problems.append("--max-history must be >= 1")
        if not self.api_url.startswith(("http://", "https://")):
            problems.append(f"--api-url must be an http(s) URL, not {self.api_url!r}")
        if problems:
            raise DoppelError("; ".join(problems))


def default_state_path(run_dir: str) -> Path:
    """Next to the run folder, never inside it: the run folder is training's output, and a
    restart or a retrain must not lose (or ship) the chats."""
    run = Path(os.path.abspath(Path(run_dir).expanduser()))  # a symlinked run keeps its own
    return run.parent / f"{run.name}.bot.sqlite"


def parse_ids(values: list[str]) -> frozenset[int]:
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


def parse_friends(values: list[str]) -> dict[int, str]:
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
