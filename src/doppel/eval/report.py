"""The eval report: results.json (every number), report.md/.html, plots/*.png, transcripts.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doppel.atomic import atomic_file
from doppel.eval import attribution, ranking
from doppel.eval import markdown as md
from doppel.eval.plain import plain_summary
from doppel.eval.plots import grouped_bars
from doppel.eval.results import EvalResults, RunResult, write_results
from doppel.eval.style import FEATURES
from doppel.eval.transcripts import markdown as transcripts_markdown

Column = tuple[str, int, str]  # (label, run index, "fine_tuned" or "base")


def short_model(spec: str) -> str:
    """A model spec as a column label: an embedded name as is, a path by its folder or file name."""
    return Path(spec).name or spec


def columns(runs: list[RunResult]) -> list[Column]:
    """Base then fine-tuned for each run; a base shared with an earlier run is shown once."""
    found: list[Column] = []
    for i, run in enumerate(runs):
        if not run.base_shared:
            found.append((f"base ({short_model(run.baseline)})", i, "base"))
        found.append((run.name, i, "fine_tuned"))
    labels = [label for label, *_ in found]
    return [(f"{label} for {runs[index].name}" if labels.count(label) > 1 else label,
             index, which) for label, index, which in found]


def _rows(run: RunResult, section: str) -> dict[str, Any]:
    """speaker -> the section's row (PerplexityRow, StyleRow, AttributionRow or RankingRow)."""
    return run.perplexity.speakers if section == "perplexity" else getattr(run, section)


def _cell(runs, column: Column, section: str, speaker: str) -> float | None:
    """One column's number for a speaker (a shared base is the column of the run that made it)."""
    _, index, which = column
    row = _rows(runs[index], section).get(speaker)
    if row is None:
        return None
    if section == "style":
        return row.distance if which == "fine_tuned" else row.base_distance
    return getattr(row, which)


def _interval(runs, column: Column, section: str, speaker: str) -> tuple[float, float] | None:
    _, index, which = column
    row = _rows(runs[index], section).get(speaker)
    found = getattr(row, "intervals", None)
    return getattr(found, which) if found else None


def _with_interval(value: float | None, found: tuple[float, float] | None, digits: int) -> str:
    """A number and its 95% interval: 0.29 [0.17, 0.42]."""
    if value is None or found is None:
        return md.number(value, digits)
    return f"{md.number(value, digits)} [{md.number(found[0], digits)}, " \
           f"{md.number(found[1], digits)}]"


def noise_words(runs, section: str, what: str) -> str:
    """In words, per run: which speakers' changes from the base are within noise."""
    return _noise_lines([(run.name, _rows(run, section)) for run in runs], what)


def _noise_lines(named: list[tuple[str, dict[str, Any]]], what: str) -> str:
    """'- run: WHAT changed beyond noise for A, B; within noise (...) for C.' per (run, rows)."""
    lines = []
    for name, rows in named:
        found = {k: r.intervals for k, r in rows.items() if getattr(r, "intervals", None)}
        noisy = [k for k, i in found.items() if i.within_noise]
        clear = [k for k, i in found.items() if not i.within_noise]
        if found:
            lines.append(f"- {md.escape(name)}: {what} changed beyond noise for "
                         f"{', '.join(map(md.escape, clear)) or 'nobody'}; within noise (the 95% "
                         f"interval of the change holds 0) for "
                         f"{', '.join(map(md.escape, noisy)) or 'nobody'}.")
    return "\n".join(lines) + "\n" if lines else ""


def _speakers(runs, section: str) -> list[str]:
    seen: list[str] = []
    for run in runs:
        seen += [s for s in _rows(run, section) if s not in seen]
    return seen


COUNTED = {"perplexity": ("held-out tokens", "tokens"), "style": ("contexts", "contexts"),
           "attribution": ("contexts", "contexts")}


