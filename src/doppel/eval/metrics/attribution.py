"""Who wrote this? The share of generated replies a classifier of real turns gives to the speaker
the model played."""

from __future__ import annotations

from doppel.eval import attribution, bootstrap
from doppel.eval import markdown as md
from doppel.eval.metric import Metric, Said, Scale
from doppel.eval.plain import VOICE, said
from doppel.eval.results import AttributionRow, RunResult
from doppel.eval.tables import (
    Report,
    bar_plot,
    noise_words,
    pair,
    section_table,
    with_interval,
)

COUNTED = ("contexts", "contexts")


def compute(m) -> dict[str, AttributionRow]:
    """Per speaker: share of generated replies the classifier gives to the intended speaker."""
    attributor, ceiling = m.shared.attributor, m.shared.ceiling
    numbers = {}
    tuned_by, base_by = m.by_speaker(m.tuned.replies), m.by_speaker(m.base.replies)
    for speaker in tuned_by:
        row = AttributionRow(len(tuned_by[speaker]), None, None, ceiling.per_speaker.get(speaker),
                             floor=ceiling.per_speaker_floor.get(speaker))
        if attributor is not None and speaker in attributor.classes:
            hits = [[float(g == speaker) for g in attributor.predict(by[speaker])]
                    for by in (tuned_by, base_by)]
            row.fine_tuned, row.base = (sum(h) / len(h) if h else None for h in hits)
            row.intervals = bootstrap.paired(bootstrap.mean_of(hits[0]),
                                             bootstrap.mean_of(hits[1]), len(hits[0]), m.seed)
        numbers[speaker] = row
    return numbers


def _rows(run: RunResult) -> dict[str, AttributionRow]:
    return run.attribution


def _informative(r: Report) -> bool:
    return attribution.informative(r.everything.classifier)


def section(r: Report) -> str:
    runs, clf = r.runs, r.everything.classifier
    table = section_table(runs, r.cols, _rows, COUNTED)
    words = noise_words(runs, _rows, "the attributed share") + r.image("attribution")
    if not _informative(r):
        words = ""
        table = ("**Attribution is not informative for this export**: "
                 + attribution.not_informative_note(clf) + "\n")
    kind = "character" if clf.features == "char" else "word and character"
    return f"""A classifier on {kind} n-grams
(logistic regression) trained on the train split's real turns of
{', '.join(md.escape(c) for c in clf.classes) or 'nobody (fewer than two speakers)'}
attributes each generated reply. Its accuracy on {clf.turns} real held-out turns is
{with_interval(clf.accuracy, clf.interval, 2)} (the ceiling; chance
{md.number(1 / max(len(clf.classes), 1))}; per speaker in the table).

{table}
{words}"""


def plot(r: Report, folder) -> str | None:
    if not _informative(r):
        return None
    runs = r.runs
    names = [s for s in dict.fromkeys(s for run in runs for s in run.attribution)]
    marks = [next((run.attribution[s].ceiling for run in runs if s in run.attribution), None)
             for s in names]
    return bar_plot(r, folder, "attribution", "Replies attributed to the intended speaker",
                    "share", _rows, marks=marks, mark_label="classifier ceiling (real replies)")


def plain(run: RunResult, me: str, r: Report) -> list[Said]:
    if not _informative(r):
        return []
    return said(VOICE, "replies attributed to you", run.attribution.get(me), False)


def summary(run: RunResult, me: str, r: Report) -> dict[str, tuple[str, object]]:
    if not _informative(r):
        word = "not informative for this export (section 3)"
        return {f"replies attributed to {me}": (word, None),
                "mean attribution share across speakers": (word, None)}
    attributed, mean = run.attribution.get(me), run.means.get("attribution")
    return {f"replies attributed to {me} (fine-tuned / base; ceiling)": (
                f"{pair(attributed)}; {md.number(attributed and attributed.ceiling)}", attributed),
            "mean attribution share across speakers (fine-tuned / base)": (pair(mean), mean)}


def note(r: Report) -> str:
    if _informative(r):
        return ""
    return ("Attribution is not informative for this export: "
            + attribution.not_informative_note(r.everything.classifier))


def scales(run: RunResult, r: Report) -> dict[str, Scale]:
    if not _informative(r):
        return {}
    return {speaker: Scale(row.floor, row.base, row.fine_tuned, row.ceiling,
                           floor_label="other speakers' real messages",
                           ceiling_label="the speaker's real held-out messages",
                           within_noise=Scale.noisy(row))
            for speaker, row in run.attribution.items()}


METRIC = Metric("attribution", dict[str, AttributionRow], compute, title="Who wrote this?",
                section=section, plot=plot, plain=plain, summary=summary, note=note, scales=scales,
                scale_title="attribution share", timed=True)
