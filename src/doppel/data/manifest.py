"""manifest.json as typed records: what `doppel prepare` writes and the dataset report reads.

The pipeline builds the manifest as plain values and validates it here before writing it, so the
file and the report agree on every key and type; dumped with exclude_unset, the file keeps
exactly the keys the pipeline set (a skipped chat has a skip_reason and no counts).
docs/architecture.md "Dataset folder" describes the keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from doppel.data.options import PrepareOptions


class Record(BaseModel):
    # keys a newer doppel adds are kept, not refused: a dataset folder outlives the code
    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=())


class Person(Record):
    id: str
    name: str


class Speaker(Record):
    """A person: `name` is their label (display only), `aliases` the names and ids they were
    read as (several when --me or --identities merged them), `first` their earliest message."""

    name: str
    messages: int
    chats: list[str]
    aliases: list[str] = []
    first: float | None = None


class ExportEntry(Record):
    path: str
    source: str = "telegram"
    reader: str | None = None
    layout: str | None = None
    size_bytes: int
    owner: list[str] | None = None
    unknown: dict[str, int] = {}


class Params(PrepareOptions):
    """Every PrepareOptions field (as given) and the session gap prepare chose; the file calls
    it gap_seconds, which PrepareOptions.gap_seconds already names (the --gap given)."""

    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=(),
                              populate_by_name=True)
    chosen_gap_s: float = Field(alias="gap_seconds")
    gap_reason: str


class SourceCounts(Record):
    chats: int
    chats_kept: int
    messages_read: int
    messages_kept: int


class Counts(Record):
    records_read: int
    boundaries: int
    messages_read: int
    messages_in_skipped_chats: int
    messages_kept: int
    dropped: dict[str, int]
    chats_kept: int
    chats_skipped: dict[str, int]
    single_speaker_conversations: int
    conversations: dict[str, int]
    messages: dict[str, int]
    masked: dict[str, int]
    sources: dict[str, SourceCounts] = {}
    voice: dict[str, Any] | None = None  # with --transcribe: voice.transcribe.VoiceStats
    # source -> reason -> lines or records a reader could not read (sources/tally.py)
    skipped: dict[str, dict[str, int]] = {}


class ChatRow(Record):
    id: str
    name: str
    type: str
    source: str = "telegram"
    kept: bool
    messages_read: int
    skip_reason: str | None = None
    dropped: dict[str, int] = {}
    conversations: dict[str, int] = {}
    messages: dict[str, int] = {}
    single_speaker_conversations: int = 0


class Stats(Record):
    gap_histogram: list[int]
    length_bit_bins: dict[int, int]  # bit length of a message's characters -> messages
    conversation_sizes: dict[int, int]  # messages in a conversation -> conversations


class Manifest(Record):
    me: Person
    speakers: dict[str, Speaker]
    fingerprint: str
    fingerprint_method: str
    export: ExportEntry
    exports: list[ExportEntry]
    params: Params
    counts: Counts
    chats: list[ChatRow]
    stats: Stats
    warnings: list[str]
    created: str

    def to_json(self) -> dict[str, Any]:
        """The manifest.json keys (schema_version aside), as the pipeline set them."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)
