"""A GGUFReader that parses big arrays (a 262k-token vocabulary, its scores and types) fast.

The gguf package reads an array one element at a time through numpy memmap slicing (~20 s for
Gemma 3's vocabulary), and hands out np.memmap views whose Python-level `__getitem__` makes
transformers' element-by-element parsing of them slow too (~15 s). This reader walks a string
array's lengths once with `struct` and a scalar array with a single `view`, and gives out the
same parts (same offsets, dtypes, shapes, bytes, data indices and types) as plain ndarray views
of the same memory, so writes through them still reach the file in "r+" mode.
"""

from __future__ import annotations

import struct
import sys

import numpy as np
from gguf.constants import GGUFValueType
from gguf.gguf_reader import GGUFReader  # the class, even while gguf_loads_shared patches gguf's

_LENGTH = struct.Struct("=Q")  # a string's length, in the host's order (see _fast_path)


class FastGGUFReader(GGUFReader):
    """GGUFReader with vectorised string and scalar arrays; everything else is the package's."""

    def _fast_path(self) -> bool:
        """Only files in the host's byte order, on a little-endian host (all GGUFs doppel meets)."""
        return self.byte_order == "I" and sys.byteorder == "little"

    def _get_field_parts(self, orig_offs: int, raw_type: int):
        if GGUFValueType(raw_type) != GGUFValueType.ARRAY or not self._fast_path():
            return super()._get_field_parts(orig_offs, raw_type)
        plain = self.data.view(np.ndarray)
        raw_itype = plain[orig_offs:orig_offs + 4].view(np.uint32)
        alen = plain[orig_offs + 4:orig_offs + 12].view(np.uint64)
        count, item_type = int(alen[0]), GGUFValueType(int(raw_itype[0]))
        nptype = self.gguf_scalar_to_np.get(item_type)
        if count == 0 or (item_type != GGUFValueType.STRING and nptype is None):
            return super()._get_field_parts(orig_offs, raw_type)  # empty or nested arrays
        offs = orig_offs + 12
        if item_type == GGUFValueType.STRING:
            items, offs = _string_parts(plain, offs, count)
            data_idxs = list(range(3, 2 + 2 * count, 2))  # each string: [length, bytes]
        else:
            end = offs + np.dtype(nptype).itemsize * count
            items = list(plain[offs:end].view(nptype).reshape(count, 1))
            offs = end
            data_idxs = list(range(2, 2 + count))
        types = [GGUFValueType.ARRAY, item_type]
        return offs - orig_offs, [raw_itype, alen, *items], data_idxs, types


def _string_parts(plain: np.ndarray, offs: int, count: int) -> tuple[list[np.ndarray], int]:
    """Each string's [length, bytes] views, in one pass over the lengths; and the end offset."""
    buffer = memoryview(plain)
    unpack = _LENGTH.unpack_from
    parts: list[np.ndarray] = []
    append = parts.append
    size = len(plain)
    for _ in range(count):
        if offs + 8 > size:
            raise ValueError("a GGUF string array runs past the end of the file")
        (length,) = unpack(buffer, offs)
        append(plain[offs:offs + 8].view(np.uint64))
        offs += 8
        append(plain[offs:offs + length])
        offs += length
    if offs > size:
        raise ValueError("a GGUF string array runs past the end of the file")
    return parts, offs
