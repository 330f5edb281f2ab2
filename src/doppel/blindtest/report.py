"""The results as text: a Markdown section (the terminal prints it, `doppel eval` can embed it)."""

from __future__ import annotations

from doppel.blindtest.results import Results, Share

SHOWN_HISTORY = 4  # messages of context quoted before a fooling item's replies


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _row(name: str, share: Share) -> str:
    interval = ("-" if share.interval is None else
                f"{_pct(share.interval[0])} to {_pct(share.interval[1])}")
    return f"| {name} | {share.answers} | {_pct(share.share)} | {interval} | {share.reading} |"


def _quote(lines: list[str]) -> str:
    return "<br>".join(line.replace("|", "\\|").replace("\n", " ") for line in lines) or "(none)"


def markdown(results: Results, heading: str = "##", title: bool = True) -> str:
    """The blind test's section: shares with intervals, ratings, the items that fooled most
    (`title=False`: without its own heading, under the eval report's)."""
    chance = _pct(results.chance)
    head = [f"{heading} Which one is real? Blind test of {results.persona}", ""] if title else []
    lines = [*head,
             f"Judges picked the reply they thought was {results.persona}'s real one among "
             f"{results.candidates}; chance is {chance}. The share is how often they picked the "
             "twin's (95% bootstrap interval over judges and items).", "",
             "| judge | answers | twin picked | 95% interval | reading |",
             "|---|---|---|---|---|",
             *(_row(judge, share) for judge, share in results.judges.items()),
             _row("**all judges**", results.overall), ""]
    if not results.overall.answers:
        return "\n".join([*lines, "No answers yet: send the judges their links.", ""])
    picked = ", ".join(f"{source} {_pct(share)}" for source, share in results.picks.items())
    lines += [f"Picks: {picked}.", ""]
    rated = [f"{source} {value:.1f}" for source, value in results.ratings.items()
             if value is not None]
    if rated:
        lines += [f"Mean rating \"sounds like {results.persona}\" (1-5): {', '.join(rated)}.", ""]
    if results.fooled:
        lines += [f"{heading}# The items that fooled judges most", ""]
        for fooled in results.fooled:
            context = [f"{speaker}: {text}" for speaker, text in fooled.history[-SHOWN_HISTORY:]]
            lines += [f"- item {fooled.item}: the twin was picked {fooled.twin_picks} of "
                      f"{fooled.answers} times", f"  - before: {_quote(context)}",
                      f"  - real: {_quote(fooled.real)}", f"  - twin: {_quote(fooled.twin)}"]
        lines.append("")
    return "\n".join(lines)