def section_table(runs, section: str, cols: list[Column], digits: int = 2) -> tuple[str, dict]:
    """A speaker x model table for one section (with how much data each row rests on)."""
    speakers = _speakers(runs, section)
    series = {col[0]: [_cell(runs, col, section, s) for s in speakers] for col in cols}
    header, key = COUNTED[section]
    counts = [next(getattr(_rows(r, section)[s], key) for r in runs if s in _rows(r, section))
              for s in speakers]
    rows = [[md.escape(s), md.number(counts[i]),
             *(_with_interval(series[col[0]][i], _interval(runs, col, section, s), digits)
               for col in cols)]
            for i, s in enumerate(speakers)]
    return md.table(["speaker", header, *(md.escape(label) for label, *_ in cols)], rows), series


def _pair(row, digits: int = 2, pick=None) -> str:
    """'fine-tuned [interval] / base [interval]' for a row with fine_tuned, base and intervals."""
    if row is None:
        return "n/a / n/a"
    tuned, base = pick(row) if pick else (row.fine_tuned, row.base)
    found = row.intervals
    return (f"{_with_interval(tuned, found and found.fine_tuned, digits)} / "
            f"{_with_interval(base, found and found.base, digits)}")


def summary_rows(run: RunResult, me: str, informative: bool) -> dict[str, tuple[str, Any]]:
    """The summary's compared rows for one run: label -> (cell, the row it comes from)."""
    found: dict[str, tuple[str, Any]] = {}
    overall, mine = run.perplexity.overall, run.perplexity.speakers.get(me)
    found["perplexity of all trained speakers (fine-tuned / base)"] = (_pair(overall), overall)
    found[f"perplexity of {me} (fine-tuned / base)"] = (_pair(mine), mine)
    attributed, mean_share = run.attribution.get(me), run.means.get("attribution")
    if informative:
        found[f"replies attributed to {me} (fine-tuned / base; ceiling)"] = (
            f"{_pair(attributed)}; {md.number(attributed and attributed.ceiling)}", attributed)
        found["mean attribution share across speakers (fine-tuned / base)"] = (
            _pair(mean_share), mean_share)
    else:
        word = "not informative for this export (section 3)"
        found[f"replies attributed to {me}"] = (word, None)
        found["mean attribution share across speakers"] = (word, None)
    style_mean = run.means.get("style")
    found["mean style distance across speakers (fine-tuned / base; lower is closer)"] = (
        _pair(style_mean), style_mean)
    ranked = run.ranking.get(me)
    if ranked is not None:
        cell = ranked.note or f"{_pair(ranked)}; chance {md.number(ranked.chance_hits)}"
        found[f"real reply ranked first for {me} (fine-tuned / base)"] = (cell, ranked)
    return found


def summary_table(everything: EvalResults) -> str:
    """Side by side: one column per run, its base next to it in each cell (fine-tuned / base),
    each with its 95% interval; then, in words, which changes are within noise."""
    runs, me = everything.runs, everything.dataset.me
    useful = attribution.informative(everything.classifier)
    compared = [summary_rows(r, me, useful) for r in runs]
    rows: dict[str, list[str]] = {
        "method": [str(r.method) for r in runs],
        "held-out contexts": [str(r.contexts) for r in runs],
    }
    for label in compared[0] if compared else {}:
        rows[label] = [found.get(label, ("n/a", None))[0] for found in compared]
    rows |= {
        "weights' precision (fine-tuned / base)": [
            f"{r.perplexity.precision} / {r.perplexity.base_precision}" for r in runs],
        "training wall time (s)": [md.number(r.training.get("wall_s"), 0) for r in runs],
        "trainable parameters": [md.number(r.training.get("trainable_params")) for r in runs],
        "peak memory (MB)": [md.number(r.training.get("peak_memory_mb"), 0) for r in runs],
        "eval time (s)": [md.number(sum(r.timings.values()), 1) for r in runs],
    }
    table = md.table(["", *(md.escape(r.name) for r in runs)],
                     [[label, *cells] for label, cells in rows.items()])
    return table + "\n" + summary_noise(runs, compared)


def summary_noise(runs, compared: list[dict[str, tuple[str, Any]]]) -> str:
    """Per run, in words: which of the summary's changes from the base are within noise."""
    named = [(run.name, {label.split(" (")[0]: row for label, (_, row) in found.items()})
             for run, found in zip(runs, compared, strict=True)]
    return _noise_lines(named, "the number against its base")


def _feature_cell(numbers, key: str, feature: str) -> str:
    """A style feature's mean ("real", "base" or "fine_tuned") with its interval."""
    spread = numbers.feature_intervals.get(key, {}).get(feature)
    return _with_interval(getattr(numbers, key)[feature], spread, 2)


