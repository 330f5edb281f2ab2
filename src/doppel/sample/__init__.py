"""The bundled sample export: a deterministic fake Telegram account to try doppel end to end."""

from doppel.sample.generator import (
    SampleSummary,
    build_sample_export,
    write_sample_export,
    write_sample_export_summary,
)

__all__ = ["SampleSummary", "build_sample_export", "write_sample_export",
           "write_sample_export_summary"]
