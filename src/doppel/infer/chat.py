"""A chat session: who the model plays, who is typing, the history, and the slash commands.

The terminal front end (`doppel chat`) only reads lines and prints deltas; everything a command
changes lives here, so a script and a person at the keyboard get the same behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from doppel.atomic import atomic_file
from doppel.errors import DoppelError
from doppel.infer.engine import Delta, Engine, SamplingParams

HELP = """commands:
  /as NAME     the model plays NAME
  /me NAME     you write as NAME
  /reset       forget the conversation
  /save FILE   write the transcript as Markdown
  /help        this list
  /quit        leave (or Ctrl-D)"""


@dataclass
class ChatSession:
    """The state of one conversation with the model."""

    engine: Engine
    params: SamplingParams = field(default_factory=SamplingParams)
    persona: str = ""
    me: str = ""
    history: list[tuple[str, str]] = field(default_factory=list)
    me_chosen: bool = False  # a /me or --me sticks when the persona changes

    @classmethod
    def start(cls, engine: Engine, persona: str | None = None, me: str | None = None,
              params: SamplingParams | None = None) -> ChatSession:
        session = cls(engine, params or SamplingParams())
        session.play(persona or engine.default_persona)
        if me:
            session.write_as(me, "--me")
        return session

    def _label(self, typed: str) -> str | None:
        """The label of the one person `typed` names: among memory's people when memory is on,
        else among the run's speakers; None for nobody or several."""
        from doppel.data.people import People

        recall = getattr(self.engine, "recall", None)
        people = recall.people if recall is not None else People.of_names(self.engine.personas)
        person = people.lookup(typed)
        return None if person is None else people.label(person)

    def play(self, name: str) -> None:
        """Make the model play `name` (a speaker of the run, named by data/people.py's rule:
        "sam" is "Sam Carter"; any name for a base model)."""
        name = self._label(name.strip()) or name.strip()
        if not name or not self.engine.can_play(name):
            known = ", ".join(self.engine.personas)
            raise DoppelError(f"this model cannot play {name!r}; choose one of: {known}")
        previous, self.persona = self.persona, name
        if self.me_chosen and self.me == name and previous:
            self.me = previous  # "/as <me>" swaps the roles
        elif not self.me_chosen or self.me == name:
            self.me, self.me_chosen = self.engine.default_partner(name), False

    def write_as(self, name: str, what: str = "/me") -> None:
        """Type as `name` from now on: the person it names by data/people.py's rule ("sam" is
        "Sam Carter"). With memory on, a name that names nobody or several people is an error
        (memory would silently read nothing); without, a new name is simply used."""
        name = name.strip()
        if not name:
            raise DoppelError("/me needs a name, for example `/me Sam`")
        recall = getattr(self.engine, "recall", None)
        if recall is not None and recall.scope != "all":
            name = recall.people.label(recall.people.resolve(name, what))
        else:
            name = self._label(name) or name
        if name == self.persona:
            raise DoppelError(f"the model already plays {name}; pick someone else with /me or /as")
        self.me, self.me_chosen = name, True

    def say(self, text: str) -> Iterator[Delta]:
        """Add the user's message and stream the persona's reply (added to history when done)."""
        self.history.append((self.me, text))
        messages: list[str] = []
        for delta in self.engine.stream(self.history, self.persona, self.params):
            if delta.text:
                if delta.message_index == len(messages):
                    messages.append("")
                messages[delta.message_index] += delta.text
            yield delta
        self.history.extend((self.persona, message) for message in messages)

    def command(self, line: str) -> str:
        """Run a slash command; return what to show the user."""
        name, _, argument = line.strip().partition(" ")
        argument = argument.strip()
        if name == "/as":
            self.play(argument)
            return f"the model plays {self.persona}; you are {self.me}"
        if name == "/me":
            self.write_as(argument)
            return f"you are {self.me}; the model plays {self.persona}"
        if name == "/reset":
            self.history.clear()
            return "conversation cleared"
        if name == "/save":
            if not argument:
                raise DoppelError("/save needs a file name, for example `/save chat.md`")
            self.save(Path(argument))
            return f"transcript saved to {argument}"
        if name == "/help":
            return HELP
        raise DoppelError(f"unknown command {name}; type /help for the list")

    def save(self, path: Path) -> None:
        with atomic_file(path) as handle:
            handle.write(self.markdown())

    def markdown(self) -> str:
        """The transcript as Markdown: one line per message, the speaker's name in bold."""
        model = self.engine.info.path or self.engine.info.base_model
        lines = [f"# Chat with {self.persona}", "",
                 f"- model: `{model}`", f"- {self.persona} is played by the model; "
                 f"{self.me} is typed by a person",
                 f"- saved: {time.strftime('%Y-%m-%d %H:%M')}", ""]
        for speaker, text in self.history:
            body = text.replace("\n", "  \n")
            lines.append(f"**{_md_escape(speaker)}:** {body}  ")
        return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>#" else c for c in text)
