"""manifest.json's typed model: the file prepare writes is exactly the model's dump, and the
report reads the model, not keys by name."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from doppel.data.manifest import Manifest
from doppel.data.report import _sections


def test_the_written_manifest_is_the_typed_model_round_tripped(sample_dataset):
    raw = json.loads((sample_dataset.path / "manifest.json").read_text(encoding="utf-8"))
    raw.pop("schema_version")
    manifest = Manifest.model_validate(raw)
    assert manifest.to_json() == raw  # no key added, dropped, renamed or retyped
    assert manifest.params.chosen_gap_s == raw["params"]["gap_seconds"] > 0
    assert manifest.params.gap == "auto" and manifest.me.name == "Alex Morgan"
    skipped = [c for c in manifest.chats if not c.kept]
    assert skipped and all(c.skip_reason and not c.messages for c in skipped)
    rows = manifest.to_json()["chats"]
    assert all(("skip_reason" in row) != row["kept"] for row in rows)  # set keys only
    assert all(isinstance(k, int) for k in manifest.stats.length_bit_bins)


def test_the_report_reads_every_section_from_the_model(sample_dataset):
    raw = json.loads((sample_dataset.path / "manifest.json").read_text(encoding="utf-8"))
    sections = {s.title: s for s in _sections(Manifest.model_validate(raw))}
    params = dict(sections["Parameters"].table[1:])
    assert list(params)[:2] == ["me", "identities"] and list(params)[-2:] == [
        "gap_seconds", "gap_reason"]
    assert sections["Speakers"].table[1][0] == "Alex Morgan"


def test_a_manifest_missing_a_key_or_with_a_wrong_type_is_refused(sample_dataset):
    raw = json.loads((sample_dataset.path / "manifest.json").read_text(encoding="utf-8"))
    raw.pop("schema_version")
    with pytest.raises(ValidationError, match="counts"):
        Manifest.model_validate({k: v for k, v in raw.items() if k != "counts"})
    with pytest.raises(ValidationError, match="size_bytes"):
        Manifest.model_validate({**raw, "export": {**raw["export"], "size_bytes": "big"}})