def style_details(runs) -> str:
    """Per speaker: each style feature, real against every model."""
    parts = []
    for index, run in enumerate(runs):
        for speaker, numbers in run.style.items():
            header = ["feature", "real"]
            if not run.base_shared:
                header.append(f"base ({short_model(run.baseline)})")
            header.append(run.name)
            rows = []
            for feature, meaning in FEATURES.items():
                row = [f"{feature} ({meaning})", _feature_cell(numbers, "real", feature)]
                if not run.base_shared:
                    row.append(_feature_cell(numbers, "base", feature))
                rows.append([*row, _feature_cell(numbers, "fine_tuned", feature)])
            title = f"**{md.escape(speaker)}** ({numbers.contexts} contexts, run {index + 1})"
            parts.append(f"{title}\n\n{md.table(header, rows)}")
    return "\n".join(parts)


def scored_tokens(cap: int) -> str:
    """What the perplexity table rests on, in words."""
    if not cap:
        return "Over every held-out token each trained speaker wrote"
    return (f"Over held-out conversations drawn in a seeded order until each trained speaker has "
            f"{cap:,} tokens (`--ppl-max-tokens`; the conversation that crosses it is kept whole, "
            "and the interval shows what the sample costs)")


def precisions(runs) -> str:
    """Which precision each model's perplexity was computed in, in words."""
    found = {p for r in runs for p in (r.perplexity.precision, r.perplexity.base_precision)}
    if len(found) == 1:
        return found.pop()
    return "; ".join(f"{md.escape(r.name)} {r.perplexity.precision} (base "
                     f"{r.perplexity.base_precision})" for r in runs)


def ranking_section(runs) -> str:
    """Per run and speaker: hits@1 and MRR of base and fine-tuned, chance, or why there is none."""
    parts = []
    for run in runs:
        if not run.ranking:
            continue
        rows = []
        for speaker, row in run.ranking.items():
            if row.note:
                rows.append([md.escape(speaker), md.number(row.contexts), md.escape(row.note),
                             "", "", "", ""])
                continue
            hits, mrr = row.intervals, row.mrr_intervals
            rows.append([
                md.escape(speaker), md.number(row.contexts),
                f"{md.number(row.chance_hits)} / {md.number(row.chance_mrr)}",
                _with_interval(row.base_hits, hits and hits.base, 2),
                _with_interval(row.fine_tuned_hits, hits and hits.fine_tuned, 2),
                _with_interval(row.base_mrr, mrr and mrr.base, 2),
                _with_interval(row.fine_tuned_mrr, mrr and mrr.fine_tuned, 2)])
        header = ["speaker", "contexts", "chance (hits@1 / MRR)", "base hits@1",
                  "fine-tuned hits@1", "base MRR", "fine-tuned MRR"]
        parts.append(f"**{md.escape(run.name)}**\n\n{md.table(header, rows)}"
                     f"{noise_words([run], 'ranking', 'hits@1')}")
    return "\n".join(parts) or "Not run (--rank-candidates 0).\n"


PLACES = {"dataset": "dataset folder (files)", "run": "run folder (files)",
          "generations": "generations (texts)"}


def canary_section(runs) -> str:
    """With --canaries: masked canaries found per place (0 keeps the promise), secret exposure."""
    parts = []
    for run in runs:
        found = run.canaries
        if found is None:
            continue
        rows = [[PLACES[place], md.number(checked),
                 md.number(sum(leak.place == place for leak in found.leaks))]
                for place, checked in found.checked.items()]
        text = (f"**{md.escape(run.name)}** ({found.masked} masked canaries from "
                f"`{md.escape(found.file)}`)\n\n"
                f"{md.table(['where', 'looked at', 'masked canaries found'], rows)}")
        text += "\n" * bool(found.leaks) + "".join(
            f"- **found** {md.escape(leak.canary)} in {leak.place}: {md.escape(leak.where)}\n"
            for leak in found.leaks)
        secret = found.secret
        if secret is not None:
            text += (f"\nThe secret, planted {secret.planted} times ({secret.in_train} in the "
                     f"train split), ranked among {secret.candidates:,} random values of its "
                     f"shape: rank {secret.base_rank:,} under the base model (exposure "
                     f"{secret.base:.1f} bits), rank {secret.fine_tuned_rank:,} under "
                     f"{md.escape(run.name)} (exposure {secret.fine_tuned:.1f} bits; "
                     f"{secret.max_exposure:.1f} is the most, about 1 is none).\n")
        parts.append(text)
    if not parts:
        return ""
    return ("## Privacy canaries\n\nMasked canaries (phones, emails, card numbers planted in the "
            "export) must appear nowhere: not in the dataset or run folder (any bytes), not in "
            "any text the run generated, including replies prompted with the text that preceded "
            "each canary. The secret sentence was left unmasked on purpose: its exposure (Carlini "
            "et al.'s \"secret sharer\") says how much the run memorised it.\n\n"
            + "\n".join(parts) + "\n")


