"""How the index stores a unit's vector: 8 bits a dimension, one byte each.

Every vector is unit length and only its direction counts (search ranks by cosine), so a row is
stored as int8 scaled so that its largest component is +-127, with no scale beside it, and read
back by normalising again. That is a quarter of float32 and half of the float16 the index held
before (schema 2), for a cosine that moves by about 1e-4 (tests/test_memory_vectors.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doppel.memory.embedder import normalize_rows

LEVELS = 127  # int8: -127..127, symmetric around 0


def encode(vectors: np.ndarray) -> list[bytes]:
    """Each row as its int8 bytes (all-zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1, keepdims=True) if len(vectors) else vectors[:, :1]
    codes = np.rint(vectors * (LEVELS / np.maximum(peak, 1e-30))).astype(np.int8)
    return [row.tobytes() for row in codes]


def decode(blobs: Sequence[bytes], dimension: int) -> np.ndarray:
    """Stored rows as a float32 (len(blobs), dimension) matrix of unit-length rows."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    codes = np.frombuffer(b"".join(blobs), dtype=np.int8).reshape(len(blobs), dimension)
    return normalize_rows(codes.astype(np.float32))


def decode_float16(blobs: Sequence[bytes], dimension: int) -> np.ndarray:
    """An index of schema 1 or 2 stored float16 rows: read them to re-store as int8."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    rows = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dimension)
    return normalize_rows(rows.astype(np.float32))
