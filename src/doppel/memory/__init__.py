"""Memory: retrieval over the user's own (masked) chats, scoped per friend.

It sits below train/, infer/, bot/, eval/ and commands/ and imports none of them: `doppel
prepare` writes the index through it, and everything that speaks reads it. Names load lazily,
so `doppel.memory.options` (read by prepare's option schema) costs no numpy import.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"MEMORY_FILE": "index", "MemoryIndex": "index", "build_index": "index",
          "open_index": "index", "Memory": "records", "NewUnit": "records",
          "query_from_history": "retrieve", "Scope": "scope"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'doppel.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(f"doppel.memory.{_WHERE[name]}"), name)
