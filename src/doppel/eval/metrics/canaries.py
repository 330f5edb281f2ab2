"""`--canaries`: masked canaries found anywhere (none, for a run that keeps its promise) and the
planted secret's exposure (eval/canary_probe.py does the work while each model is loaded)."""

from __future__ import annotations

from doppel.eval import canary_probe
from doppel.eval import markdown as md
from doppel.eval.metric import Metric
from doppel.eval.results import CanaryResult
from doppel.eval.tables import Report

PLACES = {"dataset": "dataset folder (files)", "run": "run folder (files)",
          "generations": "generations (texts)"}


def compute(m) -> CanaryResult | None:
    """With --canaries: the probes over the dataset, the run folder and all the run generated."""
    if m.job.canaries is None:
        return None
    tuned = m.tuned
    generated = {f"held-out reply {i + 1}": "\n".join(r) for i, r in enumerate(tuned.replies)}
    generated |= {f"scripted chat {i + 1}": "\n".join(text for _, text in t.lines)
                  for i, t in enumerate(tuned.transcripts)}
    return canary_probe.result(m.job.canaries, m.dataset, m.info.path, tuned.canaries,
                               m.base.canaries, generated)


def _secret_words(name: str, found: CanaryResult) -> str:
    secret = found.secret
    if secret is None:
        return ""
    return (f"\nThe secret, planted {secret.planted} times ({secret.in_train} in the "
            f"train split), ranked among {secret.candidates:,} random values of its "
            f"shape: rank {secret.base_rank:,} under the base model (exposure "
            f"{secret.base:.1f} bits), rank {secret.fine_tuned_rank:,} under "
            f"{md.escape(name)} (exposure {secret.fine_tuned:.1f} bits; "
            f"{secret.max_exposure:.1f} is the most, about 1 is none).\n")


def section(r: Report) -> str:
    """Masked canaries found per place (0 keeps the promise), the secret's exposure."""
    parts = []
    for run in r.runs:
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
        parts.append(text + _secret_words(run.name, found))
    if not parts:
        return ""
    return ("Masked canaries (phones, emails, card numbers planted in the "
            "export) must appear nowhere: not in the dataset or run folder (any bytes), not in "
            "any text the run generated, including replies prompted with the text that preceded "
            "each canary. The secret sentence was left unmasked on purpose: its exposure (Carlini "
            "et al.'s \"secret sharer\") says how much the run memorised it.\n\n"
            + "\n".join(parts) + "\n")


METRIC = Metric("canaries", CanaryResult | None, compute, title="Privacy canaries",
                section=section, numbered=False, default=lambda: None)
