"""Memory: retrieval over the user's own (masked) chats, scoped per friend.

It sits below train/, infer/, bot/, eval/ and commands/ and imports none of them: `doppel
prepare` writes the index through it, and everything that speaks reads it.
"""

from doppel.memory.index import MEMORY_FILE, MemoryIndex, build_index, open_index
from doppel.memory.records import Memory, NewUnit
from doppel.memory.retrieve import query_from_history
from doppel.memory.scope import Scope

__all__ = ["MEMORY_FILE", "Memory", "MemoryIndex", "NewUnit", "Scope", "build_index",
           "open_index", "query_from_history"]
