"""Model specs: embedded names, local folders, .gguf files and hub ids resolve or fail clearly."""

from __future__ import annotations

import time

import pytest
import torch

from builders import write_tiny_model
from doppel.errors import DoppelError
from doppel.models import EMBEDDED, add_token_embeddings, load_tokenizer, resolve_model


def test_embedded_model_is_converted_once_and_cached():
    first = resolve_model("smollm2-135m")
    started = time.perf_counter()
    again = resolve_model("smollm2-135m")
    assert again == first and (first / "config.json").is_file()
    from conftest import SESSION_CACHE

    assert first.is_relative_to(SESSION_CACHE)  # the test session's cache, not ~/.cache/doppel
    assert time.perf_counter() - started < 5  # the cache, not a second conversion
    import json

    assert "quantization_config" not in json.loads((first / "config.json").read_text())


def test_local_folder_resolves_to_itself(tmp_path):
    folder = write_tiny_model(tmp_path / "tiny")
    assert resolve_model(str(folder)) == folder


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("missing.gguf", "does not exist"),
        ("some-org/some-model", "local Hugging Face cache"),
        ("nonsense", "embedded name"),
    ],
)
def test_unresolvable_specs_name_the_alternatives(spec, needle):
    with pytest.raises(DoppelError, match=needle) as error:
        resolve_model(spec)
    if "/" in spec:
        assert all(name in str(error.value) for name in EMBEDDED)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(DoppelError, match=r"config\.json"):
        resolve_model(str(tmp_path))


def test_added_chat_tokens_get_mean_initialised_embeddings(tmp_path):
    from transformers import AutoModelForCausalLM

    folder = write_tiny_model(tmp_path / "tiny")
    tokenizer = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    old = model.get_input_embeddings().weight.detach().clone()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|new_a|>", "<|new_b|>"]})
    add_token_embeddings(model, tokenizer)
    grown = model.get_input_embeddings().weight.detach()
    assert grown.shape[0] == len(tokenizer) == old.shape[0] + 2
    torch.testing.assert_close(grown[-1], old.mean(dim=0), rtol=0.2, atol=0.02)