def timing_table(everything: EvalResults) -> str:
    runs = everything.runs
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.timings if k not in keys]
    rows = [[k, *(md.number(r.timings.get(k), 1) for r in runs)] for k in keys]
    rows += [[f"{k} (all runs)", *([md.number(v, 1)] + [""] * (len(runs) - 1))]
             for k, v in everything.timings.items()]
    return md.table(["part (seconds)", *(md.escape(r.name) for r in runs)], rows)


def samples_markdown(runs) -> str:
    parts = []
    for run in runs:
        parts.append(f"### {md.escape(run.name)}\n")
        for sample in run.samples:
            parts.append(f"Context ({md.escape(sample.respondent)} replies next):\n")
            parts += [f"> **{md.escape(s)}:** {md.escape(t)}  " for s, t in sample.history]
            for label, key in (("real", "real"), ("fine-tuned", "fine_tuned"), ("base", "base")):
                text = " ⏎ ".join(md.escape(m) for m in getattr(sample, key)) or "_(no reply)_"
                parts.append(f"\n- {label}: {text}")
            parts.append("")
    return "\n".join(parts) + "\n"


def transcripts_section(runs, level: int = 2) -> str:
    parts = []
    for run in runs:
        chats = {f"{run.name} (fine-tuned)": run.transcripts.fine_tuned,
                 f"base ({short_model(run.baseline)})": run.transcripts.base}
        heading = "#" * level
        body = transcripts_markdown(chats, level + 1)
        parts.append(f"{heading} {md.escape(run.name)}\n\n{body}")
    return "\n".join(parts)


def write_plots(folder: Path, runs, cols: list[Column]) -> dict[str, str]:
    """The three plots; returns section -> relative path."""
    made = {}
    specs = {
        "perplexity": ("Held-out perplexity per speaker (lower is better)", "perplexity"),
        "style": ("Style distance from real replies (lower is closer)", "distance"),
        "attribution": ("Replies attributed to the intended speaker", "share"),
    }
    for section, (title, ylabel) in specs.items():
        speakers = _speakers(runs, section)
        if not speakers:
            continue
        _, series = section_table(runs, section, cols)
        marks = None
        if section == "attribution":
            marks = [next((r.attribution[s].ceiling for r in runs if s in r.attribution), None)
                     for s in speakers]
        grouped_bars(folder / "plots" / f"{section}.png", title, ylabel, speakers, series, marks,
                     "classifier ceiling (real replies)")
        made[section] = f"plots/{section}.png"
    return made


