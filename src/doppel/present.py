"""Terminal presentation shared by the commands and the demo: chat transcripts as they stream,
the prepare summary table, eval headlines and the demo's closing table. Library code calls these;
nothing here decides anything."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from doppel.errors import DoppelError


def play_chat(console: Console, session, lines: Iterable[str] | None = None) -> None:
    """Run a chat: the given script lines (strict: an error stops it), or lines typed until
    /quit or Ctrl-D, each reply streamed one message a line."""
    strict = lines is not None
    if not strict:
        console.print(f"[dim]{escape(session.persona)} is played by the model; you are "
                      f"{escape(session.me)}. /help lists the commands.[/]")
    for line in lines if strict else _prompt(console, session):
        if line.strip() in ("/quit", "/exit"):
            break
        try:
            _handle(console, session, line, strict=strict)
        except KeyboardInterrupt:  # Ctrl-C stops the reply, not the chat
            if strict:
                raise
            console.print("\n[dim](stopped)[/]")


def _prompt(console: Console, session):
    """Lines typed by the user, until Ctrl-D."""
    while True:
        try:
            line = console.input(f"[bold green]{escape(session.me)}>[/] ")
        except EOFError:
            console.print()
            return
        if line.strip():
            yield line


def _handle(console: Console, session, line: str, strict: bool) -> None:
    """One line: a slash command, or a message followed by the streamed reply."""
    if line.startswith("/"):
        try:
            console.print(f"[dim]{escape(session.command(line))}[/]")
        except DoppelError as error:
            if strict:
                raise
            console.print(f"[red]{escape(str(error))}[/]")
        return
    if strict:  # a script shows who said what, like the live screen does
        console.print(f"[bold green]{escape(session.me)}:[/] ", end="")
        console.print(line, markup=False)
    _print_reply(console, session, line)


def _print_reply(console: Console, session, line: str) -> None:
    """Each message on its own line, prefixed with the speaker's name, as the tokens come;
    then, dimmed, the memories the reply read."""
    from doppel.infer.recall import memories_json

    name = f"[bold cyan]{escape(session.persona)}:[/] "
    current = -1
    memories: tuple = ()
    for delta in session.say(line):
        if delta.text and delta.message_index != current:
            console.print(("\n" if current >= 0 else "") + name, end="")
            current = delta.message_index
        if delta.text:
            console.print(delta.text, end="", markup=False)
        memories = delta.memories or memories
    if current < 0:
        console.print(f"[dim]({escape(session.persona)} says nothing)[/]", end="")
    console.print()
    for memory in memories_json(memories):  # why the twin said it: what it remembered
        said = " / ".join(f"{speaker}: {text}" for speaker, text in memory["lines"])
        console.print(f"[dim]  remembered {memory['date']}, chat {escape(memory['chat'])}: "
                      f"{escape(said)}[/]")


def prepare_summary(summary, mask: bool, console: Console | None = None) -> None:
    """The short table at the end of a prepare run (the demo shows it too)."""
    from rich.markup import escape
    from rich.table import Table

    from doppel.data.gaps import format_duration
    from doppel.data.report import skipped_line

    console = console or Console()
    manifest = summary.manifest
    counts, params = manifest.counts, manifest.params
    table = Table(title=f"Dataset for {manifest.me.name} ({manifest.me.id})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    skipped = ", ".join(f"{n} {r}" for r, n in counts.chats_skipped.items()) or "none"
    table.add_row("chats", f"{counts.chats_kept} used; left out: {skipped}")
    table.add_row("conversations", f"{counts.conversations['train']:,} train, "
                  f"{counts.conversations['val']:,} val")
    table.add_row("messages", f"{counts.messages['train']:,} train, {counts.messages['val']:,} "
                  f"val (of {counts.messages_read:,} read)")
    table.add_row("speakers", str(len(manifest.speakers)))
    if len(counts.sources) > 1 or set(counts.sources) - {"telegram"}:
        table.add_row("sources", ", ".join(
            f"{name}: {row.messages_kept:,} messages in {row.chats_kept} chats"
            for name, row in counts.sources.items()))
    table.add_row("session gap", f"{format_duration(params.chosen_gap_s)}: {params.gap_reason}")
    table.add_row("dropped", ", ".join(f"{n:,} {r}" for r, n in counts.dropped.items()) or "none")
    table.add_row("masked", ", ".join(f"{n:,} {k}" for k, n in counts.masked.items())
                  or ("none found" if mask else "off"))
    voice = counts.voice
    if voice is not None:
        failed = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in voice["failed"].items())
        table.add_row("voice", f"{voice['transcribed_messages']:,} of {voice['voice_messages']:,}"
                      f" transcribed ({voice['from_cache']:,} from cache)"
                      + (f"; kept as markers: {failed}" if failed else ""))
    console.print(table)
    for warning in manifest.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    skipped = skipped_line(counts.skipped)
    if skipped:
        console.print(f"[yellow]skipped:[/] {escape(skipped)}; the report lists them.",
                      highlight=False)
    console.print(f"Wrote {summary.out_dir}/ in {summary.seconds:.1f}s: conversations.jsonl, "
                  f"manifest.json, report.html (open it to check the data).")


def eval_headline(run, attribution_informative: bool = True) -> str:
    """One line per evaluated run: perplexity and the user's attribution share, against base
    (or that attribution means nothing here, when the classifier is near chance)."""
    me = next(iter(run.speakers), None)
    attributed = (f"replies attributed to {me}: {_num(run.attribution_share.get(me))} (base "
                  f"{_num(run.base_attribution_share.get(me))}, ceiling "
                  f"{_num(run.ceiling.get(me))})" if attribution_informative
                  else "attribution not informative for this export (see the report)")
    return (f"{run.name}: perplexity {_num(run.overall_perplexity)} (base "
            f"{_num(run.base_overall_perplexity)}); {attributed}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def experiment_summary(console: Console, outputs) -> None:
    """The demo's (and compare's) closing table: where everything is, and what to try next."""
    from rich.rule import Rule
    from rich.table import Table

    console.print(Rule("[bold]done"))
    if outputs.eval is not None:
        run = outputs.eval.runs[0]
        table = Table(title="fine-tuned vs base (held-out conversations)")
        for column in ("speaker", "perplexity base -> tuned",
                       "attributed to speaker base -> tuned", "ceiling"):
            table.add_column(column)
        for speaker in run.speakers:
            table.add_row(
                speaker,
                _pair(run.base_speaker_perplexity.get(speaker),
                      run.speaker_perplexity.get(speaker), ".1f"),
                _pair(run.base_attribution_share.get(speaker), run.attribution_share.get(speaker),
                      ".0%"),
                _fmt(run.ceiling.get(speaker), ".0%"),
            )
        console.print(table)
    for name, path in outputs.paths.items():
        console.print(f"{name:>10}: {path}")
    console.print(f"   timings: {', '.join(f'{k} {v:.0f}s' for k, v in outputs.timings.items())}")
    if "run" in outputs.paths:
        console.print(
            f"\nTalk to it:  doppel chat {outputs.paths['run']}\n"
            f"Serve it:    doppel serve {outputs.paths['run']}   (then open http://127.0.0.1:8000)"
        )


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _pair(before, after, spec: str) -> str:
    return f"{_fmt(before, spec)} -> {_fmt(after, spec)}"
