"""results.json: EvalResults written and read back through the same types (pydantic's
TypeAdapter), each metric's value through its registered row type."""

from __future__ import annotations

import json
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError
from doppel.eval.metrics import METRICS
from doppel.eval.results import RESULTS, SCHEMA_VERSION, EvalResults, RunResult

RUN_FIELDS = frozenset(f.name for f in fields(RunResult)) - {"metrics"}


@cache
def _adapter(kind: Any):
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def to_json(results: EvalResults) -> dict[str, Any]:
    """The results as JSON data: each run's metrics as keys next to its own fields."""
    data = _adapter(EvalResults).dump_python(results, mode="json",
                                             exclude={"runs": {"__all__": {"metrics"}}})
    rows = {m.name: m.row for m in METRICS}
    for run, found in zip(results.runs, data["runs"], strict=True):
        for name, value in run.metrics.items():
            kind = rows.get(name)
            found[name] = _adapter(kind).dump_python(value, mode="json") if kind else value
    return data


def _bad(source: str, error, where: str = "") -> DoppelError:
    first = error.errors()[0]
    place = ".".join(map(str, [*([where] if where else []), *first["loc"]]))
    return DoppelError(f"{source} is not a doppel eval result: {first['msg']} at {place}")


def _metrics(run: dict[str, Any], index: int, source: str) -> dict[str, Any]:
    """A run's metric values, each read through its row type (one a file lacks gets its default,
    or is refused; one this doppel does not know stays as it was written)."""
    from pydantic import ValidationError

    found = {k: v for k, v in run.items() if k not in RUN_FIELDS}
    for metric in METRICS:
        where = f"runs.{index}.{metric.name}"
        if metric.name not in found:
            if metric.default is None:
                raise DoppelError(f"{source} is not a doppel eval result: Field required at "
                                  f"{where}")
            value = metric.default()
            if value is not None:  # an optional metric a run lacks stays absent, as written
                found[metric.name] = value
            continue
        try:
            found[metric.name] = _adapter(metric.row).validate_python(found[metric.name])
        except ValidationError as error:
            raise _bad(source, error, where) from None
    return found


def from_json(data: Any, source: str = RESULTS) -> EvalResults:
    """Results read back, refusing another schema version with a clear error."""
    from pydantic import ValidationError

    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise DoppelError(f"{source} has schema version {version}; this doppel reads "
                          f"version {SCHEMA_VERSION}: run `doppel eval` again")
    runs = data.get("runs")
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise DoppelError(f"{source} is not a doppel eval result: no list of runs")
    metrics = [_metrics(run, i, source) for i, run in enumerate(runs)]
    plain = {**data, "runs": [{k: v for k, v in run.items() if k in RUN_FIELDS} for run in runs]}
    try:
        results = _adapter(EvalResults).validate_python(plain)
    except ValidationError as error:
        raise _bad(source, error) from None
    for run, found in zip(results.runs, metrics, strict=True):
        run.metrics = found
    return results


def write_results(folder: Path, results: EvalResults) -> None:
    from doppel.atomic import atomic_file

    with atomic_file(folder / RESULTS) as out:
        json.dump(to_json(results), out, indent=1, ensure_ascii=False)


def read_results(folder: Path) -> EvalResults:
    path = Path(folder) / RESULTS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DoppelError(f"cannot read {path}: {error}") from None
    return from_json(data, str(path))
