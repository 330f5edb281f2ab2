"""Models for a GPU check with no network and no model package: real shapes, random weights.

Usage: python3 bench/offline_models.py EXPORT/result.json --out DIR [--tiny]

Writes DIR/smollm2-135m-shape (SmolLM2-135M's architecture, or a 2-layer stand-in with --tiny):
a byte-level BPE tokenizer trained in seconds on the export's messages with the `tokenizers`
library (doppel's chat tokens included), and a Llama model built from a config with random
weights, as `from_pretrained` folders. Speed and memory depend on shapes, not on weights, so this
measures what the real model would; the loss says nothing about quality. (bench/gpu.py builds its
Mistral-7B shape itself, on the GPU.) Prints the folder and its parameter count.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # SmolLM2's, doppel's ChatML
SMOLLM2_135M = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                "max_position_embeddings": 8192, "rope_theta": 100000.0, "rms_norm_eps": 1e-5,
                "tie_word_embeddings": True}
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048,
        "max_position_embeddings": 1024, "tie_word_embeddings": True}


def message_texts(export: Path) -> Iterator[str]:
    """Every message's text in a Telegram result.json (plain strings and entity parts)."""
    data = json.loads(export.read_text("utf-8"))
    chats = data["chats"]["list"] if "chats" in data else [data]
    for chat in chats:
        for message in chat.get("messages", []):
            text = message.get("text", "")
            parts = text if isinstance(text, list) else [text]
            yield "".join(p if isinstance(p, str) else p.get("text", "") for p in parts)


def train_tokenizer(export: Path, vocab_size: int):
    """A byte-level BPE like SmolLM2's, on the export's text: any input encodes, nothing unknown."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(message_texts(export), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=SPECIAL[0],
                                   eos_token=SPECIAL[0], pad_token=SPECIAL[0],
                                   unk_token=SPECIAL[0])


def build(export: Path, out: Path, tiny: bool) -> tuple[Path, int]:
    """The model folder and its parameter count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = TINY if tiny else SMOLLM2_135M
    tokenizer = train_tokenizer(export, shape["vocab_size"])
    config = LlamaConfig(**shape, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)  # vocab at the real size: the tokenizer's ids fit below it
    target = out / "smollm2-135m-shape"
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target, sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="a Telegram result.json (the bundled sample)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer stand-in")
    args = parser.parse_args(argv)
    target, params = build(args.export, args.out, args.tiny)
    print(f"{target}: {params / 1e6:.1f}M parameters, random weights, tokenizer trained on "
          f"{args.export}")


if __name__ == "__main__":
    main()
