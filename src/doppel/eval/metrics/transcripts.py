"""Scripted chats ("hey", "what's up?") each model played (eval/transcripts.py plays them)."""

from __future__ import annotations

from pathlib import Path

from doppel.atomic import atomic_file
from doppel.eval import markdown as md
from doppel.eval.metric import Metric
from doppel.eval.results import Transcripts
from doppel.eval.tables import Report, short_model
from doppel.eval.transcripts import markdown


def compute(m) -> Transcripts:
    return Transcripts(m.tuned.transcripts, m.base.transcripts)


def transcripts_section(runs, level: int = 2) -> str:
    parts = []
    for run in runs:
        chats = {f"{run.name} (fine-tuned)": run.transcripts.fine_tuned,
                 f"base ({short_model(run.baseline)})": run.transcripts.base}
        body = markdown(chats, level + 1)
        parts.append(f"{'#' * level} {md.escape(run.name)}\n\n{body}")
    return "\n".join(parts)


def section(r: Report) -> str:
    return """"hey" and "what's up?" (and the same in the main language when it is not \
English), as the
user with each top friend and as each trained friend with the user: see
[transcripts.md](transcripts.md), also at the end of this report.
"""


def appendix(r: Report) -> str:
    return f"## Appendix: scripted chats\n\n{transcripts_section(r.runs, level=3)}"


def files(r: Report, folder: Path) -> None:
    with atomic_file(folder / "transcripts.md") as out:
        out.write("# Scripted chats\n\n" + transcripts_section(r.runs))


METRIC = Metric("transcripts", Transcripts, compute, title="Scripted chats", section=section,
                appendix=appendix, files=files)
