"""Transcripts kept by the audio's sha256 and the model that heard it: a second prepare of the same
export (or another export holding the same voice note) transcribes nothing again.

One SQLite file, owner-only: transcripts are the user's private words, like the dataset.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from doppel.errors import DoppelError
from doppel.models import cache_dir


def cache_path() -> Path:
    return cache_dir() / "transcripts.sqlite"


class TranscriptCache:
    """sha256 of the audio + model key -> (text, seconds of audio)."""

    def __init__(self, model_key: str, path: Path | None = None) -> None:
        self.path = path or cache_path()
        self.model = model_key
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # created owner-only (never readable for a moment), and an older cache made with the
            # default umask fixed; SQLite gives its journal files the database's mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
            self.db = sqlite3.connect(self.path)
            self.db.execute("CREATE TABLE IF NOT EXISTS transcripts (model TEXT, sha256 TEXT, "
                            "text TEXT, seconds REAL, PRIMARY KEY (model, sha256))")
        except (OSError, sqlite3.Error) as error:
            raise DoppelError(f"cannot use the transcript cache {self.path} ({error}); set "
                              "DOPPEL_CACHE to a folder you can write") from None

    def get(self, sha256: str) -> tuple[str, float] | None:
        row = self.db.execute("SELECT text, seconds FROM transcripts WHERE model=? AND sha256=?",
                              (self.model, sha256)).fetchone()
        return None if row is None else (row[0], row[1])

    def put(self, sha256: str, text: str, seconds: float) -> None:
        """Kept at once (committed): an interrupted run keeps what it heard."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?)",
                            (self.model, sha256, text, seconds))

    def close(self) -> None:
        self.db.close()
