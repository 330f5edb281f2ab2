"""Which one is real? An automatic blind test: a cross-fitted discriminator (eval/discriminator.py)
judges each held-out context's real reply against the model's reply to it, for the run and for
its base model (the floor); 50% is indistinguishable (the ceiling). It reuses the replies the eval
already generated for style and attribution, so it costs no generation."""

from __future__ import annotations

from doppel.eval import bootstrap
from doppel.eval import markdown as md
from doppel.eval.discriminator import MIN_PAIRS, Judged, describe, giveaways, judge
from doppel.eval.metric import Metric, Said, Scale
from doppel.eval.plain import VOICE, said
from doppel.eval.results import Discrimination, DiscriminatorRow, RunResult
from doppel.eval.tables import Report, bar_plot, noise_words, pair, section_table

CHANCE = 0.5  # a coin flip: the twin's reply and the real one are indistinguishable
ALL = "(all speakers)"
COUNTED = ("pairs", "contexts")
SHOWN = 5  # giveaways listed per row in the report (results.json keeps more)
HALVES = {"conversations": "whole conversations to a half",
          "contexts": "context by context: too few conversations to keep them whole"}


def _row(tuned: Judged, base: Judged, pairs: list[int], seed: int) -> DiscriminatorRow:
    picks = [[judged.picks[i] for i in pairs] for judged in (tuned, base)]
    return DiscriminatorRow(
        len(pairs), tuned.accuracy(pairs), base.accuracy(pairs),
        bootstrap.paired(bootstrap.mean_of(picks[0]), bootstrap.mean_of(picks[1]), len(pairs),
                         seed),
        giveaways(tuned, pairs), giveaways(base, pairs))


def compute(m) -> Discrimination:
    """Both models' replies judged against the real ones; per speaker and all together."""
    contexts = m.job.contexts
    real = [c.reply for c in contexts]
    groups = [c.conversation_id for c in contexts]
    tuned = judge(real, m.tuned.replies, groups, m.seed)
    base = judge(real, m.base.replies, groups, m.seed)
    if len(contexts) < MIN_PAIRS:
        return Discrimination(note=f"{len(contexts)} held-out contexts; the discriminator needs "
                                   f"at least {MIN_PAIRS} (raise --max-contexts)")
    if tuned is None or base is None:
        return Discrimination(note="the replies of half the contexts hold no text to tell apart")
    by: dict[str, list[int]] = {}
    for index, context in enumerate(contexts):
        by.setdefault(context.respondent, []).append(index)
    return Discrimination({speaker: _row(tuned, base, pairs, m.seed)
                           for speaker, pairs in by.items()},
                          _row(tuned, base, list(range(len(contexts))), m.seed), tuned.halves)


def _found(run: RunResult) -> Discrimination | None:
    return run.metrics.get("discriminator")


def _rows(run: RunResult) -> dict[str, DiscriminatorRow]:
    found = _found(run)
    if found is None or found.overall is None:
        return {}
    if len(found.speakers) < 2:  # the one speaker's row is all of them
        return dict(found.speakers)
    return {**found.speakers, ALL: found.overall}


def _giveaway_lines(r: Report) -> str:
    lines = []
    for run in r.runs:
        for speaker, row in _rows(run).items():
            if row.giveaways:
                words = "; ".join(describe(g) for g in row.giveaways[:SHOWN])
                lines.append(f"- {md.escape(run.name)}, {md.escape(speaker)}: {md.escape(words)}")
    if not lines:
        return ""
    return ("What gave the run's replies away most (each feature's weight times the difference "
            "between the real reply and the run's, summed over the pairs):\n\n"
            + "\n".join(lines) + "\n")


def section(r: Report) -> str:
    found = [f for run in r.runs if (f := _found(run)) is not None]
    if not found:
        return ""
    notes = [f"- {md.escape(run.name)}: {f.note}" for run in r.runs
             if (f := _found(run)) is not None and f.note]
    if all(f.overall is None for f in found):
        return "No verdict:\n\n" + "\n".join(notes) + "\n"
    halves = HALVES.get(next(f.halves for f in found if f.overall is not None) or "", "")
    tokens = r.everything.options.sampling.max_new_tokens
    return f"""At each held-out context, the model's reply and the real one: a discriminator
(logistic regression on word and character n-grams and habits: length, messages per turn,
emoji, punctuation, capitals, script) is trained on the pairs of half the contexts ({halves})
and picks which reply is real in the other half, then the halves swap, so every pair is judged by
a model that never saw it. The share of pairs where it picks the real reply: 0.50 is
indistinguishable (the ceiling), the base model's replies are the floor (lower is better). The
replies are the eval's own (sampling above, at most {tokens} new tokens; real replies are not
cut, so a long reply cut short can give itself away by its length).

{section_table(r.runs, r.cols, _rows, COUNTED)}
{noise_words(r.runs, _rows, "the share spotted")}{r.image("discriminator")}
{_giveaway_lines(r)}{chr(10).join(notes)}"""


def plot(r: Report, folder) -> str | None:
    names = list(dict.fromkeys(s for run in r.runs for s in _rows(run)))
    return bar_plot(r, folder, "discriminator",
                    "Automatic blind test: real reply picked (lower is better)",
                    "share", _rows, marks=[CHANCE] * len(names),
                    mark_label="indistinguishable (0.50)")


def plain(run: RunResult, me: str, r: Report) -> list[Said]:
    return said(VOICE, "an automatic blind test spots the twin", _rows(run).get(me), True)


def summary(run: RunResult, me: str, r: Report) -> dict[str, tuple[str, object]]:
    rows = _rows(run)
    if not rows:
        return {}
    mine, everyone = rows.get(me), rows.get(ALL)
    found = {f"automatic blind test, {me}: real reply picked (fine-tuned / base; 0.50 = "
             "indistinguishable)": (pair(mine), mine)}
    if everyone is not None:
        found["automatic blind test, all speakers: real reply picked (fine-tuned / base)"] = (
            pair(everyone), everyone)
    return found


def scales(run: RunResult, r: Report) -> dict[str, Scale]:
    found = _found(run)
    if found is None:
        return {}
    return {speaker: Scale(row.base, row.base, row.fine_tuned, CHANCE, lower_is_better=True,
                           floor_label="the base model's replies",
                           ceiling_label="indistinguishable", within_noise=Scale.noisy(row))
            for speaker, row in found.speakers.items()}


METRIC = Metric("discriminator", Discrimination | None, compute,
                title="Which one is real? An automatic blind test", section=section, plot=plot,
                plain=plain, summary=summary, scales=scales,
                scale_title="automatic blind test (real reply picked)",
                default=lambda: None, timed=True)
