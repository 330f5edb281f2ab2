"""Small, real inputs built in tests: a dataset folder with two speakers of distinct styles."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION

ME = ("user1", "Alex")
FRIEND = ("user2", "Sam")
ALEX_LINES = [
    "heyy",
    "lol yeah",
    "ngl thats wild 😂",
    "omw",
    "haha ok",
    "not much lol, you?",
    "sounds good",
    "wait what",
    "lmao",
    "ok cool 🙃",
    "idk tbh",
    "yesss",
]
SAM_LINES = [
    "Hello, Alex. How are you doing today?",
    "I would like to discuss the plan.",
    "That is a reasonable suggestion, thank you.",
    "What's up?",
    "Hey.",
    "Could you send me the document, please?",
    "I am afraid I cannot make it.",
]


def _message(speaker: tuple[str, str], time: float, text: str) -> dict:
    return {"speaker_id": speaker[0], "speaker": speaker[1], "time": time, "text": text}


def write_dataset(path: Path, conversations: int = 40, seed: int = 0) -> Path:
    """A dataset folder in the contract's shape; Alex writes short lowercase bursts."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    rows, t = [], 1_700_000_000.0
    for index in range(conversations):
        messages = []
        for _ in range(rng.randint(2, 5)):
            t += 60
            messages.append(_message(FRIEND, t, rng.choice(SAM_LINES)))
            for _ in range(rng.randint(1, 3)):
                t += 10
                messages.append(_message(ME, t, rng.choice(ALEX_LINES)))
        t += 86_400
        split = "val" if index >= conversations * 0.9 else "train"
        rows.append(
            {
                "id": f"user2-{index:04d}",
                "chat": {"id": "user2", "name": "Sam", "type": "personal_chat"},
                "split": split,
                "messages": messages,
            }
        )
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "me": {"id": ME[0], "name": ME[1]},
        "speakers": {
            ME[0]: {"name": ME[1], "messages": 0, "chats": 1},
            FRIEND[0]: {"name": FRIEND[1], "messages": 0, "chats": 1},
        },
        "fingerprint": f"test-{seed}-{conversations}",
    }
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def write_tiny_model(path: Path, layers: int = 2, hidden: int = 64) -> Path:
    """A randomly initialised Llama with the embedded tokenizer: fast, and local."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from doppel.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("smollm2-135m"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run_cli(args: list[str], monkeypatch, capsys, input: str | None = None) -> tuple[int, str, str]:
    """Run `doppel ARGS` in this process as the console script does: (exit code, out, err).

    The one way tests run the CLI; `input` is what the user types. Use run_doppel only where the
    test needs a process of its own (a long end-to-end run, a server refusing to start)."""
    import io

    from doppel.cli import main

    monkeypatch.setattr(sys, "argv", ["doppel", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")  # one-line errors stay on one line
    if input is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(input))
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def run_doppel(args: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m doppel ARGS` in a process of its own, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "doppel", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


# The real shapes of the models the GPU recipes name (their config.json, no weights): a dry run
# plans and estimates memory from the config alone.
MISTRAL_7B = {
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768,
    "rope_theta": 10000.0, "sliding_window": 4096, "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}
QWEN25_15B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 1536,
    "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
    "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
    "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
HUB_MODELS = {"mistralai/Mistral-7B-v0.1": MISTRAL_7B, "Qwen/Qwen2.5-1.5B-Instruct": QWEN25_15B}


def write_hub_cache(cache: Path) -> Path:
    """A Hugging Face hub cache (HF_HUB_CACHE) holding the config of every model the shipped
    recipes name, with the embedded tokenizer: what a user who downloaded them once has offline,
    minus the weights."""
    from doppel.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("smollm2-135m"))
    for repo_id, config in HUB_MODELS.items():
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        commit = "0" * 40
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        (snapshot / "config.json").write_text(json.dumps(config))
        tokenizer.save_pretrained(snapshot)
    return cache


def write_tiny_mistral(path: Path) -> Path:
    """A randomly initialised 2-layer Mistral with the embedded tokenizer: stands in for a local
    Mistral-7B folder (`--model /models/Mistral-7B-v0.1`) on a CPU."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from doppel.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("smollm2-135m"))
    config = MistralConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        sliding_window=None, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    MistralForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_fact_dataset(path: Path, pairs: int = 48, held_out: int = 10, seed: int = 0) -> Path:
    """A dataset where facts come back (eval's memory fact test): in pair i Sam asks about a
    trip to a made-up place and Alex names who came along (one of a few made-up names); the
    next day Sam asks about that place again and Alex names the same person. Only a memory of
    the first day tells which name; the last `held_out` pairs (both days) are the val split."""
    rng = random.Random(seed)
    letters = "bdfgklmnprstvz"
    vowels = "aeiou"

    def word(syllables: int) -> str:
        return "".join(rng.choice(letters) + rng.choice(vowels) for _ in range(syllables))

    names = [word(2).capitalize() for _ in range(8)]
    path.mkdir(parents=True, exist_ok=True)
    rows, t, count = [], 1_700_000_000.0, {ME[0]: 0, FRIEND[0]: 0}
    for index in range(pairs):
        place, name = word(3), rng.choice(names)
        # the name mid-sentence in cased text: the fact rule (memory/fact_words.py) reads it
        # as a name, as it would "Biscuit" in "a corgi called Biscuit"
        days = [[(FRIEND, f"how was the trip to {place}?"), (ME, f"went with {name}, fun")],
                [(FRIEND, f"remember {place}? who was there"), (ME, f"it was {name} lol")]]
        for day, said in enumerate(days):
            messages = []
            for speaker, text in said:
                t += 60
                messages.append(_message(speaker, t, text))
                count[speaker[0]] += 1
            t += 86_400
            split = "val" if index >= pairs - held_out else "train"
            rows.append({"id": f"user2-{index:04d}-{day}",
                         "chat": {"id": "user2", "name": "Sam", "type": "personal_chat"},
                         "split": split, "messages": messages})
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "me": {"id": ME[0], "name": ME[1]},
        "speakers": {pid: {"name": name, "messages": count[pid], "chats": ["user2"]}
                     for pid, name in (ME, FRIEND)},
        "fingerprint": f"facts-{seed}-{pairs}",
    }
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path