def report_markdown(everything: EvalResults, plots: dict[str, str], cols: list[Column]) -> str:
    data, runs, clf = everything.dataset, everything.runs, everything.classifier
    opts, sampling = everything.options, everything.options.sampling
    notes = [f"- {md.escape(r.name)}: training did not finish; these are its last weights."
             for r in runs if not r.finished]
    notes += [f"- {md.escape(r.name)} was trained on a different dataset (fingerprint); its "
              "training data may include these held-out conversations." for r in runs
              if not r.dataset_matches]
    plot = {k: f"\n![{k}]({v})\n" for k, v in plots.items()}
    ppl_table, _ = section_table(runs, "perplexity", cols)
    style_table, _ = section_table(runs, "style", cols)
    attr_table, _ = section_table(runs, "attribution", cols)
    attr_noise = noise_words(runs, "attribution", "the attributed share")
    if not attribution.informative(clf):
        attr_noise, plot["attribution"] = "", ""
        attr_table = ("**Attribution is not informative for this export**: "
                      + attribution.not_informative_note(clf) + "\n")
    contexts = ", ".join(f"{md.escape(r.name)}: {r.contexts}" for r in runs)
    intro = (
        f"Dataset `{md.escape(data.path)}`: user **{md.escape(data.me)}**, main language "
        f"`{data.main_language}`, {data.val_conversations} held-out conversations.\n"
        f"Held-out contexts for generation: {contexts} (balanced across the user and top "
        f"friends each run trained).\nSeed {sampling.seed}, temperature {sampling.temperature}, "
        f"top-p {sampling.top_p}, at most {sampling.max_new_tokens} new tokens, "
        f"{opts.history_turns} turns of history, batches of {opts.batch_size}.\n"
        f"Numbers in brackets are 95% bootstrap intervals (seed {sampling.seed}; over held-out "
        f"conversations for perplexity, over contexts otherwise).\n"
        f"The eval took {md.number(everything.timings.get('total'), 1)} s (parts at the end)."
    )
    warnings = "".join(f"{note}\n" for note in notes) + ("\n" if notes else "")
    return f"""# doppel eval

{plain_summary(everything)}

{intro}

{warnings}## Summary

{summary_table(everything)}
## 1. Perplexity on held-out messages

{scored_tokens(opts.ppl_max_tokens)} (message and end tokens, as in training).
Weights in {precisions(runs)} (perplexities compare across machines at one precision: bf16 moved
a fine-tuned run's by 9% from fp32's, docs/benchmarks.md).

{ppl_table}
{noise_words(runs, "perplexity", "perplexity")}{plot.get('perplexity', '')}
## 2. Style fidelity

Distance of generated replies from the real ones at the same contexts (lower is closer): the mean
over features of |log2((generated + 1) / (real + 1))| for counts (1 = twice or half; capped at 3)
and |generated - real| for shares (1 = 100 points).

{style_table}
{noise_words(runs, "style", "style distance")}{plot.get('style', '')}
{style_details(runs)}
## 3. Who wrote this?

A classifier on {'character' if clf.features == 'char' else 'word and character'} n-grams
(logistic regression) trained on the train split's real turns of
{', '.join(md.escape(c) for c in clf.classes) or 'nobody (fewer than two speakers)'}
attributes each generated reply. Its accuracy on {clf.turns} real held-out turns is
{_with_interval(clf.accuracy, clf.interval, 2)} (the ceiling; chance
{md.number(1 / max(len(clf.classes), 1))}; per speaker in the table).

{attr_table}
{attr_noise}{plot.get('attribution', '')}
## 4. Does the reply fit the conversation? (ranking)

For each held-out context the real reply is one of {opts.rank_candidates} candidates; the others
are real turns by the same speaker from other conversations and turns by other speakers. Each
model ranks them by log-likelihood per token after the context (over each candidate's first
{ranking.CANDIDATE_TOKENS} tokens): hits@1 is the share where the
real reply comes first, MRR the mean of 1/rank (chance: a model ranking at random).

{ranking_section(runs)}
## 5. Scripted chats

"hey" and "what's up?" (and the same in the main language when it is not English), as the
user with each top friend and as each trained friend with the user: see
[transcripts.md](transcripts.md), also at the end of this report.

## 6. Samples

{samples_markdown(runs)}
{canary_section(runs)}## Time per part

{timing_table(everything)}
## Appendix: scripted chats

{transcripts_section(runs, level=3)}"""


def write_report(folder: Path, everything: EvalResults) -> None:
    """Write every report file into folder (a temporary folder from atomic_dir)."""
    runs = everything.runs
    cols = columns(runs)
    plots = write_plots(folder, runs, cols)
    text = report_markdown(everything, plots, cols)
    write_results(folder, everything)
    with atomic_file(folder / "transcripts.md") as out:
        out.write("# Scripted chats\n\n" + transcripts_section(runs))
    with atomic_file(folder / "report.md") as out:
        out.write(text)
    with atomic_file(folder / "report.html") as out:
        out.write(md.to_html(text, "doppel eval"))
