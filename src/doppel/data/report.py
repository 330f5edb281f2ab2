"""The dataset report (report.md, report.html, plots/*.png), drawn from the manifest alone.

Everything shown comes from manifest.json (as data/manifest.py's typed Manifest), so a report
can be redrawn from any dataset folder, and the numbers a person reads are the numbers the next
step uses.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from doppel.data.gaps import BINS_PER_DECADE, GapHistogram, format_duration
from doppel.data.manifest import Manifest

TOP = 20  # bars per volume plot


@dataclass(slots=True)
class Section:
    """One part of the report, rendered the same way into Markdown and HTML."""

    title: str
    lines: list[str] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)  # first row is the header
    image: str | None = None


def _label(name: str) -> str:
    """A name as a plot label: short, no lone surrogates, no "$" (matplotlib's math mode)."""
    return name.encode("utf-8", "replace").decode("utf-8")[:30].replace("$", r"\$")


def _barh(ax: Any, labels: list[str], values: list[float], xlabel: str) -> None:
    ax.barh(range(len(values)), values, color="#4c72b0")
    ax.set_yticks(range(len(values)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


def _plot_chats(ax: Any, m: Manifest) -> None:
    kept = [c for c in m.chats if c.kept]
    kept.sort(key=lambda c: -sum(c.messages.values()))
    kept = kept[:TOP]
    train = [c.messages.get("train", 0) for c in kept]
    val = [c.messages.get("val", 0) for c in kept]
    labels = [_label(c.name) for c in kept]
    ax.barh(range(len(kept)), train, color="#4c72b0", label="train")
    ax.barh(range(len(kept)), val, left=train, color="#dd8452", label="val")
    ax.set_yticks(range(len(kept)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("messages kept")
    ax.legend()
    ax.set_title(f"Messages per chat (top {TOP})")


def _plot_speakers(ax: Any, m: Manifest) -> None:
    speakers = list(m.speakers.values())[:TOP]
    _barh(ax, [_label(s.name) for s in speakers], [s.messages for s in speakers], "messages")
    ax.set_title(f"Messages per speaker (top {TOP})")


def _plot_gaps(ax: Any, m: Manifest) -> None:
    counts = m.stats.gap_histogram
    edges = [GapHistogram.edge(i) for i in range(len(counts) + 1)]
    ax.stairs(counts, edges, fill=True, color="#4c72b0")
    ax.set_xscale("log")
    gap = m.params.chosen_gap_s
    how = ("fixed by --gap" if m.params.gap != "auto"
           else "auto: " + m.params.gap_reason.split(" between")[0].split(";")[0])
    ax.axvline(gap, color="#c44e52", linewidth=2,
               label=f"session gap {format_duration(gap)} ({how})")
    marks = [(60, "1m"), (3600, "1h"), (86400, "1d"), (7 * 86400, "1w"), (30 * 86400, "30d")]
    ax.set_xticks([s for s, _ in marks], [label for _, label in marks])
    ax.set_xlabel(f"pause before a message (log scale, {BINS_PER_DECADE} bins per decade)")
    ax.set_ylabel("messages")
    ax.legend()
    ax.set_title("Pauses between messages and the session gap")


def _plot_lengths(ax: Any, m: Manifest) -> None:
    bins = m.stats.length_bit_bins
    keys = list(range(1, max(bins) + 1)) if bins else []
    labels = [f"{1 << (k - 1)}-{(1 << k) - 1}" for k in keys]
    ax.bar(range(len(keys)), [bins.get(k, 0) for k in keys], color="#4c72b0")
    ax.set_xticks(range(len(keys)), labels, rotation=45, ha="right")
    ax.set_xlabel("characters per message")
    ax.set_ylabel("messages")
    ax.set_title("Message length")


def _plot_sizes(ax: Any, m: Manifest) -> None:
    sizes = m.stats.conversation_sizes
    if sizes:
        ax.hist(list(sizes), weights=list(sizes.values()), bins=min(50, max(sizes)),
                color="#4c72b0")
    ax.set_xlabel("messages per conversation")
    ax.set_ylabel("conversations")
    ax.set_title("Conversation size")


def _plot_drops(ax: Any, m: Manifest) -> None:
    counts = m.counts
    items = [*counts.dropped.items()]
    if counts.messages_in_skipped_chats:
        items.append(("in skipped chats", counts.messages_in_skipped_chats))
    items.sort(key=lambda kv: -kv[1])
    _barh(ax, [k for k, _ in items] or ["(none)"], [v for _, v in items] or [0], "messages")
    ax.set_title("Messages left out, by reason")


PLOTS: dict[str, Callable[[Any, Manifest], None]] = {
    "chats.png": _plot_chats,
    "speakers.png": _plot_speakers,
    "gaps.png": _plot_gaps,
    "lengths.png": _plot_lengths,
    "conversation_sizes.png": _plot_sizes,
    "drops.png": _plot_drops,
}


NO_PLOTS = ("Plots: none, matplotlib is not installed here (an offline node's wheelhouse "
            "leaves it out); `doppel prepare` draws them where it is.")


def write_plots(folder: Path, manifest: Manifest) -> bool:
    """plots/*.png, where matplotlib is installed; True when drawn."""
    if find_spec("matplotlib") is None:
        return False
    # Figure and the Agg canvas directly: pyplot's import and figure bookkeeping cost more
    # than drawing the six plots
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    (folder / "plots").mkdir(exist_ok=True)
    for name, draw in PLOTS.items():
        fig = Figure(figsize=(8, 5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        with warnings.catch_warnings():  # emoji in names: "Glyph ... missing from font"
            warnings.simplefilter("ignore", UserWarning)
            draw(ax, manifest)
            fig.tight_layout()
            fig.savefig(folder / "plots" / name, dpi=90)
    return True


def skipped_line(skipped: dict[str, dict[str, int]]) -> str | None:
    """One line naming what the readers could not read, per source and reason; None if
    nothing (prepare prints it, the report's overview shows it)."""
    if not skipped:
        return None
    parts = [f"{source}: " + ", ".join(f"{n:,} {reason}" for reason, n in reasons.items())
             for source, reasons in skipped.items()]
    total = sum(sum(reasons.values()) for reasons in skipped.values())
    return (f"{total:,} lines or records of the exports could not be read and were skipped "
            f"({'; '.join(parts)})")


def _sections(m: Manifest) -> list[Section]:
    counts, params = m.counts, m.params
    overview = Section("Overview", [
        f"You: **{m.me.name}** ({m.me.id}).",
        *[f"Export ({e.source}): `{e.path}` ({e.size_bytes:,} bytes, layout {e.layout})."
          for e in m.exports],
        f"Fingerprint `{m.fingerprint[:23]}...`.",
        f"Chats used: {counts.chats_kept}; left out: " + (", ".join(
            f"{n} {reason}" for reason, n in counts.chats_skipped.items()) or "none") + ".",
        f"Conversations: {counts.conversations['train']:,} train, "
        f"{counts.conversations['val']:,} val; messages: {counts.messages['train']:,} "
        f"train, {counts.messages['val']:,} val; speakers: {len(m.speakers)}.",
        "Masked: " + (", ".join(f"{n} {kind}" for kind, n in counts.masked.items())
                      or ("nothing found" if params.mask else "off (--no-mask)")) + ".",
        *[f"Warning: {w}." for w in m.warnings],
        *([f"{line}: see \"Skipped while reading\"."] if (line := skipped_line(
            counts.skipped)) else []),
    ])
    gap = Section("Session gap", [
        f"A pause longer than **{format_duration(params.chosen_gap_s)}** starts a new "
        f"conversation: {params.gap_reason}. Calls and cleared history always do."
    ], image="plots/gaps.png")
    sources = Section("Sources", table=[["source", "chats", "chats used", "messages read",
                                         "messages kept"]])
    for name, row in counts.sources.items():
        sources.table.append([name, *(f"{n:,}" for n in (row.chats, row.chats_kept,
                                                          row.messages_read, row.messages_kept))])
    chats = Section("Chats", table=[["chat", "source", "type", "used", "conversations",
                                     "messages", "left out"]], image="plots/chats.png")
    for c in m.chats:
        used = "yes" if c.kept else f"no ({c.skip_reason})"
        chats.table.append([c.name, c.source, c.type, used, str(sum(c.conversations.values())),
                            str(sum(c.messages.values())),
                            ", ".join(f"{k} {v}" for k, v in c.dropped.items())])
    speakers = Section("Speakers", table=[["speaker", "id", "messages", "chats"]],
                       image="plots/speakers.png")
    for sid, s in m.speakers.items():
        speakers.table.append([s.name, sid, str(s.messages), str(len(s.chats))])
    drops = Section("What was left out", [
        f"{counts.single_speaker_conversations} conversations in which only one person "
        "wrote were dropped (nobody answered)." if not params.keep_single_speaker else
        "Conversations with a single speaker were kept (--keep-single-speaker)."],
        table=[["reason", "messages"], *[[k, str(v)] for k, v in counts.dropped.items()]],
        image="plots/drops.png")
    skipped = Section("Skipped while reading", [
        "Lines or records of an export that no message holds (every other line is in a "
        "message, joined to one, or only the export's layout: headers, date lines)."
        if counts.skipped else "Nothing: every line and record of the exports was read."],
        table=[["source", "reason", "lines or records"], *[
            [source, reason, f"{n:,}"] for source, reasons in counts.skipped.items()
            for reason, n in reasons.items()]] if counts.skipped else [])
    shapes = [Section("Message length", image="plots/lengths.png"),
              Section("Conversation size", image="plots/conversation_sizes.png")]
    shown = params.model_dump(mode="json", exclude_unset=True, by_alias=True)
    params_table = Section("Parameters", table=[["parameter", "value"],
                                                *[[k, str(v)] for k, v in shown.items()]])
    voice = [_voice(counts.voice)] if counts.voice is not None else []
    return [overview, sources, *voice, gap, chats, speakers, drops, skipped, *shapes,
            params_table]


def _voice(v: dict[str, Any]) -> Section:
    """--transcribe: how many voice messages became words, and why the others stayed markers."""
    rate = v.get("audio_seconds_per_second")
    return Section("Voice messages", [
        f"{v['transcribed_messages']:,} of {v['voice_messages']:,} voice messages are their "
        f"transcript (model: {v['model']}): {v['transcribed_now']:,} audio files heard in this "
        f"run ({v['audio_seconds']:,} s of audio in {v['seconds']:,} s"
        + (f", {rate} s of audio a second" if rate else "") + f"), {v['from_cache']:,} "
        "from the transcript cache.",
        "The others keep their marker: " + (", ".join(
            f"{n:,} {reason.replace('_', ' ')}" for reason, n in v["failed"].items()) or "none")
        + "."])


def _markdown(sections: list[Section]) -> str:
    out = ["# doppel dataset report", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.lines:
            out += [*[f"{line}  " for line in s.lines], ""]
        if s.table:
            cells = [[cell.replace("|", "\\|") for cell in row] for row in s.table]
            out += ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
            out += ["| " + " | ".join(row) + " |" for row in cells[1:]] + [""]
        if s.image:
            out += [f"![{s.title}]({s.image})", ""]
    return "\n".join(out)


def _inline(text: str) -> str:
    """The few Markdown marks the report uses, as HTML."""
    parts = html.escape(text).split("**")
    text = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html(sections: list[Section]) -> str:
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>doppel dataset report"
           "</title><style>body{font-family:sans-serif;max-width:60em;margin:auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
           "img{max-width:100%}</style></head><body><h1>doppel dataset report</h1>"]
    for s in sections:
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        out += [f"<p>{_inline(line)}</p>" for line in s.lines]
        if s.table:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in s.table[0])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                           for row in s.table[1:])
            out.append(f"<table><tr>{head}</tr>{rows}</table>")
        if s.image:
            out.append(f"<p><img src='{s.image}' alt='{html.escape(s.title)}'></p>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(folder: Path, manifest: Manifest) -> None:
    """Write report.md, report.html and plots/ into a dataset folder."""
    folder = Path(folder)
    drawn = write_plots(folder, manifest)
    sections = _sections(manifest)
    if not drawn:
        sections[0].lines.append(NO_PLOTS)
        for section in sections:
            section.image = None
    # names may hold a lone surrogate (a broken emoji in an old export): show it as "?"
    (folder / "report.md").write_text(_markdown(sections), encoding="utf-8", errors="replace")
    (folder / "report.html").write_text(_html(sections), encoding="utf-8", errors="replace")
