"""Property-based fuzzing of every reader through `doppel prepare` (harness: fuzzing.py).

The suite runs a few examples per source through prepare (DOPPEL_FUZZ_EXAMPLES, default 8) and
at least 50 through each reader alone (the reader is where inputs break; prepare's own steps
see only records), so it stays fast; `make fuzz` runs many more of both. Inputs that once broke
the invariant live in fixtures/fuzz/ and are replayed on every run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import (
    REGRESSIONS,
    Seed,
    check_case,
    check_read,
    mutated,
    seeds,
    small_sample,
    write_case,
)

EXAMPLES = int(os.environ.get("DOPPEL_FUZZ_EXAMPLES", "8"))
READER_EXAMPLES = max(50, EXAMPLES)  # mutated inputs per reader, read without prepare
SOURCES = ["telegram", "whatsapp", "signal", "discord", "meta", "imessage", "chatlab", "line",
           "kakaotalk"]


@pytest.fixture(scope="module")
def all_seeds(tmp_path_factory) -> dict[str, list[Seed]]:
    return seeds(small_sample(tmp_path_factory.mktemp("seed")))


def fuzz(pool, examples: int, derandomize: bool, check) -> None:
    """Draw `examples` mutated exports from the seed pool; `check(export, folder, seed)` each,
    written to a temporary folder."""

    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        seed = data.draw(st.sampled_from(pool), label="seed")
        content, zipped, cut = data.draw(mutated(seed), label="mutation")
        with tempfile.TemporaryDirectory() as folder:
            check(write_case(Path(folder), seed, content, zipped, cut), Path(folder), seed)

    case()


@pytest.mark.parametrize("source", SOURCES)
def test_every_reader_survives_mutated_exports(source: str, all_seeds) -> None:
    pool = all_seeds[source]
    if not pool:
        pytest.skip(f"no seed files for {source} (shared fixtures absent)")
    fuzz(pool, EXAMPLES, EXAMPLES <= 8,
         lambda export, folder, seed: check_case(export, folder / "dataset", seed.me))


@pytest.mark.parametrize("source", SOURCES)
def test_every_reader_reads_or_refuses_mutated_exports(source: str, all_seeds) -> None:
    pool = all_seeds[source]
    if not pool:
        pytest.skip(f"no seed files for {source} (shared fixtures absent)")
    outcomes = []
    fuzz(pool, READER_EXAMPLES, "DOPPEL_FUZZ_EXAMPLES" not in os.environ,
         lambda export, folder, seed: outcomes.append(check_read(export)))
    assert len(outcomes) >= READER_EXAMPLES  # every drawn input was read or refused


REGRESSION_FILES = sorted(p for p in REGRESSIONS.rglob("*") if p.is_file()
                          and p.name != "README.md") if REGRESSIONS.is_dir() else []


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inputs_that_once_broke_prepare(path: Path, tmp_path: Path) -> None:
    """Each file is a mutated export that once crashed or hung; --me is the file's first word."""
    me = {"whatsapp": "Alex", "telegram": "user300000000", "discord": "Alex",
          "meta": "Alex Doe", "signal": "Jane Doe", "chatlab": "Alex", "line": "Alex",
          "kakaotalk": "Alex"}.get(path.parent.name)
    check_case(path, tmp_path / "dataset", me)
